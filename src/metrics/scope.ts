/**
 * What the metric groups read, and nothing more: the namespaces shown in a scrape (one, the
 * exporter's own, in default mode; the active ones under --netns.all), each with the labels that
 * set its series apart, and the event socket they share. namespace/ implements it; the groups
 * never see a socket.
 */
import type { Attribution } from '../attribution/attribution.js';
import type { NatTracking } from '../attribution/nat.js';
import type { CpuStatName } from '../ctnetlink/stats.js';
import type { KernelSnapshot } from '../kernel/stats.js';
import type { CollectorCounters } from '../sync/collector.js';
import type { SocketHealth } from '../sync/resubscribe.js';
import type { ShadowTable } from '../table/table.js';
import type { LabelSet } from './family.js';

export interface NamespaceMetrics {
  /** None in default mode; `{netns}` under --netns.all. */
  readonly labels: LabelSet;
  /** This scrape's read of the namespace's kernel counts; undefined before the first. */
  readonly kernel: KernelSnapshot | undefined;
  /** The per-CPU statistics summed over CPUs, kept monotonic across their u32 wraps. */
  readonly cpuTotals: Readonly<Partial<Record<CpuStatName, number>>>;
  /** Kernel reads that failed: at scrapes, and the drift check's entry counts. */
  readonly kernelReadErrors: number;
  readonly table: ShadowTable | undefined;
  readonly counters: CollectorCounters | undefined;
  /** Who fills the table; undefined with --top.k=0. */
  readonly attribution: Attribution | undefined;
  /** The namespace's request sockets (statistics, dumps) and whether they are open. */
  readonly sockets: readonly SocketHealth[];
  /** Translated flows, source NAT mappings, destination NAT pairs; undefined while idle. */
  readonly nat: NatTracking | undefined;
}

export interface EventSocketMetrics {
  /** Event messages the kernel dropped because the socket's buffer was full. */
  readonly lost: number;
  /** Effective SO_RCVBUF; undefined while the socket is being reopened. */
  readonly receiveBuffer: number | undefined;
  /** Datagrams dropped on every netlink socket because the kernel did not send them. */
  readonly notFromKernel: number;
}

export interface MetricScope {
  /** The namespaces with series in this scrape. */
  shown(): Iterable<NamespaceMetrics>;
  /** The exporter's own namespace: node-wide values (nf_conntrack_max, the hash size) come from it. */
  own(): NamespaceMetrics | undefined;
  readonly events: EventSocketMetrics;
  /** The sockets every namespace shares (events; namespace ids under --netns.all). */
  sharedSockets(): readonly SocketHealth[];
  /** Reads the kernel once for every shown namespace; called before each render. */
  read(): Promise<void>;
}
