/**
 * The attribution metrics ("who fills the table"), names and HELP in one place. Each gauge is
 * reset and refilled at every scrape from the current ranking: at most K series plus one
 * remainder (`other`) per metric, and a key that left the top K (or the table) is gone from the
 * very next scrape, never left behind as a stale series.
 */
import { Gauge, type Registry } from '@prometheus-io/client';
import type { Attribution, Ranked } from '../attribution/attribution.js';

/** The remainder series' label value: everything outside the top K. */
const OTHER = 'other';

const ATTRIBUTION_METRICS = {
  sources: 'conntrack_top_source_flows',
  destinations: 'conntrack_top_destination_flows',
  zones: 'conntrack_zone_flows',
  marks: 'conntrack_mark_flows',
  creators: 'conntrack_top_source_new_flows_per_second',
} as const;

function fill<L extends object>(
  gauge: Gauge<string>,
  ranked: Ranked<L>,
  other: Record<string, string>,
): void {
  gauge.reset();
  for (const t of ranked.top) gauge.set(t.labels as Record<string, string>, t.value);
  gauge.set(other, ranked.other);
}

export function registerAttributionMetrics(registry: Registry, attribution: Attribution): void {
  const registers = [registry];
  const k = attribution.k;
  const v4 = attribution.sourcePrefixV4;
  const v6 = attribution.sourcePrefixV6;
  new Gauge({
    name: ATTRIBUTION_METRICS.sources,
    help: `Flows in the table by source, aggregated to /${v4} (IPv4) and /${v6} (IPv6) prefixes: the top ${k}, and source="${OTHER}" for the rest.`,
    labelNames: ['family', 'source'] as const,
    registers,
    collect() {
      fill(this, attribution.topSources(), { source: OTHER });
    },
  });
  new Gauge({
    name: ATTRIBUTION_METRICS.destinations,
    help: `Flows in the table by destination address, protocol and port (ICMP: type): the top ${k}, and destination="${OTHER}" for the rest.`,
    labelNames: ['family', 'protocol', 'destination', 'port'] as const,
    registers,
    collect() {
      fill(this, attribution.topDestinations(), { destination: OTHER });
    },
  });
  new Gauge({
    name: ATTRIBUTION_METRICS.zones,
    help: `Flows in the table by conntrack zone: the top ${k}, and zone="${OTHER}" for the rest.`,
    labelNames: ['zone'] as const,
    registers,
    collect() {
      fill(this, attribution.topZones(), { zone: OTHER });
    },
  });
  new Gauge({
    name: ATTRIBUTION_METRICS.marks,
    help: `Flows in the table by conntrack mark (decimal, as conntrack -L prints it): the top ${k}, and mark="${OTHER}" for the rest.`,
    labelNames: ['mark'] as const,
    registers,
    collect() {
      fill(this, attribution.topMarks(), { mark: OTHER });
    },
  });
  new Gauge({
    name: ATTRIBUTION_METRICS.creators,
    help: `New flows per second over the last minute by source prefix (/${v4}, /${v6}): the top ${k} creators, and source="${OTHER}" for the rest.`,
    labelNames: ['family', 'source'] as const,
    registers,
    collect() {
      fill(this, attribution.topCreators(), { source: OTHER });
    },
  });
}
