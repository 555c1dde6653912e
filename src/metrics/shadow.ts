/**
 * What the shadow table holds and the events that keep it current: flows by family, protocol and
 * state, and events received by type. Read from the table and the collector's counters at scrape
 * time.
 */
import { Gauge, type Registry } from '@prometheus-io/client';
import type { CollectorCounters } from '../sync/collector.js';
import type { ShadowTable } from '../table/table.js';
import { mirroredCounterBy } from './scrape.js';

export const EVENT_TYPES = ['new', 'update', 'destroy'] as const;

export function eventCounts(c: CollectorCounters): Record<(typeof EVENT_TYPES)[number], number> {
  return { new: c.eventsNew, update: c.eventsUpdate, destroy: c.eventsDestroy };
}

export function registerShadowMetrics(
  registry: Registry,
  table: () => ShadowTable | undefined,
  counters: () => CollectorCounters | undefined,
): void {
  new Gauge({
    name: 'conntrack_flows',
    help: 'Flows in the shadow table by family, protocol and state (TCP/SCTP/DCCP: kernel state; others: UNREPLIED, REPLIED or ASSURED).',
    labelNames: ['family', 'protocol', 'state'] as const,
    registers: [registry],
    collect() {
      for (const g of table()?.groups() ?? []) this.labels(g.family, g.protocol, g.state).set(g.count);
    },
  });
  mirroredCounterBy(
    registry,
    'conntrack_events_total',
    'Conntrack events received from the kernel, by event type.',
    'event',
    EVENT_TYPES,
    () => {
      const c = counters();
      return c && eventCounts(c);
    },
  );
}
