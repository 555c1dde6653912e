/**
 * The K largest of a stream of (id, value) pairs in one pass, with a min-heap of K entries in
 * typed arrays: a scrape over a million ids costs a comparison each, never a sort of them all.
 * Ties go to the smaller id (the one interned first), so a set of equal counts does not reshuffle
 * its series from one scrape to the next.
 */
export class TopK {
  private readonly ids: Int32Array;
  private readonly vals: Float64Array;
  private n = 0;

  constructor(readonly k: number) {
    this.ids = new Int32Array(k);
    this.vals = new Float64Array(k);
  }

  clear(): void {
    this.n = 0;
  }

  /** Offers a candidate; values of 0 or less never qualify. */
  offer(id: number, v: number): void {
    if (v <= 0) return;
    if (this.n < this.k) {
      this.siftUp(this.n++, id, v);
      return;
    }
    if (this.k === 0) return;
    const minV = this.vals[0]!;
    if (v < minV || (v === minV && id > this.ids[0]!)) return;
    this.siftDown(id, v);
  }

  /** Places (id, v) from the free slot `i` upwards. */
  private siftUp(i: number, id: number, v: number): void {
    let at = i;
    while (at > 0) {
      const p = (at - 1) >> 1;
      if (!this.worse(id, v, this.ids[p]!, this.vals[p]!)) break;
      this.ids[at] = this.ids[p]!;
      this.vals[at] = this.vals[p]!;
      at = p;
    }
    this.ids[at] = id;
    this.vals[at] = v;
  }

  /** Replaces the root (the worst kept) with (id, v) and moves it down to its place. */
  private siftDown(id: number, v: number): void {
    let i = 0;
    const n = this.n;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      if (r < n && this.worse(this.ids[r]!, this.vals[r]!, this.ids[l]!, this.vals[l]!)) c = r;
      if (!this.worse(this.ids[c]!, this.vals[c]!, id, v)) break;
      this.ids[i] = this.ids[c]!;
      this.vals[i] = this.vals[c]!;
      i = c;
    }
    this.ids[i] = id;
    this.vals[i] = v;
  }

  /** The selected ids and values, largest first (ties: smaller id first). Empties the heap. */
  drain(): { ids: number[]; values: number[] } {
    const order = Array.from({ length: this.n }, (_, i) => i).sort((a, b) =>
      this.worse(this.ids[a]!, this.vals[a]!, this.ids[b]!, this.vals[b]!) ? 1 : -1,
    );
    const out = { ids: order.map((i) => this.ids[i]!), values: order.map((i) => this.vals[i]!) };
    this.n = 0;
    return out;
  }

  /** (a, va) ranks below (b, vb). */
  private worse(a: number, va: number, b: number, vb: number): boolean {
    return va < vb || (va === vb && a > b);
  }
}
