/**
 * The metrics of --netns.all. The per-namespace series keep their default-mode names and HELP
 * (taken from ExporterMetrics' registry, so there is still one place for them) and gain a `netns`
 * label: the name under /var/run/netns, else `inode:<nsfs inode>`. Only active namespaces (with
 * entries, or events since the last discovery scan) have series. What is global stays unlabelled:
 * nf_conntrack_max and the hash size are one per node, and the one shared event socket's losses
 * and buffer are not any namespace's. Histograms and transitions are summed over namespaces (the
 * tables share one FlowMetrics as observer): a label per namespace would multiply the largest
 * series families by the number of namespaces.
 *
 * Values are absolute at every scrape (reset, then set), so a namespace that goes idle or away
 * leaves no stale series behind.
 */
import { Counter, Gauge, type Registry } from '@prometheus-io/client';
import { CPU_STAT_NAMES } from '../ctnetlink/stats.js';
import type { NamespacePipeline } from '../namespace/pipeline.js';
import { type CollectorCounters, RESYNC_REASONS } from '../sync/collector.js';
import { STAT_HELP } from './kernel.js';
import { EVENT_TYPES, eventCounts } from './shadow.js';

/** Default-mode metrics that --netns.all replaces (same name and HELP, other labels or source). */
export const REPLACED_METRICS = [
  'conntrack_entries',
  'conntrack_entries_limit',
  'conntrack_buckets',
  'conntrack_flows',
  'conntrack_events_total',
  'conntrack_collector_overruns_total',
  'conntrack_collector_events_lost_total',
  'conntrack_collector_resyncs_total',
  'conntrack_collector_resync_failures_total',
  'conntrack_collector_decode_errors_total',
  'conntrack_collector_last_resync_timestamp_seconds',
  'conntrack_collector_table_drift',
  'conntrack_collector_silent_flows',
  'conntrack_collector_netlink_receive_buffer_bytes',
  'conntrack_collector_kernel_read_errors_total',
] as const;

export interface NamespaceMetricSources {
  active(): readonly NamespacePipeline[];
  followed(): number;
  skipped(): number;
  eventsLost(): number;
  eventsUnmatched(): number;
  /** nf_conntrack_max and nf_conntrack_buckets, global. */
  limit(): number | undefined;
  buckets(): number | undefined;
  rcvbuf(): number | undefined;
}

function helpOf(registry: Registry, name: string): string {
  const help = (registry.getSingleMetric(name) as { help?: unknown } | undefined)?.help;
  if (typeof help !== 'string') throw new Error(`metric ${name} is not registered: cannot take its HELP`);
  return help;
}

/** Replaces REPLACED_METRICS in `registry` with their per-namespace versions. */
export function registerNamespaceMetrics(registry: Registry, src: NamespaceMetricSources): void {
  const help = Object.fromEntries(REPLACED_METRICS.map((n) => [n, helpOf(registry, n)])) as Record<
    (typeof REPLACED_METRICS)[number],
    string
  >;
  for (const name of REPLACED_METRICS) registry.removeSingleMetric(name);
  const registers = [registry];
  const each = (fn: (p: NamespacePipeline, netns: string) => void): void => {
    for (const p of src.active()) fn(p, p.ref.label);
  };

  /** One series per active namespace, `netns`-labelled; a counter is refilled from its total. */
  const perNamespace = (
    Type: typeof Counter | typeof Gauge,
    name: string,
    helpText: string,
    value: (p: NamespacePipeline) => number | undefined,
  ) =>
    new Type({
      name,
      help: helpText,
      labelNames: ['netns'] as const,
      registers,
      collect() {
        this.reset();
        each((p, netns) => {
          const v = value(p);
          if (v === undefined) return;
          if (this instanceof Counter) this.inc({ netns }, v);
          else this.set({ netns }, v);
        });
      },
    });

  /** One series per active namespace and label value, from the collector's counters. */
  const perNamespaceBy = <V extends string>(
    name:
      | 'conntrack_events_total'
      | 'conntrack_collector_resyncs_total'
      | 'conntrack_collector_resync_failures_total',
    label: string,
    values: readonly V[],
    value: (c: CollectorCounters) => Readonly<Record<V, number>>,
  ) =>
    new Counter({
      name,
      help: help[name],
      labelNames: ['netns', label],
      registers,
      collect() {
        this.reset();
        each((p, netns) => {
          const c = p.collector?.counters;
          if (!c) return;
          const now = value(c);
          for (const v of values) this.inc({ netns, [label]: v }, now[v]);
        });
      },
    });

  // Kernel side.
  perNamespace(Gauge, 'conntrack_entries', help.conntrack_entries, (p) => p.entries);
  const global = (name: 'conntrack_entries_limit' | 'conntrack_buckets', read: () => number | undefined) =>
    new Gauge({
      name,
      help: help[name],
      registers,
      collect() {
        this.reset();
        const v = read();
        if (v !== undefined) this.set(v);
      },
    });
  global('conntrack_entries_limit', () => src.limit());
  global('conntrack_buckets', () => src.buckets());
  for (const stat of CPU_STAT_NAMES) {
    perNamespace(
      Counter,
      `conntrack_stat_${stat}_total`,
      `${STAT_HELP[stat]} Summed over CPUs.`,
      (p) => p.cpu.totals[stat],
    );
  }

  // Shadow side.
  new Gauge({
    name: 'conntrack_flows',
    help: help.conntrack_flows,
    labelNames: ['netns', 'family', 'protocol', 'state'] as const,
    registers,
    collect() {
      this.reset();
      each((p, netns) => {
        for (const g of p.table?.groups() ?? []) {
          this.set({ netns, family: g.family, protocol: g.protocol, state: g.state }, g.count);
        }
      });
    },
  });
  perNamespaceBy('conntrack_events_total', 'event', EVENT_TYPES, eventCounts);

  // Collector health.
  perNamespace(
    Counter,
    'conntrack_collector_overruns_total',
    help.conntrack_collector_overruns_total,
    (p) => p.collector?.counters.overruns,
  );
  perNamespace(
    Counter,
    'conntrack_collector_decode_errors_total',
    help.conntrack_collector_decode_errors_total,
    (p) => p.collector?.counters.decodeErrors,
  );
  perNamespace(
    Counter,
    'conntrack_collector_kernel_read_errors_total',
    help.conntrack_collector_kernel_read_errors_total,
    (p) => p.readErrors,
  );
  perNamespaceBy('conntrack_collector_resyncs_total', 'reason', RESYNC_REASONS, (c) => c.resyncs);
  perNamespaceBy(
    'conntrack_collector_resync_failures_total',
    'reason',
    RESYNC_REASONS,
    (c) => c.resyncFailures,
  );
  perNamespace(
    Gauge,
    'conntrack_collector_last_resync_timestamp_seconds',
    help.conntrack_collector_last_resync_timestamp_seconds,
    (p) => p.collector?.counters.lastResync,
  );
  perNamespace(Gauge, 'conntrack_collector_table_drift', help.conntrack_collector_table_drift, (p) =>
    p.table && p.entries !== undefined ? p.table.size - p.entries : undefined,
  );
  perNamespace(
    Gauge,
    'conntrack_collector_silent_flows',
    help.conntrack_collector_silent_flows,
    (p) => p.table?.silentFlows,
  );

  // The shared event socket.
  new Counter({
    name: 'conntrack_collector_events_lost_total',
    help: `${help.conntrack_collector_events_lost_total} One socket for all namespaces: every active namespace resyncs.`,
    registers,
    collect() {
      this.reset();
      this.inc(src.eventsLost());
    },
  });
  new Gauge({
    name: 'conntrack_collector_netlink_receive_buffer_bytes',
    help: help.conntrack_collector_netlink_receive_buffer_bytes,
    registers,
    collect() {
      this.reset();
      const v = src.rcvbuf();
      if (v !== undefined) this.set(v);
    },
  });

  // The namespaces themselves.
  new Gauge({
    name: 'conntrack_netns_followed',
    help: 'Network namespaces followed (--netns.all), active or idle; only active ones (with entries) have per-namespace series.',
    registers,
    collect() {
      this.set(src.followed());
    },
  });
  new Gauge({
    name: 'conntrack_netns_active',
    help: 'Followed network namespaces whose table is in use: they have per-namespace series (netns label).',
    registers,
    collect() {
      this.set(src.active().length);
    },
  });
  new Gauge({
    name: 'conntrack_netns_skipped',
    help: 'Network namespaces found but not followed because --netns.max was reached.',
    registers,
    collect() {
      this.set(src.skipped());
    },
  });
  new Counter({
    name: 'conntrack_netns_events_unmatched_total',
    help: 'Event datagrams from a namespace id the exporter does not follow (skipped for --netns.max, or just gone).',
    registers,
    collect() {
      this.reset();
      this.inc(src.eventsUnmatched());
    },
  });
  new Gauge({
    name: 'conntrack_netns_info',
    help: "One per active network namespace: its netns label, nsfs inode, and whether it is the exporter's own.",
    labelNames: ['netns', 'inode', 'own'] as const,
    registers,
    collect() {
      this.reset();
      each((p, netns) => this.set({ netns, inode: p.ref.inode, own: String(p.ref.own) }, 1));
    },
  });
}
