/**
 * What the kernel counts, read once per scrape (KernelSnapshot): table size and limit, the
 * conntrack sysctls, and the per-CPU statistics summed into counters. A value the kernel read
 * could not get is absent from that scrape, not 0.
 */
import { Counter, type Registry } from '@prometheus-io/client';
import { CPU_STAT_NAMES, type CpuStatName, type CpuStats } from '../ctnetlink/stats.js';
import type { KernelSnapshot } from '../kernel/stats.js';
import { ScrapeGauge } from './scrape.js';

export const STAT_HELP: Readonly<Record<CpuStatName, string>> = {
  searched: 'Hash table lookups (no longer counted by current kernels).',
  found: 'Lookups that found an existing conntrack entry.',
  new: 'Entries added (no longer counted by current kernels).',
  invalid: 'Packets conntrack could not track (malformed, or invalid for the protocol state).',
  ignore: 'Packets that were already tracked or not to be tracked (no longer counted).',
  delete: 'Entries deleted (no longer counted by current kernels).',
  delete_list: 'Entries deleted from the dying list (no longer counted by current kernels).',
  insert: 'Entries inserted into the conntrack table.',
  insert_failed:
    'Entries that could not be inserted because an equal entry appeared first (the race behind the Kubernetes DNS/NAT delays).',
  drop: 'Packets dropped because the conntrack table was full and no entry could be evicted.',
  early_drop: 'Entries evicted early to make room while the conntrack table was full.',
  error: 'ICMP(v6) errors that referred to no known flow, or packets that failed in conntrack.',
  search_restart: 'Lookups restarted because the hash table was resized or changed concurrently.',
  clash_resolve: 'Insert clashes resolved by reusing the existing entry.',
  chain_toolong: 'Entries refused because their hash chain grew beyond the kernel limit.',
};

const GAUGES: readonly (readonly [string, string, (k: KernelSnapshot) => number | undefined])[] = [
  [
    'conntrack_entries',
    'Entries in the conntrack table of this network namespace, as the kernel counts them.',
    (k) => k.entries,
  ],
  [
    'conntrack_entries_limit',
    'Maximum entries before the kernel drops packets (net.netfilter.nf_conntrack_max).',
    (k) => k.limit,
  ],
  [
    'conntrack_buckets',
    'Size of the conntrack hash table (net.netfilter.nf_conntrack_buckets).',
    (k) => k.buckets,
  ],
  [
    'conntrack_kernel_event_mode',
    'net.netfilter.nf_conntrack_events: 0 no events, 1 events for every flow, 2 events only for flows created while some process on the host listens (the default; flows created while none does never send events).',
    (k) => k.eventsMode,
  ],
  [
    'conntrack_kernel_timestamps_enabled',
    'net.netfilter.nf_conntrack_timestamp: 1 if the kernel stamps flow start and stop times.',
    (k) => k.timestamps,
  ],
  [
    'conntrack_kernel_accounting_enabled',
    'net.netfilter.nf_conntrack_acct: 1 if the kernel counts packets and bytes per flow.',
    (k) => k.accounting,
  ],
];

export class KernelMetrics {
  /** The last snapshot read; undefined before the first scrape. */
  snapshot: KernelSnapshot | undefined;
  /** Kernel reads that failed, over all scrapes. */
  readErrors = 0;
  private readonly statCounters = new Map<CpuStatName, Counter>();
  private readonly lastPerCpu = new Map<number, Partial<Record<CpuStatName, number>>>();

  constructor(private readonly registry: Registry) {
    for (const [name, help, read] of GAUGES) {
      new ScrapeGauge(registry, name, help, () =>
        this.snapshot === undefined ? undefined : read(this.snapshot),
      );
    }
  }

  /** Takes one scrape's read of the kernel. */
  update(snapshot: KernelSnapshot): void {
    this.snapshot = snapshot;
    this.readErrors += snapshot.errors;
    this.mirrorPerCpu(snapshot.perCpu);
  }

  /**
   * The kernel keeps each counter per CPU as a wrapping u32; adding per-CPU differences modulo
   * 2^32 keeps the exported counter monotonic across wraps.
   */
  private mirrorPerCpu(perCpu: readonly CpuStats[]): void {
    for (const s of perCpu) {
      const last = this.lastPerCpu.get(s.cpu) ?? {};
      for (const name of CPU_STAT_NAMES) {
        const v = s.values[name];
        if (v === undefined) continue;
        this.statCounter(name).inc((v - (last[name] ?? 0)) >>> 0);
      }
      this.lastPerCpu.set(s.cpu, { ...s.values });
    }
  }

  /** Registered on first sight: a counter this kernel does not keep is absent, not zero. */
  private statCounter(name: CpuStatName): Counter {
    let c = this.statCounters.get(name);
    if (!c) {
      c = new Counter({
        name: `conntrack_stat_${name}_total`,
        help: `${STAT_HELP[name]} Summed over CPUs.`,
        registers: [this.registry],
      });
      this.statCounters.set(name, c);
    }
    return c;
  }
}
