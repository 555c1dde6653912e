/**
 * Time as synchronisation sees it: a wall clock and timers, injected so that its unit tests
 * advance a fake instead of sleeping (test/unit/sync/fake-timers.ts).
 */

/** Opaque: only the Timers that made a handle can clear it. */
export type TimerHandle = object;

export interface Timers {
  /** Milliseconds since the epoch. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
  setInterval(fn: () => void, ms: number): TimerHandle;
  clearInterval(handle: TimerHandle): void;
}

/**
 * Node's timers, unref'd: synchronisation never keeps the process alive by itself (the sockets
 * and the HTTP server decide that).
 */
export const realTimers: Timers = Object.freeze({
  now: () => Date.now(),
  setTimeout: (fn: () => void, ms: number) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle: TimerHandle) => clearTimeout(handle as NodeJS.Timeout),
  setInterval: (fn: () => void, ms: number) => setInterval(fn, ms).unref(),
  clearInterval: (handle: TimerHandle) => clearInterval(handle as NodeJS.Timeout),
});
