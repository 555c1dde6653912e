/**
 * What the kernel itself counts, read at scrape time: entries and nf_conntrack_max over
 * ctnetlink (CT_GET_STATS), per-CPU counters (CT_GET_STATS_CPU), and from sysctls what netlink
 * does not carry: the hash size and the event, timestamp and accounting switches.
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

export interface KernelSnapshot {
  entries: number | undefined;
  limit: number | undefined;
  buckets: number | undefined;
  /** Per-CPU counters as the kernel keeps them (u32 each, wrapping). */
  perCpu: CpuStats[];
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

export class KernelStatsReader {
  constructor(
    private readonly source: KernelSource,
    /** The namespace's procfs files (the one the source's socket lives in). */
    private readonly proc: ProcFiles,
  ) {}

  async read(): Promise<KernelSnapshot> {
    let errors = 0;
    const failed = (): undefined => {
      errors++;
      return undefined;
    };
    const sysctl = (name: string) => readSysctl(this.proc, name).catch(failed);
    const [global, perCpu, buckets, eventsMode, timestamps, accounting] = await Promise.all([
      this.source.globalStats().catch(async () => {
        errors++;
        const [entries, maxEntries] = await Promise.all([
          sysctl('nf_conntrack_count'),
          sysctl('nf_conntrack_max'),
        ]);
        return { entries, maxEntries };
      }),
      this.source.cpuStats().catch(async () => {
        errors++;
        const text = await this.proc.read('net/stat/nf_conntrack').catch(failed);
        return text === undefined ? [] : parseProcStat(text);
      }),
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
      eventsMode,
      timestamps,
      accounting,
      errors,
    };
  }
}
