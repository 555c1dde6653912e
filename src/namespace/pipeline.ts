/**
 * One followed network namespace. Idle, it holds one request socket opened inside the namespace
 * (the addon switches a thread there and back) and is probed for its entry count on every
 * discovery scan, never at scrape time. Active (its table has entries, or an event arrived for
 * it), it also has what the default mode has for its single namespace: a shadow table, a
 * collector fed by the shared event socket, a dump socket inside the namespace, and the kernel's
 * count and per-CPU statistics read at scrape time.
 */
import type { Logger } from 'pino';
import { CtnetlinkClient } from '../ctnetlink/client.js';
import { CPU_STAT_NAMES, type CpuStatName, type CpuStats } from '../ctnetlink/stats.js';
import { ConntrackError } from '../errors.js';
import { RequestSocket } from '../netlink/request.js';
import { Collector } from '../sync/collector.js';
import type { SilentScheduleOptions } from '../sync/silent-schedule.js';
import { ShadowTable, type TableObserver } from '../table/table.js';
import type { NamespaceRef } from './discovery.js';

export interface PipelineOptions {
  observer: TableObserver;
  log: Logger;
  resyncIntervalMs: number;
  /** Re-dumps that follow silent flows (see Collector). */
  silentSchedule: SilentScheduleOptions;
  /** Opens a request socket inside the namespace (undefined: the exporter's own). */
  openSocket?: (
    timeoutMs: number,
    netns: string | undefined,
    slots?: number,
    chunks?: number,
  ) => RequestSocket;
}

/** The kernel's per-CPU u32 counters, accumulated by differences so they never go back. */
class CpuCounterTotals {
  readonly totals: Partial<Record<CpuStatName, number>> = {};
  private readonly last = new Map<number, Partial<Record<CpuStatName, number>>>();

  add(perCpu: readonly CpuStats[]): void {
    for (const s of perCpu) {
      const last = this.last.get(s.cpu) ?? {};
      for (const name of CPU_STAT_NAMES) {
        const v = s.values[name];
        if (v === undefined) continue;
        this.totals[name] = (this.totals[name] ?? 0) + ((v - (last[name] ?? 0)) >>> 0);
      }
      this.last.set(s.cpu, { ...s.values });
    }
  }
}

const STATS_SLOTS = 4;

interface Active {
  table: ShadowTable;
  collector: Collector;
  dumpSocket: RequestSocket;
  seeded: Promise<void>;
}

export class NamespacePipeline {
  /** Kernel entries at the last probe or scrape; undefined before the first or after a failure. */
  entries: number | undefined;
  readonly cpu = new CpuCounterTotals();
  /** Statistics requests that failed. */
  readErrors = 0;
  /** Events that arrived since the last discovery scan. */
  eventsSinceScan = 0;
  /** The namespace id as seen from the exporter's namespace; -1 for its own or none. */
  nsid = -1;
  private active: Active | undefined;
  private readonly client: CtnetlinkClient;
  private readonly statsSocket: RequestSocket;
  private closed = false;

  constructor(
    readonly ref: NamespaceRef,
    private readonly options: PipelineOptions,
  ) {
    // Statistics replies are a few small datagrams: 4 slots of 32 KiB read on the event loop, not
    // the dump socket's ring of chunks filled by a reader thread (a thread per idle namespace).
    this.statsSocket = this.open(5_000, STATS_SLOTS, 0);
    this.client = new CtnetlinkClient(this.statsSocket);
  }

  get table(): ShadowTable | undefined {
    return this.active?.table;
  }

  get collector(): Collector | undefined {
    return this.active?.collector;
  }

  /** Resolves when the table is seeded (at once for an idle namespace). */
  get seeded(): Promise<void> {
    return this.active?.seeded ?? Promise.resolve();
  }

  /** Reads the kernel's entry count; failures count, the value becomes unknown. */
  async probe(): Promise<number | undefined> {
    try {
      this.entries = (await this.client.globalStats()).entries;
    } catch {
      this.readErrors++;
      this.entries = undefined;
    }
    return this.entries;
  }

  /** Scrape-time read of an active namespace: entries and per-CPU counters. */
  async read(): Promise<void> {
    const [, perCpu] = await Promise.all([
      this.probe(),
      this.client.cpuStats().catch(() => {
        this.readErrors++;
        return [];
      }),
    ]);
    this.cpu.add(perCpu);
    if (this.entries !== undefined) this.active?.collector.observeKernelCount(this.entries);
  }

  /**
   * Starts following the table: a dump socket, a shadow table, a collector seeded by a dump.
   * Called from the event path too, so it never throws: a namespace that cannot be entered (gone
   * meanwhile) stays idle and the next scan decides again.
   */
  activate(): void {
    if (this.active || this.closed) return;
    const { observer, log, resyncIntervalMs, silentSchedule } = this.options;
    let dumpSocket: RequestSocket;
    try {
      dumpSocket = this.open(30_000);
    } catch (err) {
      log.warn({ netns: this.ref.label, err }, 'cannot open a dump socket inside the network namespace');
      return;
    }
    const table = new ShadowTable(observer);
    const collector = new Collector({
      table,
      dumper: new CtnetlinkClient(dumpSocket),
      log: log.child({ netns: this.ref.label }),
      silentSchedule,
      // The drift check reads the namespace's count over its statistics socket.
      kernelCount: async () => {
        const n = await this.probe();
        if (n === undefined) throw new ConntrackError('CT_ERR_TRUNCATED', 'no entry count for the namespace');
        return n;
      },
    });
    const seeded = collector.start(resyncIntervalMs);
    // A failed first dump is logged by the collector; the next overrun or probe retries.
    seeded.catch(() => undefined);
    this.active = { table, collector, dumpSocket, seeded };
  }

  /** Back to idle: the table and its series go, the namespace stays followed. */
  deactivate(): void {
    const a = this.active;
    if (!a) return;
    this.active = undefined;
    a.collector.stop();
    a.dumpSocket.close();
  }

  close(): void {
    this.closed = true;
    this.deactivate();
    this.statsSocket.close();
  }

  private open(timeoutMs: number, slots?: number, chunks?: number): RequestSocket {
    const path = this.ref.own ? undefined : this.ref.path;
    return (this.options.openSocket ?? RequestSocket.open)(timeoutMs, path, slots, chunks);
  }
}
