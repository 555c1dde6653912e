import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_DRIFT_OPTIONS, DriftGuard, type DriftOptions } from '../../../src/sync/drift.js';
import { maxDriftResyncs } from '../../support/drift.js';
import { FakeClock } from '../helpers/flows.js';

function setup(options: Partial<DriftOptions> = {}) {
  const clock = new FakeClock();
  const opts = { ...DEFAULT_DRIFT_OPTIONS, ...options };
  return { clock, opts, guard: new DriftGuard(opts, clock.read) };
}

describe('DriftGuard', () => {
  it('does nothing while the table equals the kernel', () => {
    const { guard, clock } = setup();
    for (let i = 0; i < 10; i++) {
      assert.deepEqual(guard.observe({ kernel: 100, table: 100, events: 0 }), { action: 'none' });
      clock.advance(5);
    }
  });

  it('asks to confirm a difference, then resyncs when it is seen again confirmSeconds later', () => {
    const { guard, clock } = setup();
    // A flush of silent flows: the table still holds 80, the kernel has 13.
    assert.deepEqual(guard.observe({ kernel: 13, table: 80, events: 0 }), {
      action: 'confirm',
      afterSeconds: 1,
    });
    clock.advance(0.4);
    const early = guard.observe({ kernel: 13, table: 80, events: 0 });
    assert.equal(early.action, 'confirm');
    assert.ok(early.action === 'confirm' && Math.abs(early.afterSeconds - 0.6) < 1e-9);
    clock.advance(0.6);
    assert.deepEqual(guard.observe({ kernel: 13, table: 80, events: 0 }), {
      action: 'resync',
      difference: 67,
      gapSeconds: 10,
    });
  });

  it('a transient difference (gone, or of the other sign, at the next check) never resyncs', () => {
    const { guard, clock } = setup();
    assert.equal(guard.observe({ kernel: 10, table: 12, events: 0 }).action, 'confirm');
    clock.advance(1);
    assert.equal(guard.observe({ kernel: 10, table: 10, events: 0 }).action, 'none');
    clock.advance(1);
    assert.equal(guard.observe({ kernel: 10, table: 12, events: 0 }).action, 'confirm');
    clock.advance(1);
    assert.equal(guard.observe({ kernel: 14, table: 12, events: 0 }).action, 'confirm', 'sign flipped');
  });

  it('tolerates a share of the table and the events that may still be in flight', () => {
    const { guard, clock } = setup();
    // 0.1% of 1M entries = 1000 flows of noise.
    assert.equal(guard.observe({ kernel: 1_000_000, table: 1_000_999, events: 0 }).action, 'none');
    clock.advance(1);
    // 200k events in the last second: 0.1 s of them (20k) may be unread.
    const o = { kernel: 1_000_000, table: 1_015_000, events: 200_000 };
    assert.equal(guard.tolerance(o), 1000 + 20_000);
    assert.equal(guard.observe(o).action, 'none');
    clock.advance(1);
    // The same difference without events to explain it is drift.
    assert.equal(guard.observe({ ...o, events: 200_000 }).action, 'confirm');
  });

  it('rate limits drift resyncs and doubles the gap while the difference persists', () => {
    const { guard, clock } = setup();
    const stuck = { kernel: 50, table: 0, events: 0 }; // a difference no resync fixes
    const resyncAt: number[] = [];
    const t0 = clock.now;
    for (let t = 0; t < 900; t++) {
      const d = guard.observe(stuck);
      if (d.action === 'resync') {
        resyncAt.push(clock.now - t0);
        guard.resynced();
      }
      clock.advance(1);
    }
    // Gaps 10, 20, 40, ..., capped at 600: resyncs at 1, 11, 31, 71, 151, 311, 631.
    assert.deepEqual(resyncAt, [1, 11, 31, 71, 151, 311, 631]);
    assert.ok(resyncAt.length <= maxDriftResyncs(900));
    assert.equal(guard.gapSeconds, 600);
  });

  it('waits out the gap, then shrinks it back once the drift has been gone for as long', () => {
    const { guard, clock } = setup();
    const drift = { kernel: 50, table: 0, events: 0 };
    const fine = { kernel: 50, table: 50, events: 0 };
    guard.observe(drift);
    clock.advance(1);
    assert.equal(guard.observe(drift).action, 'resync');
    guard.resynced();
    assert.equal(guard.gapSeconds, 20);
    clock.advance(2);
    guard.observe(drift);
    clock.advance(1);
    const w = guard.observe(drift);
    assert.deepEqual(w, { action: 'wait', afterSeconds: 7, difference: -50 });
    clock.advance(7);
    assert.equal(guard.observe(drift).action, 'resync');
    guard.resynced();
    assert.equal(guard.gapSeconds, 40);
    clock.advance(39);
    guard.observe(fine);
    assert.equal(guard.gapSeconds, 40, 'not gone for a whole gap yet');
    clock.advance(1);
    guard.observe(fine);
    assert.equal(guard.gapSeconds, 10);
  });

  it('a completed resync drops the suspicion raised before it', () => {
    const { guard, clock } = setup();
    guard.observe({ kernel: 0, table: 5, events: 0 });
    guard.resynced();
    clock.advance(2);
    assert.equal(guard.observe({ kernel: 0, table: 5, events: 0 }).action, 'confirm');
  });

  it('refuses options without a rate limit', () => {
    const clock = new FakeClock();
    assert.throws(
      () => new DriftGuard({ ...DEFAULT_DRIFT_OPTIONS, minGapSeconds: 0 }, clock.read),
      RangeError,
    );
    assert.throws(
      () => new DriftGuard({ ...DEFAULT_DRIFT_OPTIONS, minGapSeconds: 10, maxGapSeconds: 5 }, clock.read),
      RangeError,
    );
  });

  it('maxDriftResyncs is the rate limit: one now, then one per minimum gap', () => {
    assert.equal(maxDriftResyncs(0), 1);
    assert.equal(maxDriftResyncs(60), 7);
    assert.equal(maxDriftResyncs(60, { ...DEFAULT_DRIFT_OPTIONS, minGapSeconds: 30 }), 3);
  });
});
