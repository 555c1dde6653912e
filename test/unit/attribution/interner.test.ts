import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type GrowthBudget, KeyInterner, NO_KEY } from '../../../src/attribution/interner.js';
import { TopK } from '../../../src/attribution/topk.js';

function key(i: KeyInterner, ...words: number[]): number {
  i.scratch.fill(0);
  i.scratch.set(words);
  return i.acquire();
}

describe('KeyInterner', () => {
  it('gives one id per key and counts references', () => {
    const i = new KeyInterner(2);
    const a = key(i, 1, 2);
    const b = key(i, 2, 1);
    assert.notEqual(a, b);
    assert.equal(key(i, 1, 2), a);
    assert.equal(i.refsOf(a), 2);
    assert.equal(i.size, 2);
    assert.deepEqual([i.word(b, 0), i.word(b, 1)], [2, 1]);
    assert.equal(i.release(a), 1);
    assert.equal(i.size, 2, 'still referenced');
    assert.equal(i.release(a), 0);
    assert.equal(i.size, 1);
  });

  it('reuses a freed id for the next new key', () => {
    const i = new KeyInterner(1);
    const ids = [10, 11, 12].map((w) => key(i, w));
    i.release(ids[1]!);
    const reused = key(i, 99);
    assert.equal(reused, ids[1]);
    assert.equal(i.word(reused, 0), 99);
    assert.equal(key(i, 11), 3, 'the old key is new again, with a fresh id');
    assert.equal(i.end, 4);
  });

  it('agrees with a Map through growth, frees and crowded probe runs', () => {
    // A small key space drawn at random: many lookups of present keys, long probe runs, frees in
    // the middle of runs (backward-shift deletion must keep every key findable).
    const i = new KeyInterner(3);
    const model = new Map<string, { id: number; refs: number }>();
    let seed = 7;
    const rand = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    /** Interns key `w` (a reference more if present, a new id if not), as the model does. */
    const intern = (w: number[], at: string) => {
      const k = w.join(',');
      const m = model.get(k);
      const id = key(i, ...w);
      if (m) {
        assert.equal(id, m.id, `${at}: key ${k} keeps its id`);
        m.refs++;
      } else {
        for (const other of model.values()) assert.notEqual(other.id, id);
        model.set(k, { id, refs: 1 });
      }
      assert.deepEqual([i.word(id, 0), i.word(id, 1), i.word(id, 2)], w);
    };
    for (let step = 0; step < 200_000; step++) {
      const w = [rand(40), rand(40), rand(3) * 0x10000];
      const k = w.join(',');
      const m = model.get(k);
      if (m && rand(2) === 0) {
        assert.equal(i.release(m.id), m.refs - 1);
        if (--m.refs === 0) model.delete(k);
      } else intern(w, `step ${step}`);
      assert.equal(i.size, model.size);
    }
    for (const m of model.values()) assert.equal(i.refsOf(m.id), m.refs);
  });

  it('gives its memory back once every key is released', () => {
    const i = new KeyInterner(1);
    const ids: number[] = [];
    for (let n = 0; n < 10_000; n++) ids.push(key(i, n));
    const big = i.bytes;
    for (const id of ids) i.release(id);
    assert.equal(i.size, 0);
    assert.ok(i.bytes < big / 10, `${i.bytes} bytes left of ${big}`);
    assert.equal(key(i, 5), 0);
  });
});

/** A budget with `room` bytes that records what it granted. */
class Room implements GrowthBudget {
  granted: number[] = [];
  exhaustedTimes = 0;
  constructor(public room: number) {}
  headroom(): number {
    return this.room;
  }
  spent(bytes: number): void {
    this.granted.push(bytes);
    this.room -= bytes;
  }
  exhausted(): void {
    this.exhaustedTimes++;
  }
}

describe('KeyInterner under a growth budget', () => {
  /** Interns keys 0..n-1 of one word. */
  const fill = (i: KeyInterner, from: number, to: number) => {
    for (let n = from; n < to; n++) key(i, n);
  };

  it('doubles while the budget allows, then takes smaller steps that fit', () => {
    // Per id: 4 key bytes + 12 + 8 extra; the index is a power of two of 4-byte slots.
    const bytesFor = (ids: number, index: number) => ids * 24 + index * 4;
    const budget = new Room(bytesFor(512, 1024) + bytesFor(640, 1024));
    const i = new KeyInterner(1, budget, 8);
    fill(i, 0, 257);
    assert.equal(i.capacity, 512, 'doubled');
    fill(i, 257, 513);
    assert.equal(i.capacity, 640, 'x1.25: x2 and x1.5 did not fit');
    assert.deepEqual(budget.granted, [bytesFor(512, 1024), bytesFor(640, 1024)]);
    assert.equal(budget.exhaustedTimes, 0);
  });

  it('refuses a new key when no id is free and no step fits; known keys and freed ids still work', () => {
    const budget = new Room(0);
    const i = new KeyInterner(1, budget);
    fill(i, 0, 256);
    const bytes = i.bytes;
    assert.equal(key(i, 1000), NO_KEY);
    assert.equal(budget.exhaustedTimes, 1);
    assert.equal(i.size, 256);
    assert.equal(i.bytes, bytes, 'nothing allocated');
    assert.equal(key(i, 7), 7, 'a known key keeps its id');
    assert.equal(i.refsOf(7), 2);
    // A key that leaves frees its id: the next new key takes it without growing.
    i.release(3);
    assert.equal(key(i, 2000), 3);
    assert.equal(key(i, 2001), NO_KEY);
    // Room again: growth resumes.
    budget.room = Number.POSITIVE_INFINITY;
    assert.equal(key(i, 2001), 256);
    assert.equal(i.capacity, 512);
  });
});

describe('TopK', () => {
  it('selects the K largest in one pass, ties to the smaller id, like a full sort', () => {
    let seed = 3;
    const rand = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    for (const k of [1, 2, 5, 10, 64]) {
      const heap = new TopK(k);
      for (let round = 0; round < 20; round++) {
        const n = rand(300);
        const vals = Array.from({ length: n }, () => rand(20));
        for (const [id, v] of vals.entries()) heap.offer(id, v);
        const expected = vals
          .map((v, id) => ({ id, v }))
          .filter((e) => e.v > 0)
          .sort((a, b) => b.v - a.v || a.id - b.id)
          .slice(0, k);
        const got = heap.drain();
        assert.deepEqual(
          got.ids,
          expected.map((e) => e.id),
          `k=${k} round ${round}`,
        );
        assert.deepEqual(
          got.values,
          expected.map((e) => e.v),
        );
      }
    }
  });
});
