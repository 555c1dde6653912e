/**
 * What the kernel itself counts, read at scrape time: entries and nf_conntrack_max over
 * ctnetlink (CT_GET_STATS), per-CPU counters (CT_GET_STATS_CPU) and the hash size from
 * nf_conntrack_buckets, which netlink does not carry. procfs is the fallback when a netlink
 * request fails. A value the kernel does not offer stays undefined: no data, not an error.
 */
import { readFile } from 'node:fs/promises';
import type { CtnetlinkClient } from '../ctnetlink/client.js';
import { type CpuStatName, type CpuStats, sumCpuStats } from '../ctnetlink/stats.js';

export interface KernelSnapshot {
  entries: number | undefined;
  limit: number | undefined;
  buckets: number | undefined;
  /** Per-CPU counters as the kernel keeps them (u32 each, wrapping). */
  perCpu: CpuStats[];
  /** Sum over CPUs, for display; counters are mirrored from perCpu to survive wraps. */
  totals: Partial<Record<CpuStatName, number>>;
  /** Requests that failed and fell back to procfs (or to nothing) during this read. */
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

export function parseProcStat(text: string): CpuStats[] {
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
    return { cpu, values, unknownAttrs: 0 };
  });
}

export class KernelStatsReader {
  constructor(
    private readonly source: KernelSource,
    private readonly procRoot = '/proc',
  ) {}

  async read(): Promise<KernelSnapshot> {
    let errors = 0;
    const [global, perCpu, buckets] = await Promise.all([
      this.source.globalStats().catch(async () => {
        errors++;
        return {
          entries: await this.readNumber('sys/net/netfilter/nf_conntrack_count'),
          maxEntries: await this.readNumber('sys/net/netfilter/nf_conntrack_max'),
        };
      }),
      this.source.cpuStats().catch(async () => {
        errors++;
        const text = await readFile(`${this.procRoot}/net/stat/nf_conntrack`, 'utf8').catch(() => undefined);
        return text === undefined ? [] : parseProcStat(text);
      }),
      this.readNumber('sys/net/netfilter/nf_conntrack_buckets'),
    ]);
    return {
      entries: global.entries,
      limit: global.maxEntries,
      buckets,
      perCpu,
      totals: sumCpuStats(perCpu),
      errors,
    };
  }

  private async readNumber(path: string): Promise<number | undefined> {
    try {
      const n = Number.parseInt(await readFile(`${this.procRoot}/${path}`, 'utf8'), 10);
      return Number.isFinite(n) ? n : undefined;
    } catch {
      return undefined;
    }
  }
}
