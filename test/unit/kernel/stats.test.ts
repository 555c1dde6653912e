/**
 * A kernel read that fails at a scrape: the kernel gauges are absent from that scrape (not 0,
 * not the last value), and the failure is counted.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { CpuStats, GlobalStats } from '../../../src/ctnetlink/stats.js';
import { ConntrackError } from '../../../src/errors.js';
import { OwnProcFiles } from '../../../src/kernel/proc.js';
import { SlabReader } from '../../../src/kernel/slab.js';
import { type KernelSource, KernelStatsReader } from '../../../src/kernel/stats.js';
import { tcp } from '../helpers/flows.js';
import { defaultModeMetrics } from '../helpers/scope.js';
import { summary } from '../helpers/summary.js';

/** A netlink source that answers or fails on demand. */
class SwitchableSource implements KernelSource {
  failing = false;
  entries = 7;
  async globalStats(): Promise<GlobalStats> {
    if (this.failing) throw new ConntrackError('CT_ERR_TIMEOUT', 'no reply');
    return { entries: this.entries, maxEntries: 262144 };
  }
  async cpuStats(): Promise<CpuStats[]> {
    if (this.failing) throw new ConntrackError('CT_ERR_SOCKET', 'closed');
    return [{ cpu: 0, values: { found: 3, drop: 1 } }];
  }
  async expectationCpuStats(): Promise<CpuStats[]> {
    if (this.failing) throw new ConntrackError('CT_ERR_SOCKET', 'closed');
    return [{ cpu: 0, values: { expect_create: 2, expect_delete: 1 } }];
  }
  async countExpectations(): Promise<number> {
    if (this.failing) throw new ConntrackError('CT_ERR_TIMEOUT', 'no reply');
    return 1;
  }
}

/** A fake /proc: `sysctls` under sys/net/netfilter, or none at all. */
function fakeProc(dir: string, sysctls: Record<string, string>): string {
  const nf = join(dir, 'sys/net/netfilter');
  mkdirSync(nf, { recursive: true });
  for (const [k, v] of Object.entries(sysctls)) writeFileSync(join(nf, k), `${v}\n`);
  return dir;
}

/** Sample lines (no comments) of one metric name, exactly. */
function samples(text: string, name: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
}

function value(text: string, name: string): number | undefined {
  const [line] = samples(text, name);
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

const KERNEL_GAUGES = [
  'conntrack_entries',
  'conntrack_entries_limit',
  'conntrack_buckets',
  'conntrack_collector_table_drift',
  'conntrack_kernel_event_mode',
  'conntrack_kernel_timestamps_enabled',
  'conntrack_kernel_accounting_enabled',
  'conntrack_expectations',
  'conntrack_expectations_limit',
  'conntrack_timeout_seconds',
];

describe('KernelStatsReader and the kernel gauges', () => {
  let root: string;
  let proc: string;
  let empty: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'ctx-stats-'));
    proc = fakeProc(join(root, 'proc'), {
      nf_conntrack_buckets: '65536',
      nf_conntrack_events: '2',
      nf_conntrack_timestamp: '0',
      nf_conntrack_acct: '1',
      nf_conntrack_count: '9',
      nf_conntrack_max: '262144',
      nf_conntrack_expect_max: '4096',
      nf_conntrack_tcp_timeout_time_wait: '120',
      nf_conntrack_udp_timeout_stream: '180',
      nf_conntrack_icmp_timeout: '30',
      // Not a flow timeout (IPv6 reassembly's): never read.
      nf_conntrack_frag6_timeout: '60',
    });
    empty = join(root, 'empty');
    mkdirSync(empty);
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  function setup(procRoot: string) {
    const source = new SwitchableSource();
    const reader = new KernelStatsReader(source, new OwnProcFiles(procRoot));
    const { metrics, table } = defaultModeMetrics(() => reader.read());
    table.apply('new', summary(tcp(1, 'ESTABLISHED')));
    return { source, reader, metrics };
  }

  it('reads netlink and the sysctls', async () => {
    const { reader } = setup(proc);
    const k = await reader.read();
    assert.deepEqual(
      [k.entries, k.limit, k.buckets, k.eventsMode, k.timestamps, k.accounting, k.errors],
      [7, 262144, 65536, 2, 0, 1, 0],
    );
    assert.equal(
      k.perCpu.reduce((sum, c) => sum + (c.values.found ?? 0), 0),
      3,
    );
    assert.deepEqual(k.perCpu, [
      { cpu: 0, values: { found: 3, drop: 1, expect_create: 2, expect_delete: 1 } },
    ]);
    assert.deepEqual([k.expectations, k.expectLimit], [1, 4096]);
    assert.deepEqual(
      new Set(k.timeouts),
      new Set([
        { protocol: 'tcp', state: 'TIME_WAIT', seconds: 120 },
        { protocol: 'udp', state: 'ASSURED', seconds: 180 },
        { protocol: 'icmp', state: 'ALL', seconds: 30 },
      ]),
    );
    assert.equal(k.slab, undefined, 'the slab cache is read only where a SlabReader is given');
  });

  it('a failed read leaves the kernel gauges out of that scrape and counts the failure', async () => {
    const { source, metrics } = setup(empty);
    const ok = await metrics.render();
    assert.equal(value(ok, 'conntrack_entries'), 7);
    assert.equal(value(ok, 'conntrack_collector_table_drift'), 1 - 7);
    assert.equal(value(ok, 'conntrack_collector_kernel_read_errors_total'), 0);

    source.failing = true; // netlink fails, and this /proc has nothing to fall back on
    const failed = await metrics.render();
    for (const name of KERNEL_GAUGES) assert.deepEqual(samples(failed, name), [], `${name} is absent`);
    assert.equal(
      value(failed, 'conntrack_collector_kernel_read_errors_total'),
      3,
      'the requests counted: statistics, per-CPU statistics, expectations',
    );
    // The kernel's counters keep their last value (they are counters: they never go back).
    assert.equal(value(failed, 'conntrack_stat_found_total'), 3);
    // The shadow side does not depend on the kernel read.
    assert.equal(value(failed, 'conntrack_flows{family="ipv4",protocol="tcp",state="ESTABLISHED"}'), 1);

    source.failing = false;
    source.entries = 8;
    const again = await metrics.render();
    assert.equal(value(again, 'conntrack_entries'), 8);
    assert.equal(value(again, 'conntrack_collector_kernel_read_errors_total'), 3);
  });

  it('falls back to procfs (same namespace, same counters) when netlink fails, and counts it', async () => {
    const { source, reader } = setup(proc);
    source.failing = true;
    const k = await reader.read();
    assert.deepEqual([k.entries, k.limit, k.buckets, k.errors], [9, 262144, 65536, 3]);
    assert.deepEqual(k.perCpu, [], 'no /proc/net/stat/nf_conntrack here');
  });

  it("reads the node's slab cache where given one; an unreadable one is absent and counted", async () => {
    const good = join(root, 'slabinfo');
    writeFileSync(
      good,
      'slabinfo - version: 2.1\nnf_conntrack 80 144 256 16 1 : tunables 0 0 0 : slabdata 9 9 0\n',
    );
    const bad = join(root, 'slabinfo-bad');
    writeFileSync(bad, 'not slabinfo\n');
    const noSys = join(root, 'no-sys-slab');
    const k = await new KernelStatsReader(
      new SwitchableSource(),
      new OwnProcFiles(proc),
      new SlabReader(noSys, good),
    ).read();
    assert.deepEqual([k.slab, k.errors], [{ objects: 144, objectSize: 256 }, 0]);
    const f = await new KernelStatsReader(
      new SwitchableSource(),
      new OwnProcFiles(proc),
      new SlabReader(noSys, bad),
    ).read();
    assert.deepEqual([f.slab, f.errors], [undefined, 1]);
  });

  it('a sysctl file that is not a number is an error, not a value', async () => {
    const bad = fakeProc(join(root, 'bad'), { nf_conntrack_events: 'garbage', nf_conntrack_buckets: '1024' });
    const k = await new KernelStatsReader(new SwitchableSource(), new OwnProcFiles(bad)).read();
    assert.equal(k.eventsMode, undefined);
    assert.equal(k.buckets, 1024);
    assert.equal(k.errors, 1);
  });
});
