import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConntrackError } from '../../../src/errors.js';
import { EventApplier } from '../../../src/sync/applier.js';
import { CollectorCounters } from '../../../src/sync/counters.js';
import { DEFAULT_DRIFT_OPTIONS } from '../../../src/sync/drift.js';
import {
  DEFAULT_SCHEDULER_OPTIONS,
  ResyncScheduler,
  type SchedulerOptions,
} from '../../../src/sync/scheduler.js';
import { maxDriftResyncs } from '../../support/drift.js';
import { tcp, udp } from '../helpers/flows.js';
import { FakeTimers, settle } from './fake-timers.js';
import { emptyTable, RecordingLog, ScriptedDumper } from './scripted.js';

/** Dumps take no CPU unless a test says so: the silent schedule stays at its 5 s floor. */
function setup(dumper: ScriptedDumper, options: Partial<SchedulerOptions> = {}) {
  const table = emptyTable();
  const counters = new CollectorCounters();
  const log = new RecordingLog();
  const timers = new FakeTimers();
  const applier = new EventApplier(table, counters, log, () => timers.now());
  const scheduler = new ResyncScheduler(
    { table, dumper, applier, counters, log, timers },
    { ...DEFAULT_SCHEDULER_OPTIONS, cpuClock: () => 0, ...options },
  );
  return { table, counters, log, timers, applier, scheduler };
}

const failure = new ConntrackError('CT_ERR_TIMEOUT', 'no reply');
/** Silent re-dumps off, for tests of other schedules. */
const SILENT_OFF = { minSeconds: 0, cpuBudget: 0.02 };

describe('ResyncScheduler', () => {
  it('is ready only after the start-up dump is merged, and counts it with its time', async () => {
    const dumper = new ScriptedDumper([tcp(1, 'ESTABLISHED'), udp(2, 'REPLIED')]);
    const { table, counters, timers, scheduler } = setup(dumper);
    const started = scheduler.start();
    assert.equal(scheduler.ready, false);
    await started;
    assert.equal(scheduler.ready, true);
    assert.equal(table.size, 2);
    assert.equal(counters.resyncs.startup, 1);
    assert.equal(counters.lastResync, timers.now() / 1000);
  });

  it('an overrun triggers one resync; overruns during it collapse into one follow-up, a second later', async () => {
    const dumper = new ScriptedDumper([tcp(1, 'ESTABLISHED')]);
    const { table, counters, timers, scheduler } = setup(dumper, { silentSchedule: SILENT_OFF });
    await scheduler.start();
    dumper.flows = [tcp(1, 'ESTABLISHED'), tcp(2, 'SYN_SENT')];
    scheduler.onOverrun();
    scheduler.onOverrun();
    scheduler.onOverrun();
    await settle();
    assert.equal(counters.overruns, 3);
    assert.equal(counters.resyncs.overrun, 1);
    assert.equal(table.size, 2);
    await timers.advance(999);
    assert.equal(dumper.calls, 2, 'the follow-up waits its delay');
    await timers.advance(1);
    assert.equal(counters.resyncs.overrun, 2);
    assert.equal(dumper.calls, 3);
    await timers.advance(60_000);
    assert.equal(dumper.calls, 3, 'and there is only one');
  });

  it('events lost while a dump runs call for another dump after it', async () => {
    const dumper = new ScriptedDumper([tcp(1, 'ESTABLISHED'), tcp(2, 'ESTABLISHED')]);
    const { counters, timers, scheduler } = setup(dumper);
    await scheduler.start();
    dumper.during = () => {
      dumper.during = undefined;
      scheduler.onOverrun();
    };
    await scheduler.resync('periodic');
    assert.equal(counters.overruns, 1);
    await timers.advance(1000);
    assert.equal(counters.resyncs.overrun, 1);
    assert.equal(dumper.calls, 3);
  });

  it('a failed start-up dump rejects start(); a failed later resync is counted, not thrown', async () => {
    const failing = setup(new ScriptedDumper([], undefined, failure));
    await assert.rejects(
      failing.scheduler.start(),
      (e: unknown) => e instanceof ConntrackError && e.code === 'CT_ERR_TIMEOUT',
    );
    assert.equal(failing.scheduler.ready, false);
    assert.equal(failing.counters.resyncFailures.startup, 1);

    const dumper = new ScriptedDumper([]);
    const ok = setup(dumper);
    await ok.scheduler.start();
    dumper.fail = failure;
    await ok.scheduler.resync('periodic');
    await ok.scheduler.resync('drift');
    assert.deepEqual(ok.counters.resyncFailures, {
      startup: 0,
      overrun: 0,
      drift: 1,
      periodic: 1,
      silent: 0,
    });
    assert.equal(ok.table.syncing, false);
    assert.equal(ok.scheduler.ready, true, 'the table stays as good as the events keep it');
  });

  it('resyncs on the periodic timer', async () => {
    const dumper = new ScriptedDumper([]);
    const { counters, timers, scheduler } = setup(dumper);
    await scheduler.start(60_000);
    await timers.advance(59_999);
    assert.equal(counters.resyncs.periodic, 0);
    await timers.advance(1);
    assert.equal(counters.resyncs.periodic, 1);
    await timers.advance(120_000);
    assert.equal(counters.resyncs.periodic, 3);
  });

  it('re-dumps while silent flows remain, and stops when they are gone', async () => {
    const dumper = new ScriptedDumper([tcp(1, 'ESTABLISHED'), udp(2, 'ASSURED')]);
    const { table, counters, timers, scheduler } = setup(dumper);
    await scheduler.start();
    assert.equal(table.silentFlows, 2);
    dumper.flows = [tcp(1, 'FIN_WAIT')]; // 2 ended without a DESTROY; 1 changed without an UPDATE
    await timers.advance(4_999);
    assert.equal(counters.resyncs.silent, 0, 'not before the 5 s floor');
    await timers.advance(1);
    assert.equal(counters.resyncs.silent, 1);
    assert.equal(table.size, 1);
    assert.equal(table.silentFlows, 1);
    dumper.flows = [];
    await timers.advance(5_000);
    assert.equal(counters.resyncs.silent, 2);
    assert.equal(table.silentFlows, 0);
    await timers.advance(600_000);
    assert.equal(dumper.calls, 3, 'no more re-dumps once no silent flow is left');
    assert.equal(timers.pending, 0);
  });

  it('spaces silent re-dumps by the CPU the last dump took, within the budget', async () => {
    const dumper = new ScriptedDumper([tcp(1, 'ESTABLISHED')]);
    let cpu = 0;
    const { counters, timers, scheduler } = setup(dumper, {
      // Each reading advances 5 CPU seconds: every dump costs 5 s of CPU.
      cpuClock: () => (cpu += 5),
      silentSchedule: { minSeconds: 5, cpuBudget: 0.5 },
    });
    await scheduler.start();
    assert.equal(counters.lastDumpCpuSeconds, 5);
    // 5 CPU seconds at a 50% budget: the next re-dump is 10 s away, not at the 5 s floor.
    await timers.advance(9_999);
    assert.equal(counters.resyncs.silent, 0);
    await timers.advance(1);
    assert.equal(counters.resyncs.silent, 1);
  });

  it('silent re-dumps off (minSeconds 0): silent flows are counted, never re-dumped', async () => {
    const dumper = new ScriptedDumper([tcp(1, 'ESTABLISHED')]);
    const { table, timers, scheduler } = setup(dumper, { silentSchedule: SILENT_OFF });
    await scheduler.start();
    assert.equal(table.silentFlows, 1);
    assert.equal(timers.pending, 0);
  });

  it('after a reopened event socket the dump marks its new flows silent; after an overrun it does not', async () => {
    const dumper = new ScriptedDumper([]);
    const { table, counters, scheduler } = setup(dumper);
    await scheduler.start();
    dumper.flows = [tcp(1, 'ESTABLISHED')];
    scheduler.onOverrun();
    await settle();
    assert.equal(table.silentFlows, 0, 'the socket listened throughout: flow 1 sends events');
    dumper.flows = [tcp(1, 'ESTABLISHED'), tcp(2, 'ESTABLISHED')];
    scheduler.onResubscribed();
    await settle();
    assert.equal(counters.resyncs.overrun, 2);
    assert.equal(table.silentFlows, 1, 'flow 2 came while nobody listened');
  });

  it('a dump that fails after a reopened socket leaves the next one to mark silent flows', async () => {
    const dumper = new ScriptedDumper([]);
    const { table, timers, scheduler } = setup(dumper);
    await scheduler.start();
    dumper.fail = failure;
    scheduler.onResubscribed();
    await settle();
    dumper.fail = undefined;
    dumper.flows = [tcp(1, 'ESTABLISHED')];
    await scheduler.resync('periodic');
    assert.equal(table.silentFlows, 1);
    assert.equal(timers.pending, 1, 'and follows them');
  });

  it('a difference from the kernel count, confirmed, triggers one drift resync that fixes it', async () => {
    const dumper = new ScriptedDumper([tcp(1, 'ESTABLISHED'), tcp(2, 'ESTABLISHED'), udp(3, 'ASSURED')]);
    const { table, counters, timers, scheduler } = setup(dumper, {
      silentSchedule: SILENT_OFF,
    });
    await scheduler.start();
    dumper.flows = [tcp(1, 'ESTABLISHED')]; // two silent flows deleted: no DESTROY comes
    scheduler.observeKernelCount(1);
    await settle();
    assert.equal(counters.resyncs.drift, 0, 'not before it is confirmed');
    await timers.advance(DEFAULT_DRIFT_OPTIONS.confirmSeconds * 1000);
    scheduler.observeKernelCount(1);
    await settle();
    assert.equal(counters.resyncs.drift, 1);
    assert.equal(table.size, 1);
    await timers.advance(5_000);
    scheduler.observeKernelCount(1);
    await settle();
    assert.equal(counters.resyncs.drift, 1, 'fixed: nothing more to do');
  });

  it('ignores kernel counts before the first dump and while a dump runs', async () => {
    const dumper = new ScriptedDumper([tcp(1, 'ESTABLISHED')]);
    const { counters, timers, scheduler } = setup(dumper);
    scheduler.observeKernelCount(100);
    const started = scheduler.start();
    scheduler.observeKernelCount(100);
    await started;
    await timers.advance(DEFAULT_DRIFT_OPTIONS.confirmSeconds * 1000);
    scheduler.observeKernelCount(100);
    await settle();
    assert.equal(counters.resyncs.drift, 0, 'the first difference counted is this one');
  });

  it('the drift timer reads the kernel count by itself and resyncs without any scrape', async () => {
    const dumper = new ScriptedDumper([tcp(1, 'ESTABLISHED'), udp(2, 'ASSURED')]);
    let kernel = 2;
    let reads = 0;
    const { table, counters, timers, scheduler } = setup(dumper, {
      silentSchedule: SILENT_OFF,
      kernelCount: async () => {
        reads++;
        return kernel;
      },
    });
    await scheduler.start();
    dumper.flows = [];
    kernel = 0; // conntrack -F of flows that send no events
    await timers.advance(DEFAULT_SCHEDULER_OPTIONS.driftCheckMs);
    assert.equal(reads, 1);
    assert.equal(counters.resyncs.drift, 0, 'seen once: confirmed by a read of its own');
    await timers.advance(DEFAULT_DRIFT_OPTIONS.confirmSeconds * 1000);
    assert.equal(reads, 2);
    assert.equal(counters.resyncs.drift, 1);
    assert.equal(table.size, 0);
    scheduler.stop();
    assert.equal(timers.pending, 0, 'stop() leaves no timer behind');
  });

  it('a drift check that cannot read the kernel is counted, not thrown, and logged once a minute', async () => {
    const { counters, log, timers, scheduler } = setup(new ScriptedDumper([]), {
      kernelCount: async () => {
        throw failure;
      },
    });
    await scheduler.start();
    await timers.advance(60_000);
    assert.equal(counters.driftReadErrors, 12);
    assert.equal(log.count('warn'), 1);
    await timers.advance(5_000);
    assert.equal(log.count('warn'), 2);
    scheduler.stop();
  });

  it('no resync storm: a difference no resync can fix costs at most the rate limit, then backs off', async () => {
    // The kernel counts 20 entries, the dump only ever shows 10 (e.g. unconfirmed entries).
    const flows = Array.from({ length: 10 }, (_, i) => udp(i + 1, 'UNREPLIED'));
    const { counters, timers, scheduler } = setup(new ScriptedDumper(flows), {
      silentSchedule: SILENT_OFF,
    });
    await scheduler.start();
    const seconds = 600;
    for (let t = 0; t < seconds; t++) {
      scheduler.observeKernelCount(20); // a scrape or drift check every second
      await timers.advance(1000);
    }
    const drift = counters.resyncs.drift;
    assert.ok(drift >= 1, 'the difference was acted on');
    assert.ok(drift <= maxDriftResyncs(seconds), `${drift} drift resyncs within the rate limit`);
    // With the back-off (gaps 10, 20, 40, ... s) it is far fewer than the rate limit allows.
    assert.equal(drift, 6);
  });

  it('stop() cancels what is scheduled: no dump after it, and resync() is a no-op', async () => {
    const dumper = new ScriptedDumper([tcp(1, 'ESTABLISHED')]);
    const { timers, scheduler } = setup(dumper, { kernelCount: async () => 5 });
    await scheduler.start(30_000);
    scheduler.onOverrun();
    scheduler.onOverrun(); // a follow-up is due a second after the first
    await settle();
    const calls = dumper.calls;
    scheduler.stop();
    assert.equal(timers.pending, 0);
    await scheduler.resync('periodic');
    await timers.advance(600_000);
    assert.equal(dumper.calls, calls);
  });
});
