/**
 * What the kernel counts, from each namespace's snapshot of this scrape: the table's entries, its
 * expectations, the conntrack switches and the timeouts per namespace; the limits, the hash size
 * and the table's kernel memory once for the node (they are global); and the per-CPU statistics
 * summed into counters. A value the read could not get is absent from that scrape, not 0.
 */
import { arch } from 'node:os';
import type { Registry } from '@prometheus-io/client';
import { CPU_STAT_NAMES, type CpuStatName } from '../ctnetlink/stats.js';
import type { KernelSnapshot } from '../kernel/stats.js';
import { Family } from './family.js';
import type { MetricScope } from './scope.js';

const STAT_HELP: Readonly<Record<CpuStatName, string>> = {
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
  expect_new: 'Flows created from an expectation (a related flow a helper such as FTP or TFTP announced).',
  expect_create: 'Expectations created by conntrack helpers.',
  expect_delete: 'Expectations removed: used, timed out, or removed with their flow.',
};

/** A hash bucket is one pointer (struct hlist_nulls_head); 4 bytes only on 32-bit kernels. */
const BUCKET_BYTES = ['arm', 'ia32', 'mips', 'mipsel', 'ppc'].includes(arch()) ? 4 : 8;

type Read = (k: KernelSnapshot) => number | undefined;

/** Per namespace: sysctls and counts the kernel keeps for each network namespace. */
const PER_NAMESPACE: readonly (readonly [string, string, Read])[] = [
  [
    'conntrack_entries',
    'Entries in the conntrack table of this network namespace, as the kernel counts them.',
    (k) => k.entries,
  ],
  [
    'conntrack_expectations',
    'Expectations (related flows announced by helpers such as FTP, SIP or TFTP) in this network namespace.',
    (k) => k.expectations,
  ],
];

/** Once for the node: nf_conntrack_max and the hash table are global. */
const NODE_WIDE: readonly (readonly [string, string, Read])[] = [
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
    'conntrack_expectations_limit',
    'Maximum expectations in each network namespace (net.netfilter.nf_conntrack_expect_max); beyond it helpers fail to set up related flows.',
    (k) => k.expectLimit,
  ],
];

const SWITCHES: readonly (readonly [string, string, Read])[] = [
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
  private readonly statFamilies = new Set<CpuStatName>();

  constructor(
    private readonly registry: Registry,
    private readonly scope: MetricScope,
  ) {
    const perNamespace = ([name, help, read]: readonly [string, string, Read]) =>
      new Family(registry, name, help, 'gauge', (f) => {
        for (const ns of scope.shown()) f.add(ns.labels, {}, ns.kernel && read(ns.kernel));
      });
    for (const g of PER_NAMESPACE) perNamespace(g);
    for (const [name, help, read] of NODE_WIDE) {
      new Family(registry, name, help, 'gauge', (f) => {
        const own = scope.own()?.kernel;
        f.add({}, {}, own && read(own));
      });
    }
    for (const g of SWITCHES) perNamespace(g);
    new Family(
      registry,
      'conntrack_kernel_memory_bytes',
      'Kernel memory of the conntrack table, for the node: part="slab" the nf_conntrack slab cache (objects in its slabs x object size; absent where the cache is merged with another), part="hash" the hash table (buckets x pointer size).',
      'gauge',
      (f) => {
        const own = scope.own()?.kernel;
        const slab = own?.slab;
        f.add({}, { part: 'slab' }, slab && slab.objects * slab.objectSize);
        f.add({}, { part: 'hash' }, own?.buckets === undefined ? undefined : own.buckets * BUCKET_BYTES);
      },
    );
    new Family(
      registry,
      'conntrack_timeout_seconds',
      'Timeout the kernel gives a flow of this protocol in this state (net.netfilter.nf_conntrack_<protocol>_timeout_<state>): TCP/SCTP/DCCP by kernel state (TCP MAX_RETRANS and UNACKNOWLEDGED while segments are retransmitted or unacknowledged), UDP/UDP-Lite/GRE UNREPLIED (not yet assured) and ASSURED (the _stream timeout), ICMP/ICMPv6/generic ALL.',
      'gauge',
      (f) => {
        for (const ns of scope.shown()) {
          for (const t of ns.kernel?.timeouts ?? []) {
            f.add(ns.labels, { protocol: t.protocol, state: t.state }, t.seconds);
          }
        }
      },
    );
  }

  /**
   * Registers the statistics the kernel reported for the first time, before the scrape renders:
   * a counter this kernel does not keep is absent, not zero.
   */
  discover(): void {
    for (const ns of this.scope.shown()) {
      for (const name of CPU_STAT_NAMES) {
        if (ns.cpuTotals[name] === undefined || this.statFamilies.has(name)) continue;
        this.statFamilies.add(name);
        const help = `${STAT_HELP[name]} Summed over CPUs.`;
        new Family(this.registry, `conntrack_stat_${name}_total`, help, 'counter', (f) => {
          for (const s of this.scope.shown()) f.add(s.labels, {}, s.cpuTotals[name]);
        });
      }
    }
  }
}
