/**
 * Interns fixed-size keys (a few 32-bit words: an address prefix, a destination) into small dense
 * ids with reference counts, in typed arrays: no string or object per key, so a million distinct
 * sources cost a few tens of bytes each and nothing for the garbage collector to walk. An id whose
 * count falls to 0 is freed and reused by the next new key. Open addressing with linear probing
 * and backward-shift deletion (no tombstones), as the shadow table's own index.
 */

const MIN_IDS = 256;
const MAX_LOAD = 0.7;
/** 4-byte arrays per id besides the key: hashes, refs, freeIds. */
const ID_BYTES = 12;
/**
 * Growth steps tried in order: doubling while the budget allows, smaller steps near it, so the
 * last growth does not take twice what is needed. Below an eighth the interner stops growing.
 */
const GROWTH_FACTORS = [2, 1.5, 1.25, 1.125] as const;

/** What acquire() returns when a new key finds no free id and the budget refuses more: count it in `other`. */
export const NO_KEY = -1;

/**
 * The memory attribution may take (memory/budget.ts implements it). Asked only when an
 * interner's arrays must grow, never per key.
 */
export interface GrowthBudget {
  /** Bytes that may be allocated now; Infinity without a limit, 0 while attribution is degraded. */
  headroom(): number;
  /** `bytes` were just allocated: counted until the process's memory is read again. */
  spent(bytes: number): void;
  /** A growth did not fit: new keys go to `other` until memory is back under the low mark. */
  exhausted(): void;
}

export class KeyInterner {
  /** The key of id i is keys[i * words .. (i + 1) * words). */
  private keys: Uint32Array;
  private hashes: Uint32Array;
  /** References per id; 0 marks a free id. */
  private refs: Uint32Array;
  /** Open addressing: id + 1, 0 for a free slot. */
  private index: Int32Array;
  private freeIds: Int32Array;
  private freeCount = 0;
  /** Ids below this have been handed out at least once (the high-water mark). */
  private top = 0;
  private inUse = 0;
  /** The key being looked up: fill it, then call acquire(). */
  readonly scratch: Uint32Array;

  /**
   * `growth`: asked before the arrays grow (none: they double without limit). `extraBytesPerId`:
   * what the owner keeps per id beside the interner (resized with it), counted in each growth.
   */
  constructor(
    readonly words: number,
    private readonly growth?: GrowthBudget,
    private readonly extraBytesPerId = 0,
  ) {
    this.scratch = new Uint32Array(words);
    this.keys = new Uint32Array(MIN_IDS * words);
    this.hashes = new Uint32Array(MIN_IDS);
    this.refs = new Uint32Array(MIN_IDS);
    this.freeIds = new Int32Array(MIN_IDS);
    this.index = new Int32Array(indexSize(MIN_IDS));
  }

  /** Ids currently in use. */
  get size(): number {
    return this.inUse;
  }

  /** Every id in use is below this; a scan over [0, end) with refs > 0 visits them all. */
  get end(): number {
    return this.top;
  }

  /** Ids are numbered below this; arrays kept beside the interner must be at least this long. */
  get capacity(): number {
    return this.refs.length;
  }

  /** Bytes held by the interner's arrays. */
  get bytes(): number {
    return (
      this.keys.byteLength +
      this.hashes.byteLength +
      this.refs.byteLength +
      this.freeIds.byteLength +
      this.index.byteLength
    );
  }

  /** References held on `id` (0: free). */
  refsOf(id: number): number {
    return this.refs[id]!;
  }

  /** Word `w` of the key of `id`. */
  word(id: number, w: number): number {
    return this.keys[id * this.words + w]!;
  }

  /**
   * The id of the key in `scratch`, interned if new, with one more reference; NO_KEY when the key
   * is new, no id is free and the budget refuses to grow.
   */
  acquire(): number {
    const words = this.words;
    const k = this.scratch;
    const h = hashWords(k);
    const mask = this.index.length - 1;
    let slot = h & mask;
    for (;;) {
      const v = this.index[slot]!;
      if (v === 0) break;
      const id = v - 1;
      if (this.hashes[id] === h && this.sameKey(id)) {
        this.refs[id]!++;
        return id;
      }
      slot = (slot + 1) & mask;
    }
    let id: number;
    if (this.freeCount > 0) id = this.freeIds[--this.freeCount]!;
    else {
      if (this.top === this.refs.length) {
        const n = this.nextCapacity();
        if (n === 0) return NO_KEY;
        this.grow(n);
        return this.acquire();
      }
      id = this.top++;
    }
    this.keys.set(k, id * words);
    this.hashes[id] = h;
    this.refs[id] = 1;
    this.index[slot] = id + 1;
    this.inUse++;
    return id;
  }

  /** One more reference on an id in use. */
  retain(id: number): void {
    this.refs[id]!++;
  }

  /** One reference less; the id is freed when none is left. Returns the references left. */
  release(id: number): number {
    const left = --this.refs[id]!;
    if (left === 0) this.free(id);
    return left;
  }

  private sameKey(id: number): boolean {
    const words = this.words;
    const base = id * words;
    for (let w = 0; w < words; w++) if (this.keys[base + w] !== this.scratch[w]) return false;
    return true;
  }

  private free(id: number): void {
    const mask = this.index.length - 1;
    let slot = this.hashes[id]! & mask;
    while (this.index[slot] !== id + 1) slot = (slot + 1) & mask;
    // Backward-shift deletion: entries of the probe run move back unless their home lies
    // cyclically in (hole, j].
    let hole = slot;
    for (let j = (slot + 1) & mask; this.index[j] !== 0; j = (j + 1) & mask) {
      const v = this.index[j]!;
      const home = this.hashes[v - 1]! & mask;
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        this.index[hole] = v;
        hole = j;
      }
    }
    this.index[hole] = 0;
    this.freeIds[this.freeCount++] = id;
    this.inUse--;
    // Everything released (a flush): give the memory back.
    if (this.inUse === 0 && this.refs.length > MIN_IDS) this.reset();
  }

  private reset(): void {
    this.keys = new Uint32Array(MIN_IDS * this.words);
    this.hashes = new Uint32Array(MIN_IDS);
    this.refs = new Uint32Array(MIN_IDS);
    this.freeIds = new Int32Array(MIN_IDS);
    this.index = new Int32Array(indexSize(MIN_IDS));
    this.freeCount = 0;
    this.top = 0;
  }

  /** Ids after the next growth, as large as the budget allows up to twice the current; 0: refused. */
  private nextCapacity(): number {
    const n = this.refs.length;
    if (!this.growth) return n * 2;
    const room = this.growth.headroom();
    for (const f of GROWTH_FACTORS) {
      const m = Math.ceil(n * f);
      const bytes = this.bytesFor(m);
      if (bytes <= room) {
        // The old arrays stay until the garbage collector frees them: the new ones are all extra.
        this.growth.spent(bytes);
        return m;
      }
    }
    this.growth.exhausted();
    return 0;
  }

  /** Bytes of the arrays for `ids` ids, the owner's included. */
  private bytesFor(ids: number): number {
    return ids * (this.words * 4 + ID_BYTES + this.extraBytesPerId) + indexSize(ids) * 4;
  }

  private grow(n: number): void {
    const keys = new Uint32Array(n * this.words);
    keys.set(this.keys);
    this.keys = keys;
    const hashes = new Uint32Array(n);
    hashes.set(this.hashes);
    this.hashes = hashes;
    const refs = new Uint32Array(n);
    refs.set(this.refs);
    this.refs = refs;
    const freeIds = new Int32Array(n);
    freeIds.set(this.freeIds.subarray(0, this.freeCount));
    this.freeIds = freeIds;
    this.index = new Int32Array(indexSize(n));
    const mask = this.index.length - 1;
    for (let id = 0; id < this.top; id++) {
      if (this.refs[id] === 0) continue;
      let slot = this.hashes[id]! & mask;
      while (this.index[slot] !== 0) slot = (slot + 1) & mask;
      this.index[slot] = id + 1;
    }
  }
}

/** A power of two that keeps `ids` entries under MAX_LOAD. */
function indexSize(ids: number): number {
  let n = 16;
  while (n * MAX_LOAD < ids) n *= 2;
  return n;
}

/** FNV-1a over words with a murmur-style finalizer: keys differ in their low bits (addresses). */
function hashWords(k: Uint32Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < k.length; i++) h = Math.imul(h ^ k[i]!, 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
