/** The Node.js process metrics (the client's defaults), tuned so an idle exporter stays idle. */
import { collectDefaultMetrics, type Registry } from '@prometheus-io/client';

/**
 * Gauges named like counters fail `promtool check metrics` (nodejs_active_{handles,requests,
 * resources} by type carry the same numbers), and the event-loop utilisation pair is sampled by a
 * timer nobody asked for.
 */
const DROPPED = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
  'nodejs_eventloop_utilization_summary',
  'nodejs_eventloop_utilization_histogram',
] as const;

export function registerProcessMetrics(registry: Registry): void {
  // The utilisation pair's 100 ms timer is pushed to the longest delay Node allows (~24.8 days)
  // and the pair removed below: an idle exporter does not wake 10 times a second for it. The
  // event-loop lag monitor samples once a second, not every 10 ms (its default): lag is still
  // measured, and an idle exporter wakes once a second instead of 100 times.
  collectDefaultMetrics({
    register: registry,
    eventLoopUtilizationTimeout: 2 ** 31 - 1,
    eventLoopMonitoringPrecision: 1000,
  });
  for (const name of DROPPED) registry.removeSingleMetric(name);
}
