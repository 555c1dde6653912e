/**
 * The collector's own health: lost events and the resyncs that repair them, malformed messages,
 * drift between the table and the kernel's count, silent flows, the socket buffer and failed
 * kernel reads. An operator reads these to know whether the other metrics can be trusted.
 */
import { Gauge, type Registry } from '@prometheus-io/client';
import { type CollectorCounters, RESYNC_REASONS } from '../sync/collector.js';
import type { ShadowTable } from '../table/table.js';
import { mirroredCounter, mirroredCounterBy, ScrapeGauge } from './scrape.js';

export interface HealthSources {
  table: () => ShadowTable | undefined;
  counters: () => CollectorCounters | undefined;
  /** The kernel's entry count at this scrape, if it could be read. */
  kernelEntries: () => number | undefined;
  /** Kernel reads at scrape time that failed, over all scrapes. */
  scrapeReadErrors: () => number;
  /** Effective SO_RCVBUF of the event socket. */
  rcvbuf: () => number | undefined;
}

export function registerHealthMetrics(registry: Registry, src: HealthSources): void {
  mirroredCounter(
    registry,
    'conntrack_collector_overruns_total',
    'Times the event socket was found to have lost events (its buffer was full); each triggers a resync.',
    () => src.counters()?.overruns,
  );
  mirroredCounter(
    registry,
    'conntrack_collector_events_lost_total',
    'Event messages the kernel dropped because the event socket buffer was full (its drop counter); any loss triggers a resync.',
    () => src.counters()?.eventsLost,
  );
  mirroredCounterBy(
    registry,
    'conntrack_collector_resyncs_total',
    'Completed full-table resynchronisations, by reason (startup, overrun, drift, periodic, silent).',
    'reason',
    RESYNC_REASONS,
    () => src.counters()?.resyncs,
  );
  mirroredCounterBy(
    registry,
    'conntrack_collector_resync_failures_total',
    'Full-table resynchronisations that failed (the dump failed or timed out), by reason; the table keeps its previous state.',
    'reason',
    RESYNC_REASONS,
    () => src.counters()?.resyncFailures,
  );
  mirroredCounter(
    registry,
    'conntrack_collector_decode_errors_total',
    'Malformed ctnetlink messages that were counted and skipped.',
    () => src.counters()?.decodeErrors,
  );
  new Gauge({
    name: 'conntrack_collector_last_resync_timestamp_seconds',
    help: 'When the shadow table was last resynchronised with a full dump (seconds since the epoch).',
    registers: [registry],
    collect() {
      const c = src.counters();
      if (c) this.set(c.lastResync);
    },
  });
  new ScrapeGauge(
    registry,
    'conntrack_collector_table_drift',
    'Flows in the shadow table minus entries the kernel counts, at scrape time. A difference beyond what events in flight explain triggers a resync (reason drift); a lasting one means the exporter cannot see what the kernel counts.',
    () => {
      const table = src.table();
      const entries = src.kernelEntries();
      return table && entries !== undefined ? table.size - entries : undefined;
    },
  );
  new Gauge({
    name: 'conntrack_collector_silent_flows',
    help: 'Flows the kernel sends no events for (created while no process listened, with nf_conntrack_events=2: before the exporter started or while it restarted); re-dumps follow them until they are gone.',
    registers: [registry],
    collect() {
      const table = src.table();
      if (table) this.set(table.silentFlows);
    },
  });
  new Gauge({
    name: 'conntrack_collector_netlink_receive_buffer_bytes',
    help: 'Effective receive buffer of the event socket (SO_RCVBUF as the kernel reports it).',
    registers: [registry],
    collect() {
      const v = src.rcvbuf();
      if (v !== undefined) this.set(v);
    },
  });
  mirroredCounter(
    registry,
    'conntrack_collector_kernel_read_errors_total',
    'Kernel reads that failed: netlink statistics requests and sysctl files at scrape time (a value that could not be read is left out of that scrape), and entry counts for the drift check.',
    () => src.scrapeReadErrors() + (src.counters()?.driftReadErrors ?? 0),
  );
}
