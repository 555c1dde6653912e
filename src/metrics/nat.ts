/**
 * The NAT metrics: flows by translation, the source NAT mappings (top K by flows, their port
 * utilisation, and the highest utilisation over every mapping of each namespace), the destination
 * NAT pairs (top K), and the flows the memory budget left out of them. The rankings are joint over
 * the shown namespaces, as attribution's (jointTop), so the exporter has at most K + 1 series per
 * ranking however many namespaces it follows; the maximum is one series per namespace.
 */
import type { Registry } from '@prometheus-io/client';
import { type NatDimension, type NatKind, type PortRange, portsIn } from '../attribution/nat.js';
import { jointTop, OTHER } from './attribution.js';
import { Family } from './family.js';
import type { MetricScope, NamespaceMetrics } from './scope.js';

export interface NatSettings {
  /** Series per ranking besides the remainder; 0: no rankings. */
  k: number;
  portRange: PortRange;
}

const KINDS: readonly NatKind[] = ['snat', 'dnat', 'snat_dnat'];
const DIMENSIONS: readonly NatDimension[] = ['snat_mapping', 'dnat'];

interface ByTranslation {
  family: string;
  protocol: string;
  /** Untranslated flows. */
  none: number;
  /** Flows per KINDS entry. */
  kinds: number[];
}

/** A namespace's flows per (family, protocol): every flow of the table, less the translated ones, is untranslated. */
function byTranslation(ns: NamespaceMetrics): Iterable<ByTranslation> {
  const all = new Map<string, ByTranslation>();
  const entry = (family: string, protocol: string): ByTranslation => {
    const key = `${family}/${protocol}`;
    let e = all.get(key);
    if (!e) {
      e = { family, protocol, none: 0, kinds: [0, 0, 0] };
      all.set(key, e);
    }
    return e;
  };
  for (const g of ns.table?.groups() ?? []) entry(g.family, g.protocol).none += g.count;
  for (const g of ns.nat?.groups() ?? []) {
    const e = entry(g.family, g.protocol);
    e.kinds[KINDS.indexOf(g.nat)]! += g.count;
    e.none -= g.count;
  }
  return all.values();
}

export function registerNatMetrics(registry: Registry, scope: MetricScope, s: NatSettings): void {
  const { k, portRange } = s;
  const ports = portsIn(portRange);
  const range = `${portRange.first}-${portRange.last}`;
  new Family(
    registry,
    'conntrack_nat_flows',
    'Flows in the table by network address translation (CTA_STATUS IPS_SRC_NAT, IPS_DST_NAT): snat, dnat, snat_dnat (both), and none (untranslated); the four add up to the flows of the family and protocol.',
    'gauge',
    (f) => {
      for (const ns of scope.shown()) {
        for (const e of byTranslation(ns)) {
          const labels = { family: e.family, protocol: e.protocol };
          f.add(ns.labels, { ...labels, nat: 'none' }, e.none);
          for (let i = 0; i < KINDS.length; i++) f.add(ns.labels, { ...labels, nat: KINDS[i]! }, e.kinds[i]);
        }
      }
    },
  );
  new Family(
    registry,
    'conntrack_snat_port_utilisation_max_ratio',
    `The highest source NAT port utilisation over every mapping (NAT address, destination address and port, protocol): its flows over the ${ports} ports of --nat.port-range=${range}. At 1 that destination gets no new connection through that NAT address (insert_failed, drop).`,
    'gauge',
    (f) => {
      for (const ns of scope.shown()) if (ns.nat) f.add(ns.labels, {}, ns.nat.maxMappingFlows() / ports);
    },
  );
  if (k > 0) {
    new Family(
      registry,
      'conntrack_top_snat_mapping_flows',
      `Flows by source NAT mapping (NAT address, destination address and port, protocol): the top ${k}, and nat_source="${OTHER}" for the rest.`,
      'gauge',
      (f) => {
        const { top, other } = jointTop(scope, k, (ns) => ns.nat?.topSnatMappings());
        for (const t of top) f.add(t.base, t.labels as Record<string, string>, t.value);
        f.add({}, { nat_source: OTHER }, other);
      },
    );
    new Family(
      registry,
      'conntrack_top_snat_mapping_port_utilisation_ratio',
      `Port utilisation of the top ${k} source NAT mappings by flows: their flows over the ${ports} ports of --nat.port-range=${range}.`,
      'gauge',
      (f) => {
        const { top } = jointTop(scope, k, (ns) => ns.nat?.topSnatMappings());
        for (const t of top) f.add(t.base, t.labels as Record<string, string>, t.value / ports);
      },
    );
    new Family(
      registry,
      'conntrack_top_dnat_flows',
      `Flows by destination NAT: the destination asked for (destination, port) and where it was sent (translated_destination, translated_port): the top ${k}, and destination="${OTHER}" for the rest.`,
      'gauge',
      (f) => {
        const { top, other } = jointTop(scope, k, (ns) => ns.nat?.topDnat());
        for (const t of top) f.add(t.base, t.labels as Record<string, string>, t.value);
        f.add({}, { destination: OTHER }, other);
      },
    );
  }
  new Family(
    registry,
    'conntrack_nat_unattributed_flows_total',
    'Translated flows whose source NAT mapping or destination NAT pair found no room within the memory budget: counted in the remainder, and missing from the highest utilisation.',
    'counter',
    (f) => {
      for (const ns of scope.shown()) {
        const u = ns.nat?.unattributed;
        if (u) for (const dimension of DIMENSIONS) f.add(ns.labels, { dimension }, u[dimension]);
      }
    },
  );
}
