/**
 * The fastest creators: new flows (NEW events) per source prefix in two one-minute windows, the
 * current and the previous; the rate over the last minute is the current window plus the share of
 * the previous one still inside the minute, divided by a minute. A window keeps a reference on
 * each prefix it counts, so a prefix whose flows are all gone is still ranked until its counts age
 * out; at most `max` distinct prefixes are counted per window (a flood of spoofed sources must not
 * grow memory without bound), new flows of further prefixes count in the total only, which the
 * remainder series shows. So do new flows whose source could not be interned (NO_KEY).
 */
import type { Clock } from '../table/table.js';
import type { KeyInterner } from './interner.js';
import type { TopK } from './topk.js';

/** Grows or shrinks a typed array to `n` entries, keeping what fits. */
export function resized<T extends Uint32Array | Int32Array>(a: T, n: number, make: (n: number) => T): T {
  if (a.length === n) return a;
  const b = make(n);
  b.set(a.length <= n ? a : a.subarray(0, n));
  return b;
}

/** What the current and previous windows hold over the last minute. */
export interface CreatorsOffered {
  /** New flows over the last minute (the previous window weighted by its share). */
  total: number;
  /** Seconds the counts span: a minute, or the time since start-up within the first minute. */
  span: number;
}

export class Creators {
  /** Per source id: new flows in the current and the previous window. */
  private cur = new Uint32Array(0);
  private prev = new Uint32Array(0);
  private curList = new Int32Array(64);
  private curLen = 0;
  private prevList = new Int32Array(64);
  private prevLen = 0;
  /** New flows in the window, attributed or not. */
  private curTotal = 0;
  private prevTotal = 0;
  private curStart: number;
  /** A complete previous window exists. */
  private hasPrev = false;

  constructor(
    private readonly sources: KeyInterner,
    private readonly clock: Clock,
    private readonly window: number,
    private readonly max: number,
  ) {
    this.curStart = clock();
  }

  /** Bytes per source id kept here (cur, prev), for the interner's growth budget. */
  static readonly BYTES_PER_ID = 8;

  get bytes(): number {
    return this.cur.byteLength + this.prev.byteLength + this.curList.byteLength + this.prevList.byteLength;
  }

  /** Sizes the per-id counts to the interner's capacity. */
  fit(n: number): void {
    const make = (k: number) => new Uint32Array(k);
    this.cur = resized(this.cur, n, make);
    this.prev = resized(this.prev, n, make);
  }

  /** One NEW flow from source key `src` (NO_KEY: counted in the total only). */
  created(src: number): void {
    this.rotate(this.clock());
    this.curTotal++;
    if (src < 0) return;
    if (this.cur[src] === 0) {
      if (this.curLen >= this.max) return;
      if (this.curLen === this.curList.length) {
        const l = new Int32Array(this.curLen * 2);
        l.set(this.curList);
        this.curList = l;
      }
      this.curList[this.curLen++] = src;
      this.sources.retain(src);
    }
    this.cur[src]!++;
  }

  /** Offers every prefix's new flows over the last minute to `heap`. */
  offer(heap: TopK): CreatorsOffered {
    const now = this.clock();
    this.rotate(now);
    const elapsed = Math.max(0, now - this.curStart);
    // The part of the previous window still inside the last minute; before a whole window has
    // passed since start-up, the rate is over the time observed (at least a second).
    const share = this.hasPrev ? Math.max(0, (this.window - elapsed) / this.window) : 0;
    const span = this.hasPrev ? this.window : Math.max(1, elapsed);
    for (let i = 0; i < this.curLen; i++) {
      const id = this.curList[i]!;
      heap.offer(id, this.cur[id]! + this.prev[id]! * share);
    }
    if (share > 0) {
      for (let i = 0; i < this.prevLen; i++) {
        const id = this.prevList[i]!;
        if (this.cur[id] === 0) heap.offer(id, this.prev[id]! * share);
      }
    }
    return { total: this.curTotal + this.prevTotal * share, span };
  }

  /** Starts new windows for the time that has passed; a window too old to matter is dropped. */
  private rotate(now: number): void {
    while (now - this.curStart >= this.window) {
      // The previous window leaves: its references go.
      for (let i = 0; i < this.prevLen; i++) {
        const id = this.prevList[i]!;
        this.prev[id] = 0;
        this.sources.release(id);
      }
      // The current window becomes the previous one.
      const counts = this.prev;
      this.prev = this.cur;
      this.cur = counts;
      const list = this.prevList;
      this.prevList = this.curList;
      this.prevLen = this.curLen;
      this.curList = list;
      this.curLen = 0;
      this.prevTotal = this.curTotal;
      this.curTotal = 0;
      this.curStart += this.window;
      this.hasPrev = true;
      // After a quiet spell of more than two windows, restart the windows at now.
      if (now - this.curStart >= 2 * this.window) this.curStart = now - this.window;
    }
  }
}
