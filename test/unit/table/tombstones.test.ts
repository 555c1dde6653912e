import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Tombstones } from '../../../src/table/tombstones.js';

const t = (group: number) => ({ group, started: 1, since: 2 });

describe('Tombstones', () => {
  it('gives a tombstone back once, for its id and tuple hash only', () => {
    const ts = new Tombstones(8, 10);
    ts.add(7, 70, t(3), 100);
    assert.equal(ts.take(7, 71, 101), undefined, 'another tuple with the same id');
    assert.deepEqual(ts.take(7, 70, 101), { group: 3, started: 1, since: 2, hash: 70, at: 100 });
    assert.equal(ts.take(7, 70, 101), undefined, 'used up');
  });

  it('forgets after the time-to-live, oldest first', () => {
    const ts = new Tombstones(8, 10);
    ts.add(1, 1, t(1), 100);
    ts.add(2, 2, t(2), 105);
    assert.equal(ts.take(1, 1, 111), undefined);
    ts.expire(116);
    assert.equal(ts.size, 0);
    ts.add(3, 3, t(3), 120);
    ts.expire(125);
    assert.equal(ts.size, 1);
  });

  it('keeps at most its limit', () => {
    const ts = new Tombstones(2, 10);
    for (let id = 0; id < 5; id++) ts.add(id, id, t(id), 100);
    assert.equal(ts.size, 2);
    assert.equal(ts.take(4, 4, 100), undefined);
    assert.equal(ts.take(0, 0, 100)?.group, 0);
  });
});
