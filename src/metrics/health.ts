/**
 * The collector's own health, per namespace: the resyncs that repair lost events, malformed
 * messages, drift between the table and the kernel's count, silent flows and failed kernel reads;
 * and, once, the event socket every namespace shares (its losses and buffer). An operator reads
 * these to know whether the other metrics can be trusted.
 */
import type { Registry } from '@prometheus-io/client';
import { type CollectorCounters, RESYNC_REASONS, type ResyncReason } from '../sync/collector.js';
import type { SocketHealth } from '../sync/resubscribe.js';
import type { LabelSet } from './family.js';
import { Family } from './family.js';
import type { MetricScope, NamespaceMetrics } from './scope.js';

type Read = (ns: NamespaceMetrics) => number | undefined;

export function registerHealthMetrics(registry: Registry, scope: MetricScope): void {
  const perNamespace = (name: string, help: string, type: 'counter' | 'gauge', read: Read) =>
    new Family(registry, name, help, type, (f) => {
      for (const ns of scope.shown()) f.add(ns.labels, {}, read(ns));
    });
  const byReason = (
    name: string,
    help: string,
    read: (c: CollectorCounters) => Record<ResyncReason, number>,
  ) =>
    new Family(registry, name, help, 'counter', (f) => {
      for (const ns of scope.shown()) {
        const c = ns.counters;
        if (!c) continue;
        const counts = read(c);
        for (const reason of RESYNC_REASONS) f.add(ns.labels, { reason }, counts[reason]);
      }
    });
  const once = (name: string, help: string, type: 'counter' | 'gauge', read: () => number | undefined) =>
    new Family(registry, name, help, type, (f) => f.add({}, {}, read()));

  perNamespace(
    'conntrack_collector_overruns_total',
    'Times the event socket was found to have lost events (its buffer was full); each triggers a resync.',
    'counter',
    (ns) => ns.counters?.overruns,
  );
  once(
    'conntrack_collector_events_lost_total',
    'Event messages the kernel dropped because the event socket buffer was full (its drop counter); any loss triggers a resync.',
    'counter',
    () => scope.events.lost,
  );
  once(
    'conntrack_collector_netlink_not_from_kernel_total',
    'Netlink datagrams dropped because the kernel did not send them (sender port id not 0): forged conntrack events or replies from a local process with CAP_NET_ADMIN. Never applied.',
    'counter',
    () => scope.events.notFromKernel,
  );
  byReason(
    'conntrack_collector_resyncs_total',
    'Completed full-table resynchronisations, by reason (startup, overrun, drift, periodic, silent).',
    (c) => c.resyncs,
  );
  byReason(
    'conntrack_collector_resync_failures_total',
    'Full-table resynchronisations that failed (the dump failed or timed out), by reason; the table keeps its previous state.',
    (c) => c.resyncFailures,
  );
  perNamespace(
    'conntrack_collector_decode_errors_total',
    'Malformed ctnetlink messages that were counted and skipped.',
    'counter',
    (ns) => ns.counters?.decodeErrors,
  );
  perNamespace(
    'conntrack_collector_last_resync_timestamp_seconds',
    'When the shadow table was last resynchronised with a full dump (seconds since the epoch).',
    'gauge',
    (ns) => ns.counters?.lastResync,
  );
  perNamespace(
    'conntrack_collector_table_drift',
    'Flows in the shadow table minus entries the kernel counts, at scrape time. A difference beyond what events in flight explain triggers a resync (reason drift); a lasting one means the exporter cannot see what the kernel counts.',
    'gauge',
    (ns) => {
      const entries = ns.kernel?.entries;
      return ns.table && entries !== undefined ? ns.table.size - entries : undefined;
    },
  );
  perNamespace(
    'conntrack_collector_silent_flows',
    'Flows the kernel sends no events for (created while no process listened, with nf_conntrack_events=2: before the exporter started or while it restarted); re-dumps follow them until they are gone.',
    'gauge',
    (ns) => ns.table?.silentFlows,
  );
  once(
    'conntrack_collector_netlink_receive_buffer_bytes',
    'Effective receive buffer of the event socket (SO_RCVBUF as the kernel reports it).',
    'gauge',
    () => scope.events.receiveBuffer,
  );
  const bySocket = (
    name: string,
    help: string,
    type: 'counter' | 'gauge',
    read: (s: SocketHealth) => number,
  ) =>
    new Family(registry, name, help, type, (f) => {
      const add = (labels: LabelSet, s: SocketHealth) => f.add(labels, { socket: s.name }, read(s));
      for (const s of scope.sharedSockets()) add({}, s);
      for (const ns of scope.shown()) for (const s of ns.sockets) add(ns.labels, s);
    });
  bySocket(
    'conntrack_collector_netlink_socket_up',
    'Whether a netlink socket is open (1), or failed and is being reopened (0), by socket (events, nsid, and per namespace stats, dump). One that stays closed through 5 reopen attempts (31 s) fails /healthz.',
    'gauge',
    (s) => (s.up ? 1 : 0),
  );
  bySocket(
    'conntrack_collector_netlink_socket_failures_total',
    'Netlink socket errors that closed a socket, which was then reopened (events: followed by a resync).',
    'counter',
    (s) => s.failures,
  );
  perNamespace(
    'conntrack_collector_kernel_read_errors_total',
    'Kernel reads that failed: netlink statistics requests and sysctl files at scrape time (a value that could not be read is left out of that scrape), and entry counts for the drift check.',
    'counter',
    (ns) => ns.kernelReadErrors,
  );
}
