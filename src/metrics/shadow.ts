/**
 * What the shadow table holds and the events that keep it current: flows by family, protocol and
 * state, and events received by type, per namespace.
 */
import type { Registry } from '@prometheus-io/client';
import { Family } from './family.js';
import type { MetricScope } from './scope.js';

export function registerShadowMetrics(registry: Registry, scope: MetricScope): void {
  new Family(
    registry,
    'conntrack_flows',
    'Flows in the shadow table by family, protocol and state (TCP/SCTP/DCCP: kernel state; others: UNREPLIED, REPLIED or ASSURED).',
    'gauge',
    (f) => {
      for (const ns of scope.shown()) {
        for (const g of ns.table?.groups() ?? []) {
          f.add(ns.labels, { family: g.family, protocol: g.protocol, state: g.state }, g.count);
        }
      }
    },
  );
  new Family(
    registry,
    'conntrack_events_total',
    'Conntrack events received from the kernel, by event type.',
    'counter',
    (f) => {
      for (const ns of scope.shown()) {
        const c = ns.counters;
        if (!c) continue;
        f.add(ns.labels, { event: 'new' }, c.eventsNew);
        f.add(ns.labels, { event: 'update' }, c.eventsUpdate);
        f.add(ns.labels, { event: 'destroy' }, c.eventsDestroy);
      }
    },
  );
}
