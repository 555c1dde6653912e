/**
 * What the kernel itself counts, read at scrape time: entries and nf_conntrack_max over
 * ctnetlink (CT_GET_STATS), per-CPU counters (CT_GET_STATS_CPU, and EXP_GET_STATS_CPU for
 * expectations), the expectations (a dump of them, counted), and from sysctls what netlink does
 * not carry: the hash size, nf_conntrack_expect_max, the timeouts and the event, timestamp and
 * accounting switches. The node's own namespace also reads the entries' slab cache (slab.ts),
 * which is one for the node.
 *
 * A value that cannot be read is undefined, never 0 and never the last value read: the metrics
 * leave it out of that scrape (node_exporter's "no data, not wrong data"), and the failure is
 * counted in `errors`. A sysctl the kernel does not have (ENOENT) is no data, not an error.
 *
 * procfs stays as the fallback of a failed netlink request: /proc/sys/net/netfilter/* and
 * /proc/net/stat/nf_conntrack are resolved in the network namespace of the reading process, the
 * one our netlink sockets live in, and show the same kernel counters (nf_conntrack_count is the
 * per-namespace entry count CT_GET_STATS reports). So the fallback gives the same truth through
 * another door and keeps the fill level (what the table-full alerts need) when the request socket
 * fails; the netlink failure is still counted.
 */
import type { CtnetlinkClient } from '../ctnetlink/client.js';
import type { CpuStatName, CpuStats } from '../ctnetlink/stats.js';
import { type ProcFiles, readSysctl } from './proc.js';
import type { SlabCache, SlabReader } from './slab.js';
import { type Timeout, TimeoutReader } from './timeouts.js';

export interface KernelSnapshot {
  entries: number | undefined;
  limit: number | undefined;
  buckets: number | undefined;
  /** Per-CPU counters as the kernel keeps them (u32 each, wrapping), expectations' included. */
  perCpu: CpuStats[];
  /** Expectations (FTP, SIP, TFTP... helpers' announced related flows) in this namespace. */
  expectations: number | undefined;
  /** net.netfilter.nf_conntrack_expect_max: one for the node, checked against each namespace's count. */
  expectLimit: number | undefined;
  /** This namespace's flow timeouts; empty when none could be read. */
  timeouts: Timeout[];
  /** The entries' slab cache (node-wide): read in the exporter's own namespace only. */
  slab: SlabCache | undefined;
  /** net.netfilter.nf_conntrack_events: 0 off, 1 on, 2 only for flows created while someone listens. */
  eventsMode: number | undefined;
  /** net.netfilter.nf_conntrack_timestamp (0/1). */
  timestamps: number | undefined;
  /** net.netfilter.nf_conntrack_acct (0/1). */
  accounting: number | undefined;
  /** Reads that failed during this one (netlink requests, including those procfs stood in for). */
  errors: number;
}

export interface KernelSource {
  globalStats: CtnetlinkClient['globalStats'];
  cpuStats: CtnetlinkClient['cpuStats'];
  expectationCpuStats: CtnetlinkClient['expectationCpuStats'];
  countExpectations: CtnetlinkClient['countExpectations'];
}

// Columns of /proc/net/stat/nf_conntrack (hex, one line per CPU) -> our counter names.
const PROC_COLUMNS: Readonly<Record<string, CpuStatName>> = {
  found: 'found',
  invalid: 'invalid',
  insert: 'insert',
  insert_failed: 'insert_failed',
  drop: 'drop',
  early_drop: 'early_drop',
  icmp_error: 'error',
  search_restart: 'search_restart',
  clashres: 'clash_resolve',
  chaintoolong: 'chain_toolong',
  expect_new: 'expect_new',
  expect_create: 'expect_create',
  expect_delete: 'expect_delete',
};

function parseProcStat(text: string): CpuStats[] {
  const [header, ...rows] = text.trim().split('\n');
  const names = (header ?? '').trim().split(/\s+/);
  return rows.map((row, cpu) => {
    const values: Partial<Record<CpuStatName, number>> = {};
    row
      .trim()
      .split(/\s+/)
      .forEach((hex, i) => {
        const name = PROC_COLUMNS[names[i] ?? ''];
        if (name !== undefined) values[name] = Number.parseInt(hex, 16);
      });
    return { cpu, values };
  });
}

/** Both per-CPU replies as one list: the expectation counters join their CPU's others. */
function mergeCpuStats(ct: CpuStats[], exp: CpuStats[]): CpuStats[] {
  const byCpu = new Map(ct.map((c) => [c.cpu, { cpu: c.cpu, values: { ...c.values } }]));
  for (const e of exp) {
    const c = byCpu.get(e.cpu);
    if (c) Object.assign(c.values, e.values);
    else byCpu.set(e.cpu, { cpu: e.cpu, values: { ...e.values } });
  }
  return [...byCpu.values()];
}

export class KernelStatsReader {
  private readonly timeouts: TimeoutReader;

  constructor(
    private readonly source: KernelSource,
    /** The namespace's procfs files (the one the source's socket lives in). */
    private readonly proc: ProcFiles,
    /** The node's slab cache: given to the exporter's own namespace only. */
    private readonly slab?: SlabReader,
  ) {
    this.timeouts = new TimeoutReader(proc);
  }

  async read(): Promise<KernelSnapshot> {
    let errors = 0;
    const failed = (): undefined => {
      errors++;
      return undefined;
    };
    const sysctl = (name: string) => readSysctl(this.proc, name).catch(failed);
    // At once, before the requests go out (see timeouts.ts and slab.ts).
    const timeouts = this.timeouts.read(failed);
    const slab = this.readSlab(failed);
    const [global, perCpu, expectations, expectLimit, buckets, eventsMode, timestamps, accounting] =
      await Promise.all([
        this.source.globalStats().catch(async () => {
          errors++;
          const [entries, maxEntries] = await Promise.all([
            sysctl('nf_conntrack_count'),
            sysctl('nf_conntrack_max'),
          ]);
          return { entries, maxEntries };
        }),
        this.perCpu(failed),
        this.source.countExpectations().catch(failed),
        sysctl('nf_conntrack_expect_max'),
        sysctl('nf_conntrack_buckets'),
        sysctl('nf_conntrack_events'),
        sysctl('nf_conntrack_timestamp'),
        sysctl('nf_conntrack_acct'),
      ]);
    return {
      entries: global.entries,
      limit: global.maxEntries,
      buckets,
      perCpu,
      expectations,
      expectLimit,
      timeouts,
      slab,
      eventsMode,
      timestamps,
      accounting,
      errors,
    };
  }

  private readSlab(failed: () => undefined): SlabCache | undefined {
    try {
      return this.slab?.read();
    } catch {
      return failed();
    }
  }

  /** Both per-CPU dumps, one after the other on the one socket; procfs has both if either fails. */
  private async perCpu(failed: () => undefined): Promise<CpuStats[]> {
    try {
      return mergeCpuStats(await this.source.cpuStats(), await this.source.expectationCpuStats());
    } catch {
      failed();
      const text = await this.proc.read('net/stat/nf_conntrack').catch(failed);
      return text === undefined ? [] : parseProcStat(text);
    }
  }
}
