import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DEFAULT_SILENT_SCHEDULE,
  SILENT_CPU_BUDGET,
  silentInterval,
} from '../../../src/sync/silent-schedule.js';

describe('silentInterval', () => {
  it('small tables get the floor', () => {
    assert.equal(silentInterval(0.004), 5);
    assert.equal(silentInterval(0), 5);
    assert.equal(silentInterval(Number.NaN), 5);
  });

  it('big tables get dump time / budget, so re-dumps stay within the CPU budget', () => {
    const dump = 2.5; // about 1M flows
    const every = silentInterval(dump);
    assert.equal(every, dump / SILENT_CPU_BUDGET);
    assert.ok(dump / every! <= SILENT_CPU_BUDGET + 1e-12);
  });

  it('grows with the last dump, never shrinks below the floor', () => {
    let prev = 0;
    for (const d of [0, 0.05, 0.1, 0.2, 1, 3, 10]) {
      const s = silentInterval(d)!;
      assert.ok(s >= prev && s >= DEFAULT_SILENT_SCHEDULE.minSeconds);
      prev = s;
    }
  });

  it('is off with a zero floor; a budget outside (0, 1] is refused', () => {
    assert.equal(silentInterval(1, { minSeconds: 0, cpuBudget: 0.02 }), undefined);
    assert.throws(() => silentInterval(1, { minSeconds: 5, cpuBudget: 0 }), RangeError);
    assert.throws(() => silentInterval(1, { minSeconds: 5, cpuBudget: 2 }), RangeError);
  });
});
