import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DumpSink } from '../../../src/ctnetlink/client.js';
import { ConntrackError } from '../../../src/errors.js';
import { Collector, type CollectorOptions, type Dumper, type Log } from '../../../src/sync/collector.js';
import { DEFAULT_DRIFT_OPTIONS } from '../../../src/sync/drift.js';
import { ShadowTable, type TableObserver, wallClock } from '../../../src/table/table.js';
import { encodeFlow, type Flow } from '../../support/codec/flow.js';
import { maxDriftResyncs } from '../../support/drift.js';
import { batchOf } from '../../support/fake-transport.js';
import { FakeClock, tcp, udp } from '../helpers/flows.js';

const quiet: Log = { debug() {}, info() {}, warn() {}, error() {} };
const noObserver: TableObserver = { transition() {}, stateLeft() {}, flowEnded() {} };

/** A dumper that serves a scripted table, optionally running `during` in the middle of the dump. */
class ScriptedDumper implements Dumper {
  calls = 0;
  constructor(
    public flows: Flow[],
    public during?: () => void,
    public fail?: ConntrackError,
  ) {}
  async dumpTable(sink: DumpSink) {
    this.calls++;
    await Promise.resolve();
    if (this.fail) throw this.fail;
    sink.begin(1);
    const half = Math.ceil(this.flows.length / 2);
    const entry = (f: Flow) => {
      const buf = encodeFlow(f);
      sink.entry(buf, 0, buf.length);
    };
    this.flows.slice(0, half).forEach(entry);
    this.during?.();
    this.flows.slice(half).forEach(entry);
    return { flows: this.flows.length, attempts: 1 };
  }
}

function setup(dumper: Dumper, options: Partial<CollectorOptions> = {}) {
  const table = new ShadowTable(noObserver, new FakeClock().read);
  // No follow-up delay: the tests wait on promises, not on the production back-off.
  const collector = new Collector({
    table,
    dumper,
    log: quiet,
    clock: wallClock,
    followUpDelayMs: 0,
    silentSchedule: { minSeconds: 0, cpuBudget: 0.02 },
    ...options,
  });
  return { table, collector };
}

const settle = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

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

  it('applies event datagrams and counts them by type', async () => {
    const { table, collector } = setup(new ScriptedDumper([]));
    await collector.start();
    collector.onDatagram(encodeFlow(tcp(7, 'SYN_SENT'), { type: 'new' }));
    collector.onDatagram(encodeFlow(tcp(7, 'ESTABLISHED'), { type: 'update' }));
    collector.onDatagram(encodeFlow(tcp(7, 'ESTABLISHED'), { type: 'destroy' }));
    assert.deepEqual(
      [collector.counters.eventsNew, collector.counters.eventsUpdate, collector.counters.eventsDestroy],
      [1, 1, 1],
    );
    assert.equal(table.size, 0);
  });

  it('counts and skips a malformed datagram, then keeps working', async () => {
    const { table, collector } = setup(new ScriptedDumper([]));
    await collector.start();
    const good = encodeFlow(tcp(1, 'SYN_SENT'), { type: 'new' });
    const truncated = good.subarray(0, good.length - 6);
    collector.onDatagram(truncated);
    const badAttr = Buffer.from(good);
    badAttr.writeUInt16LE(0xfff0, 20); // first attribute claims more bytes than the message has
    collector.onDatagram(badAttr);
    const noId = tcp(2, 'SYN_SENT');
    noId.id = undefined;
    collector.onDatagram(encodeFlow(noId, { type: 'new' }));
    assert.equal(collector.counters.decodeErrors, 3);
    collector.onDatagram(good);
    assert.equal(table.size, 1);
  });

  it('takes a batch from the socket: whole datagrams applied, truncated ones counted', async () => {
    const { table, collector } = setup(new ScriptedDumper([]));
    await collector.start();
    const datagrams = [1, 2, 3].map((id) => encodeFlow(tcp(id, 'SYN_SENT'), { type: 'new' }));
    collector.onBatch(batchOf(datagrams, { truncated: 1 }));
    assert.equal(collector.counters.eventsNew, 2);
    assert.equal(collector.counters.decodeErrors, 1);
    assert.equal(table.size, 2);
  });

  it('events that arrive while the start-up dump runs are merged, destroys not resurrected', async () => {
    const dumper = new ScriptedDumper([tcp(1, 'ESTABLISHED'), tcp(2, 'ESTABLISHED')]);
    const { table, collector } = setup(dumper);
    dumper.during = () => {
      collector.onDatagram(encodeFlow(tcp(1, 'ESTABLISHED'), { type: 'destroy' }));
      collector.onDatagram(encodeFlow(tcp(2, 'ESTABLISHED'), { type: 'destroy' }));
      collector.onDatagram(encodeFlow(udp(3, 'UNREPLIED'), { type: 'new' }));
    };
    await collector.start();
    // 1 was staged before it died, 2 after: neither may survive; 3 is kept.
    assert.equal(table.size, 1);
  });

  it('an overrun triggers one resync; overruns during it collapse into one more', async () => {
    const dumper = new ScriptedDumper([tcp(1, 'ESTABLISHED')]);
    const { collector } = setup(dumper);
    await collector.start();
    dumper.flows = [tcp(1, 'ESTABLISHED'), tcp(2, 'SYN_SENT')];
    collector.onOverrun();
    collector.onOverrun();
    collector.onOverrun();
    // first resync + one follow-up for the overruns that came while it ran
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(collector.counters.overruns, 3);
    assert.equal(collector.counters.resyncs.overrun, 2);
    assert.equal(dumper.calls, 3);
  });

  it('a failed start-up dump rejects start(); a failed later resync is counted, not thrown', async () => {
    const err = new ConntrackError('CT_ERR_TIMEOUT', 'no reply');
    const failing = setup(new ScriptedDumper([], undefined, err));
    await assert.rejects(
      failing.collector.start(),
      (e: unknown) => e instanceof ConntrackError && e.code === 'CT_ERR_TIMEOUT',
    );
    assert.equal(failing.collector.ready, false);

    const dumper = new ScriptedDumper([]);
    const ok = setup(dumper);
    await ok.collector.start();
    dumper.fail = err;
    await ok.collector.resync('periodic');
    await ok.collector.resync('drift');
    assert.deepEqual(ok.collector.counters.resyncFailures, {
      startup: 0,
      overrun: 0,
      drift: 1,
      periodic: 1,
      silent: 0,
    });
    assert.equal(ok.table.syncing, false);
  });

  it('re-dumps while silent flows remain, and stops when they are gone', async () => {
    const dumper = new ScriptedDumper([tcp(1, 'ESTABLISHED'), udp(2, 'ASSURED')]);
    // Fake clocks: every dump takes 0 s and no CPU, so the schedule stays at its floor.
    const { table, collector } = setup(dumper, {
      clock: new FakeClock().read,
      cpuClock: new FakeClock().read,
      silentSchedule: { minSeconds: 0.005, cpuBudget: 0.02 },
    });
    await collector.start();
    assert.equal(table.silentFlows, 2);
    dumper.flows = [tcp(1, 'FIN_WAIT')]; // 2 ended without a DESTROY; 1 changed without an UPDATE
    await new Promise((r) => setTimeout(r, 30));
    assert.ok(collector.counters.resyncs.silent >= 1);
    assert.equal(table.size, 1);
    assert.equal(table.silentFlows, 1);
    dumper.flows = [];
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(table.silentFlows, 0);
    const settled = dumper.calls;
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(dumper.calls, settled, 'no more re-dumps once no silent flow is left');
    collector.stop();
  });

  it('spaces silent re-dumps by the CPU the last dump took, within the budget', async () => {
    const dumper = new ScriptedDumper([tcp(1, 'ESTABLISHED')]);
    let cpu = 0;
    const { collector } = setup(dumper, {
      clock: new FakeClock().read,
      // Each reading advances 5 CPU seconds: every dump costs 5 s of CPU.
      cpuClock: () => (cpu += 5),
      silentSchedule: { minSeconds: 0.005, cpuBudget: 0.5 },
    });
    await collector.start();
    assert.equal(collector.counters.lastDumpCpuSeconds, 5);
    // 5 CPU seconds at a 50% budget: the next re-dump is 10 s away, not at the 5 ms floor.
    await new Promise((r) => setTimeout(r, 40));
    assert.equal(collector.counters.resyncs.silent, 0);
    collector.stop();
  });

  it('a difference from the kernel count, confirmed, triggers one drift resync that fixes it', async () => {
    const clock = new FakeClock();
    const dumper = new ScriptedDumper([tcp(1, 'ESTABLISHED'), tcp(2, 'ESTABLISHED'), udp(3, 'ASSURED')]);
    const { table, collector } = setup(dumper, { clock: clock.read });
    await collector.start();
    dumper.flows = [tcp(1, 'ESTABLISHED')]; // two silent flows deleted: no DESTROY comes
    collector.observeKernelCount(1);
    await settle();
    assert.equal(collector.counters.resyncs.drift, 0, 'not before it is confirmed');
    clock.advance(DEFAULT_DRIFT_OPTIONS.confirmSeconds);
    collector.observeKernelCount(1);
    await settle();
    assert.equal(collector.counters.resyncs.drift, 1);
    assert.equal(table.size, 1);
    clock.advance(5);
    collector.observeKernelCount(1);
    await settle();
    assert.equal(collector.counters.resyncs.drift, 1, 'fixed: nothing more to do');
  });

  it('the drift timer reads the kernel count by itself and resyncs without any scrape', async () => {
    const dumper = new ScriptedDumper([tcp(1, 'ESTABLISHED'), udp(2, 'ASSURED')]);
    let kernel = 2;
    let reads = 0;
    const { table, collector } = setup(dumper, {
      kernelCount: async () => {
        reads++;
        return kernel;
      },
      driftCheckMs: 5,
      drift: { ...DEFAULT_DRIFT_OPTIONS, confirmSeconds: 0.01 },
    });
    await collector.start();
    dumper.flows = [];
    kernel = 0; // conntrack -F of flows that send no events
    await new Promise((r) => setTimeout(r, 80));
    collector.stop();
    assert.ok(reads >= 2);
    assert.equal(collector.counters.resyncs.drift, 1);
    assert.equal(table.size, 0);
  });

  it('a drift check that cannot read the kernel is counted, not thrown', async () => {
    const { collector } = setup(new ScriptedDumper([]), {
      kernelCount: async () => {
        throw new ConntrackError('CT_ERR_TIMEOUT', 'no reply');
      },
      driftCheckMs: 5,
    });
    await collector.start();
    await new Promise((r) => setTimeout(r, 30));
    collector.stop();
    assert.ok(collector.counters.driftReadErrors >= 2);
  });

  it('no resync storm: a difference no resync can fix costs at most the rate limit, then backs off', async () => {
    const clock = new FakeClock();
    // The kernel counts 20 entries, the dump only ever shows 10 (e.g. unconfirmed entries).
    const flows = Array.from({ length: 10 }, (_, i) => udp(i + 1, 'UNREPLIED'));
    const dumper = new ScriptedDumper(flows);
    const { collector } = setup(dumper, { clock: clock.read });
    await collector.start();
    const seconds = 600;
    for (let t = 0; t < seconds; t++) {
      collector.observeKernelCount(20); // a scrape or drift check every second
      await settle();
      clock.advance(1);
    }
    const drift = collector.counters.resyncs.drift;
    assert.ok(drift >= 1, 'the difference was acted on');
    assert.ok(drift <= maxDriftResyncs(seconds), `${drift} drift resyncs within the rate limit`);
    // With the back-off (gaps 10, 20, 40, ... s) it is far fewer than the rate limit allows.
    assert.equal(drift, 6);
  });
});
