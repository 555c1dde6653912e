import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Collector, type CollectorOptions } from '../../../src/sync/collector.js';
import { encodeFlow } from '../../support/codec/flow.js';
import { batchOf } from '../../support/fake-transport.js';
import { tcp, udp } from '../helpers/flows.js';
import { FakeTimers, settle } from './fake-timers.js';
import { emptyTable, RecordingLog, ScriptedDumper } from './scripted.js';

function setup(dumper: ScriptedDumper, options: Partial<CollectorOptions> = {}) {
  const table = emptyTable();
  const timers = new FakeTimers();
  const collector = new Collector({
    table,
    dumper,
    log: new RecordingLog(),
    timers,
    cpuClock: () => 0,
    ...options,
  });
  return { table, timers, collector };
}

/** The applier and the scheduler are tested on their own; this is their composition. */
describe('Collector', () => {
  it('is ready only after the start-up dump is merged, and counts it', async () => {
    const { table, collector } = setup(new ScriptedDumper([tcp(1, 'ESTABLISHED'), udp(2, 'REPLIED')]));
    assert.equal(collector.ready, false);
    await collector.start();
    assert.equal(collector.ready, true);
    assert.equal(table.size, 2);
    assert.equal(collector.counters.resyncs.startup, 1);
    assert.ok(collector.counters.lastResync > 0);
  });

  it('events that arrive while the start-up dump runs are merged, destroys not resurrected', async () => {
    const dumper = new ScriptedDumper([tcp(1, 'ESTABLISHED'), tcp(2, 'ESTABLISHED')]);
    const { table, collector } = setup(dumper);
    dumper.during = () => {
      collector.onDatagram(encodeFlow(tcp(1, 'ESTABLISHED'), { type: 'destroy' }));
      collector.onBatch(
        batchOf([
          encodeFlow(tcp(2, 'ESTABLISHED'), { type: 'destroy' }),
          encodeFlow(udp(3, 'UNREPLIED'), { type: 'new' }),
        ]),
      );
    };
    await collector.start();
    // 1 was staged before it died, 2 after: neither may survive; 3 is kept.
    assert.equal(table.size, 1);
    assert.equal(collector.counters.eventsDestroy, 2);
  });

  it('the counters the metrics read are the ones both halves write', async () => {
    const dumper = new ScriptedDumper([]);
    const { collector } = setup(dumper);
    await collector.start();
    const counters = collector.counters;
    collector.onDatagram(Buffer.alloc(3));
    collector.onOverrun();
    await settle();
    assert.equal(counters, collector.counters);
    assert.deepEqual([counters.decodeErrors, counters.overruns, counters.resyncs.overrun], [1, 1, 1]);
  });

  it('takes its schedule from the options: follow-up delay, drift timer, silent re-dumps', async () => {
    const dumper = new ScriptedDumper([tcp(1, 'ESTABLISHED')]);
    let reads = 0;
    const { timers, collector } = setup(dumper, {
      followUpDelayMs: 200,
      kernelCount: async () => {
        reads++;
        return 1;
      },
      driftCheckMs: 2_000,
      silentSchedule: { minSeconds: 30, cpuBudget: 0.02 },
    });
    await collector.start();
    collector.onOverrun();
    collector.onResubscribed();
    await timers.advance(200);
    assert.equal(dumper.calls, 3, 'the collapsed follow-up after 200 ms');
    await timers.advance(1_800);
    assert.equal(reads, 1, 'the drift timer every 2 s');
    await timers.advance(28_000);
    assert.equal(collector.counters.resyncs.silent, 1, 'the silent re-dump 30 s after the last dump');
    collector.stop();
    assert.equal(timers.pending, 0);
  });
});
