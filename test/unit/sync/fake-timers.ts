/**
 * Timers for the synchronisation tests: time stands still until advance() moves it, firing what
 * falls due on the way, so a test of a 5 s schedule takes no 5 s and no sleep.
 */
import type { TimerHandle, Timers } from '../../../src/sync/timers.js';

interface Entry {
  due: number;
  /** Set for intervals. */
  every: number | undefined;
  /** Order of creation: timers due at the same moment fire in the order they were set. */
  order: number;
  fn: () => void;
}

/** Lets promise continuations and the callbacks they schedule run (a few macrotask turns). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

export class FakeTimers implements Timers {
  private at: number;
  private order = 0;
  private readonly entries = new Map<TimerHandle, Entry>();

  constructor(startMs = 1_700_000_000_000) {
    this.at = startMs;
  }

  now(): number {
    return this.at;
  }

  /** Timers and intervals set and not yet fired (timers) or cleared. */
  get pending(): number {
    return this.entries.size;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    return this.add(fn, ms, undefined);
  }

  setInterval(fn: () => void, ms: number): TimerHandle {
    return this.add(fn, ms, ms);
  }

  clearTimeout(handle: TimerHandle): void {
    this.entries.delete(handle);
  }

  clearInterval(handle: TimerHandle): void {
    this.entries.delete(handle);
  }

  /**
   * Moves the clock `ms` forward. Each timer that falls due on the way fires at its own moment
   * (now() reads its due time), earliest first, and the promises it starts settle before the
   * next one fires, as they would in the gaps between real timers.
   */
  async advance(ms: number): Promise<void> {
    const end = this.at + ms;
    await settle();
    for (let next = this.earliest(end); next; next = this.earliest(end)) {
      const [handle, e] = next;
      this.at = e.due;
      if (e.every === undefined) this.entries.delete(handle);
      else {
        e.due += e.every;
        e.order = this.order++;
      }
      e.fn();
      await settle();
    }
    this.at = end;
  }

  private add(fn: () => void, ms: number, every: number | undefined): TimerHandle {
    // As Node does: less than 1 ms is 1 ms (an interval of 0 would otherwise never let time pass).
    const delay = Math.max(1, ms);
    const handle = {};
    this.entries.set(handle, {
      due: this.at + delay,
      every: every === undefined ? undefined : delay,
      order: this.order++,
      fn,
    });
    return handle;
  }

  private earliest(end: number): [TimerHandle, Entry] | undefined {
    let best: [TimerHandle, Entry] | undefined;
    for (const [h, e] of this.entries) {
      if (e.due > end) continue;
      if (!best || e.due < best[1].due || (e.due === best[1].due && e.order < best[1].order)) best = [h, e];
    }
    return best;
  }
}
