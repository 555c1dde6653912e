/**
 * One network namespace, everything the exporter knows of it: its request socket (statistics,
 * probes), its share of the event socket (datagrams routed here by namespaces.ts), and while its
 * table is in use ("active") a shadow table kept exact by a collector (start-up dump, overruns,
 * drift, silent re-dumps) over a dump socket of its own, with attribution and NAT tracking beside
 * the table. At
 * every scrape it reads the kernel once (netlink, procfs where netlink fails) and accumulates the
 * per-CPU counters; the drift check sees that same read.
 *
 * The default mode is one unit, the exporter's own namespace, whose series carry no label;
 * --netns.all is discovery plus a unit per namespace, each labelled `netns`. Nothing here knows
 * which mode it runs in beyond its labels.
 */
import type { Logger } from 'pino';
import { type Attribution, attributionFor } from '../attribution/attribution.js';
import type { GrowthBudget } from '../attribution/interner.js';
import { NatTracking, type PortRange } from '../attribution/nat.js';
import { CtnetlinkClient } from '../ctnetlink/client.js';
import { ConntrackError } from '../errors.js';
import { CpuTotals } from '../kernel/cpu-totals.js';
import type { ProcFiles } from '../kernel/proc.js';
import type { SlabReader } from '../kernel/slab.js';
import { type KernelSnapshot, KernelStatsReader } from '../kernel/stats.js';
import { type BrokenHandler, RequestSocket } from '../netlink/request.js';
import { Collector } from '../sync/collector.js';
import { type ReopenPolicy, ResilientRequestSocket, type SocketHealth } from '../sync/resubscribe.js';
import type { SilentScheduleOptions } from '../sync/silent-schedule.js';
import type { Timers } from '../sync/timers.js';
import { joinExtensions } from '../table/extensions.js';
import { ShadowTable, type TableObserver } from '../table/table.js';
import type { NamespaceRef } from './discovery.js';
import type { NamespaceIdentity } from './identity.js';

export interface AttributionConfig {
  topK: number;
  topSourcePrefixV4: number;
  topSourcePrefixV6: number;
  /** --nat.port-range. */
  natPortRange: PortRange;
}

export interface UnitOptions {
  observer: TableObserver;
  log: Logger;
  resyncIntervalMs: number;
  /** Re-dumps that follow silent flows (see Collector). */
  silentSchedule: SilentScheduleOptions;
  attribution: AttributionConfig;
  /** The memory attribution's per-key arrays may grow into, shared by every namespace. */
  growth?: GrowthBudget | undefined;
  /** Series carry `netns` (--netns.all); the default mode's single unit has no label. */
  labelled: boolean;
  /**
   * Opens a request socket inside the namespace open as `netns` (undefined: the exporter's own)
   * that reports a broken socket to `onBroken`.
   */
  openSocket?: (
    timeoutMs: number,
    netns: number | undefined,
    slots?: number,
    chunks?: number,
    onBroken?: BrokenHandler,
  ) => RequestSocket;
  /** The namespace's procfs files. */
  openProc: (ref: NamespaceRef) => ProcFiles;
  /** Timers and policy of the sockets' reopening (tests); real timers, REOPEN_POLICY otherwise. */
  reopen?: { timers?: Timers; policy?: ReopenPolicy } | undefined;
  /** The node's conntrack slab cache, read with the exporter's own namespace (it is one for all). */
  slab?: SlabReader | undefined;
}

/** Statistics replies are a few small datagrams: 4 slots read on the event loop, no reader thread. */
const STATS_SLOTS = 4;
const STATS_TIMEOUT_MS = 5_000;
const DUMP_TIMEOUT_MS = 30_000;

interface Active {
  table: ShadowTable;
  collector: Collector;
  dumpSocket: ResilientRequestSocket;
  attribution: Attribution | undefined;
  nat: NatTracking;
  seeded: Promise<void>;
}

export class NamespaceUnit {
  /** What sets this namespace's series apart: nothing in default mode, `netns` under --netns.all. */
  readonly labels: Readonly<Record<string, string>>;
  /** This scrape's read of the kernel. */
  kernel: KernelSnapshot | undefined;
  /** Entries at the last probe or scrape; undefined before the first or after a failure. */
  entries: number | undefined;
  /** Events that arrived since the last discovery scan. */
  eventsSinceScan = 0;
  /** The namespace id as seen from the exporter's namespace; -1 for its own or none. */
  nsid = -1;
  /** Whose namespace it is (pod, or container), as of the last rescan (--netns.all); none: unknown. */
  identity: NamespaceIdentity | undefined;
  /** Its interfaces' addresses as of the last rescan (--netns.all), sorted. */
  addresses: readonly string[] = [];
  private readErrors = 0;
  private readonly cpu = new CpuTotals();
  private active: Active | undefined;
  private readonly statsSocket: ResilientRequestSocket;
  private readonly stats: CtnetlinkClient;
  private readonly reader: KernelStatsReader;
  private readonly proc: ProcFiles;
  private closed = false;

  constructor(
    readonly ref: NamespaceRef,
    private readonly options: UnitOptions,
  ) {
    this.labels = options.labelled ? { netns: ref.label } : {};
    this.proc = options.openProc(ref);
    try {
      this.statsSocket = this.open('stats', STATS_TIMEOUT_MS, STATS_SLOTS, 0);
    } catch (err) {
      // The caller never gets the unit, so nobody else would close the files.
      this.proc.close();
      throw err;
    }
    this.stats = new CtnetlinkClient(this.statsSocket);
    this.reader = new KernelStatsReader(this.stats, this.proc, ref.own ? options.slab : undefined);
  }

  get table(): ShadowTable | undefined {
    return this.active?.table;
  }

  get collector(): Collector | undefined {
    return this.active?.collector;
  }

  get counters() {
    return this.active?.collector.counters;
  }

  get attribution(): Attribution | undefined {
    return this.active?.attribution;
  }

  /** This namespace's request sockets (statistics; dumps while active), each reopened after it breaks. */
  get sockets(): SocketHealth[] {
    const out = [this.statsSocket.health];
    if (this.active) out.push(this.active.dumpSocket.health);
    return out;
  }

  get nat(): NatTracking | undefined {
    return this.active?.nat;
  }

  get cpuTotals() {
    return this.cpu.totals;
  }

  get kernelReadErrors(): number {
    return this.readErrors + (this.active?.collector.counters.driftReadErrors ?? 0);
  }

  /** Resolves when the table is seeded (at once for an idle namespace); rejects if that dump failed. */
  get seeded(): Promise<void> {
    return this.active?.seeded ?? Promise.resolve();
  }

  /** The kernel's entry count, for discovery's idle probes; failures count, the value becomes unknown. */
  async probe(): Promise<number | undefined> {
    try {
      this.entries = (await this.stats.globalStats()).entries;
    } catch {
      this.readErrors++;
      this.entries = undefined;
    }
    return this.entries;
  }

  /** One scrape's read of the kernel; the drift check compares the table with it. */
  async read(): Promise<void> {
    const k = await this.reader.read();
    this.kernel = k;
    this.readErrors += k.errors;
    this.cpu.add(k.perCpu);
    this.entries = k.entries;
    if (k.entries !== undefined) this.active?.collector.observeKernelCount(k.entries);
  }

  /**
   * Starts following the table: a dump socket, a shadow table (with attribution), a collector
   * seeded by a dump. Called from the event path too, so it never throws: a namespace that cannot
   * be entered (gone meanwhile) stays idle and the next scan decides again.
   */
  activate(): void {
    if (this.active || this.closed) return;
    const { observer, log, resyncIntervalMs, silentSchedule } = this.options;
    let dumpSocket: ResilientRequestSocket;
    try {
      dumpSocket = this.open('dump', DUMP_TIMEOUT_MS);
    } catch (err) {
      log.warn({ netns: this.ref.label, err }, 'cannot open a dump socket inside the network namespace');
      return;
    }
    // --top.k=0: no extension at all, so attribution costs nothing per flow.
    const attribution = attributionFor(this.options.attribution, this.options.growth);
    // NAT tracking is on whatever --top.k says (its counts and highest utilisation need no
    // ranking); untranslated flows cost it nothing but a call.
    const nat = new NatTracking({
      k: this.options.attribution.topK,
      portRange: this.options.attribution.natPortRange,
      growth: this.options.growth,
    });
    const table = new ShadowTable(observer, undefined, joinExtensions(attribution, nat));
    const collector = new Collector({
      table,
      dumper: new CtnetlinkClient(dumpSocket),
      log: this.options.labelled ? log.child({ netns: this.ref.label }) : log,
      silentSchedule,
      kernelCount: async () => {
        const n = (await this.stats.globalStats()).entries;
        if (n === undefined)
          throw new ConntrackError('CT_ERR_MISSING_ATTR', 'CT_GET_STATS reply carried no entry count');
        return n;
      },
    });
    const seeded = collector.start(resyncIntervalMs);
    // Whoever waits for readiness decides what a failed first dump means; a silent rejection
    // here would be an unhandled one.
    seeded.catch(() => undefined);
    this.active = { table, collector, dumpSocket, attribution, nat, seeded };
  }

  /** Back to idle: the table and its series go, the namespace stays followed. */
  deactivate(): void {
    const a = this.active;
    if (!a) return;
    this.active = undefined;
    a.collector.stop();
    a.dumpSocket.close();
  }

  /** An event datagram for this namespace: its first flow activates it. */
  onDatagram(buf: Buffer, start: number, end: number): void {
    this.eventsSinceScan++;
    // Activation starts the seeding dump synchronously, so the table is already syncing and
    // takes the event like any event that arrives during a dump.
    if (!this.active) this.activate();
    this.active?.collector.onDatagram(buf, start, end);
  }

  /** Events were lost on the shared socket; which were ours is unknown. */
  onOverrun(): void {
    this.active?.collector.onOverrun();
  }

  /** The event socket was reopened: flows created meanwhile send no events either. */
  onResubscribed(): void {
    this.active?.collector.onResubscribed();
  }

  close(): void {
    this.closed = true;
    this.deactivate();
    this.statsSocket.close();
    this.proc.close();
  }

  /**
   * A request socket inside this namespace that reopens itself after it breaks (the first open
   * throws). Reopened through the descriptor discovery keeps, never ref.foundAt, so it is the
   * same namespace; under --netns.all a namespace that went away is closed by the next scan.
   */
  private open(name: string, timeoutMs: number, slots?: number, chunks?: number): ResilientRequestSocket {
    const netns = this.ref.own ? undefined : this.ref.fd;
    const openSocket = this.options.openSocket ?? RequestSocket.open;
    const { log, labelled, reopen } = this.options;
    return new ResilientRequestSocket(
      name,
      (onBroken) => openSocket(timeoutMs, netns, slots, chunks, onBroken),
      { log: labelled ? log.child({ netns: this.ref.label }) : log, ...reopen },
    );
  }
}
