/**
 * The attribution metrics ("who fills the table"). Every namespace ranks its own keys (its top K
 * and the rest); the series are the top K over all shown namespaces together, each with its
 * namespace's labels, plus one remainder (`other`) for everything else. That ranking is exact (a
 * key in the joint top K is in its own namespace's top K) and bounds the whole exporter at
 * 5 x (K + 1) attribution series however many namespaces it follows. Made at every scrape from
 * the current ranking, so a key that left the top K is gone from the very next scrape.
 *
 * Beside the rankings, the memory budget's effect on them: whether attribution is degraded (takes
 * no new keys), the flows each namespace left unattributed, and the limit in force.
 */
import type { Registry } from '@prometheus-io/client';
import type {
  Attribution,
  DestinationLabels,
  Dimension,
  Ranked,
  SourceLabels,
} from '../attribution/attribution.js';
import { Family, type LabelSet } from './family.js';
import type { MetricScope, NamespaceMetrics } from './scope.js';

/** The remainder series' label value: everything outside the top K. */
export const OTHER = 'other';

interface Entry {
  base: LabelSet;
  labels: object;
  value: number;
}

/**
 * The joint top `k` of every namespace's ranking (undefined: the namespace has none), largest
 * first, and the remainder. The NAT rankings (nat.ts) are made the same way.
 */
export function jointTop(
  scope: MetricScope,
  k: number,
  rank: (ns: NamespaceMetrics) => Ranked<object> | undefined,
): { top: Entry[]; other: number } {
  const all: Entry[] = [];
  let total = 0;
  for (const ns of scope.shown()) {
    const r = rank(ns);
    if (!r) continue;
    total += r.other;
    for (const t of r.top) {
      total += t.value;
      all.push({ base: ns.labels, labels: t.labels, value: t.value });
    }
  }
  // Stable: equal values keep each namespace's own order (its ranking breaks ties).
  const top = all.sort((a, b) => b.value - a.value).slice(0, k);
  let shown = 0;
  for (const t of top) shown += t.value;
  return { top, other: total - shown };
}

/** What the metrics read of the memory budget (memory/budget.ts). */
export interface BudgetState {
  readonly degraded: boolean;
  readonly limitBytes: number;
}

/** The followed namespace holding an address (--netns.all), and its pod where known (identity.ts). */
export interface AddressOwner {
  netns: string;
  pod?: string | undefined;
  namespace?: string | undefined;
  uid?: string | undefined;
}

export interface AttributionSettings {
  k: number;
  sourcePrefixV4: number;
  sourcePrefixV6: number;
  /** The memory budget; none when the exporter has no memory limit. */
  budget?: BudgetState | undefined;
  /** Who holds an address (--netns.all): conntrack_address_info for the top K's addresses. */
  ownerOf?: ((address: string) => AddressOwner | undefined) | undefined;
}

const DIMENSIONS: readonly Dimension[] = ['source', 'destination', 'zone', 'mark'];

function registerBudgetMetrics(
  registry: Registry,
  scope: MetricScope,
  budget: BudgetState | undefined,
): void {
  new Family(
    registry,
    'conntrack_attribution_degraded',
    'Whether attribution is degraded (1): memory used and reserved for the table reached 80% of the limit, so its per-key arrays no longer grow and a new key that finds no free slot is counted in "other", until it is back below 70%. The table and the kernel counts are never degraded.',
    'gauge',
    (f) => f.add({}, {}, budget?.degraded ? 1 : 0),
  );
  new Family(
    registry,
    'conntrack_attribution_unattributed_flows_total',
    'Flows whose key in this dimension found no room within the memory budget and were counted in "other" instead.',
    'counter',
    (f) => {
      for (const ns of scope.shown()) {
        const u = ns.attribution?.unattributed;
        if (u) for (const dimension of DIMENSIONS) f.add(ns.labels, { dimension }, u[dimension]);
      }
    },
  );
  if (budget) {
    new Family(
      registry,
      'conntrack_exporter_memory_limit_bytes',
      "The exporter's memory limit: --memory.limit, or its memory cgroup's.",
      'gauge',
      (f) => f.add({}, {}, budget.limitBytes),
    );
  }
}

export function registerAttributionMetrics(
  registry: Registry,
  scope: MetricScope,
  s: AttributionSettings,
): void {
  const { k, sourcePrefixV4: v4, sourcePrefixV6: v6 } = s;
  const ranking = (
    name: string,
    help: string,
    otherLabel: string,
    rank: (a: Attribution) => Ranked<object>,
  ) =>
    new Family(registry, name, help, 'gauge', (f) => {
      const { top, other } = jointTop(scope, k, (ns) => ns.attribution && rank(ns.attribution));
      for (const t of top) f.add(t.base, t.labels as Record<string, string>, t.value);
      f.add({}, { [otherLabel]: OTHER }, other);
    });
  ranking(
    'conntrack_top_source_flows',
    `Flows in the table by source, aggregated to /${v4} (IPv4) and /${v6} (IPv6) prefixes: the top ${k}, and source="${OTHER}" for the rest.`,
    'source',
    (a) => a.topSources(),
  );
  ranking(
    'conntrack_top_destination_flows',
    `Flows in the table by destination address, protocol and port (ICMP: type): the top ${k}, and destination="${OTHER}" for the rest.`,
    'destination',
    (a) => a.topDestinations(),
  );
  ranking(
    'conntrack_zone_flows',
    `Flows in the table by conntrack zone: the top ${k}, and zone="${OTHER}" for the rest.`,
    'zone',
    (a) => a.topZones(),
  );
  ranking(
    'conntrack_mark_flows',
    `Flows in the table by conntrack mark (decimal, as conntrack -L prints it): the top ${k}, and mark="${OTHER}" for the rest.`,
    'mark',
    (a) => a.topMarks(),
  );
  ranking(
    'conntrack_top_source_new_flows_per_second',
    `New flows per second over the last minute by source prefix (/${v4}, /${v6}): the top ${k} creators, and source="${OTHER}" for the rest.`,
    'source',
    (a) => a.topCreators(),
  );
  registerBudgetMetrics(registry, scope, s.budget);
  if (s.ownerOf) registerAddressInfo(registry, scope, k, s.ownerOf);
}

/** The addresses among this scrape's top K sources, creators and destinations, sorted. */
function topAddresses(scope: MetricScope, k: number): string[] {
  const out = new Set<string>();
  for (const t of jointTop(scope, k, (ns) => ns.attribution?.topSources()).top)
    out.add((t.labels as SourceLabels).source);
  for (const t of jointTop(scope, k, (ns) => ns.attribution?.topCreators()).top)
    out.add((t.labels as SourceLabels).source);
  for (const t of jointTop(scope, k, (ns) => ns.attribution?.topDestinations()).top)
    out.add((t.labels as DestinationLabels).destination);
  return [...out].sort();
}

/**
 * conntrack_address_info: for every address among this scrape's top K sources, creators and
 * destinations that a followed namespace holds, that namespace and its pod. Only addresses in the
 * top K, so at most 3 x K series: the bound of the rankings holds by construction. A source
 * aggregated to a shorter prefix (10.1.2.0/24) is no address and names no one.
 */
function registerAddressInfo(
  registry: Registry,
  scope: MetricScope,
  k: number,
  ownerOf: (address: string) => AddressOwner | undefined,
): void {
  new Family(
    registry,
    'conntrack_address_info',
    'One per address among the top K sources and destinations that a followed network namespace holds on one of its interfaces: that namespace (netns) and its pod (pod, namespace, uid). Join: * on(instance, source) group_left(pod, namespace) label_replace(conntrack_address_info, "source", "$1", "address", "(.*)").',
    'gauge',
    (f) => {
      for (const address of topAddresses(scope, k)) {
        const o = ownerOf(address);
        if (!o) continue;
        const pod = o.pod === undefined ? {} : { pod: o.pod };
        const namespace = o.namespace === undefined ? {} : { namespace: o.namespace };
        const uid = o.uid === undefined ? {} : { uid: o.uid };
        f.add({}, { address, netns: o.netns, ...pod, ...namespace, ...uid }, 1);
      }
    },
  );
}
