/**
 * Where a flow's key lives in the shadow table. The key is CTA_ID plus a 32-bit hash of the
 * original tuple (FlowSummary.tupleHash), because CTA_ID alone is not unique: the kernel derives
 * it by hashing the entry's address and tuple into 32 bits (nf_ct_get_id), so ids collide by the
 * birthday bound, about n²/2³³ pairs among n flows: we saw two flows with one id among 150,000 in
 * a test namespace, and a host with a million flows has about a hundred such pairs. The original
 * tuple (with zone) is what the kernel keeps unique.
 *
 * KeyIndex keeps each row's key in two columns and maps keys to rows with open addressing and
 * linear probing; a removal shifts back the entries of its probe run (no tombstones), and rows
 * stay dense: the table moves its last row into a freed one and the index follows.
 */

/** Home slot of (id, tuple hash) in an index of 2^bits slots (multiplicative hashing). */
function homeSlot(id: number, tupleHash: number, bits: number): number {
  return Math.imul(id ^ Math.imul(tupleHash, 0x85ebca6b), 0x9e3779b1) >>> (32 - bits);
}

const MIN_BITS = 11;
/** The index is rebuilt twice as large beyond this load. */
const MAX_LOAD = 0.7;

export class KeyIndex {
  /** Per row: CTA_ID and the tuple hash. */
  private id: Uint32Array;
  private hash: Uint32Array;
  /** Row + 1 per slot; 0 for a free slot. */
  private slots = new Int32Array(1 << MIN_BITS);
  private bits = MIN_BITS;

  constructor(rows: number) {
    this.id = new Uint32Array(rows);
    this.hash = new Uint32Array(rows);
  }

  get bytes(): number {
    return this.id.byteLength + this.hash.byteLength + this.slots.byteLength;
  }

  /** The CTA_ID of `row`. */
  idOf(row: number): number {
    return this.id[row]!;
  }

  /** The tuple hash of `row`. */
  hashOf(row: number): number {
    return this.hash[row]!;
  }

  /** The row of a key, or -1. */
  find(id: number, hash: number): number {
    const slots = this.slots;
    const mask = slots.length - 1;
    for (let slot = homeSlot(id, hash, this.bits); ; slot = (slot + 1) & mask) {
      const v = slots[slot]!;
      if (v === 0) return -1;
      if (this.id[v - 1] === id && this.hash[v - 1] === hash) return v - 1;
    }
  }

  /** Keys `row`, the next after rows 0..row-1 (all keyed). */
  add(row: number, id: number, hash: number): void {
    if (row + 1 > this.slots.length * MAX_LOAD) this.rebuild(this.bits + 1, row);
    this.id[row] = id;
    this.hash[row] = hash;
    this.place(row);
  }

  /** Unkeys `row`; `last`, the highest row, moves into it (when it is another row). */
  remove(row: number, last: number): void {
    this.unindex(this.slotOf(row));
    if (row === last) return;
    this.slots[this.slotOf(last)] = row + 1;
    this.id[row] = this.id[last]!;
    this.hash[row] = this.hash[last]!;
  }

  /** Room for `n` rows, keeping the first `rows`. */
  resize(n: number, rows: number): void {
    const id = new Uint32Array(n);
    const hash = new Uint32Array(n);
    id.set(this.id.subarray(0, Math.min(rows, n)));
    hash.set(this.hash.subarray(0, Math.min(rows, n)));
    this.id = id;
    this.hash = hash;
  }

  /** After the table shrank to `rows`: an index at half the load limit, no smaller than the minimum. */
  shrink(rows: number): void {
    const need = Math.ceil(Math.log2((rows + 1) / (MAX_LOAD / 2)));
    const bits = Math.min(this.bits, Math.max(MIN_BITS, need));
    if (bits !== this.bits) this.rebuild(bits, rows);
  }

  private slotOf(row: number): number {
    const mask = this.slots.length - 1;
    for (let slot = homeSlot(this.id[row]!, this.hash[row]!, this.bits); ; slot = (slot + 1) & mask) {
      if (this.slots[slot] === row + 1) return slot;
    }
  }

  private place(row: number): void {
    const mask = this.slots.length - 1;
    let slot = homeSlot(this.id[row]!, this.hash[row]!, this.bits);
    while (this.slots[slot] !== 0) slot = (slot + 1) & mask;
    this.slots[slot] = row + 1;
  }

  /** Frees a slot, shifting back entries of the probe run so lookups need no tombstones. */
  private unindex(slot: number): void {
    const slots = this.slots;
    const mask = slots.length - 1;
    let hole = slot;
    for (let j = (slot + 1) & mask; slots[j] !== 0; j = (j + 1) & mask) {
      const v = slots[j]!;
      const home = homeSlot(this.id[v - 1]!, this.hash[v - 1]!, this.bits);
      // The entry may move back to the hole unless its home lies cyclically in (hole, j].
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        slots[hole] = v;
        hole = j;
      }
    }
    slots[hole] = 0;
  }

  private rebuild(bits: number, rows: number): void {
    this.bits = bits;
    this.slots = new Int32Array(1 << bits);
    for (let row = 0; row < rows; row++) this.place(row);
  }
}
