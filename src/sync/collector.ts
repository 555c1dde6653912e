/**
 * Keeps the shadow table equal to the kernel's: the event applier (sync/applier.ts) applies event
 * datagrams as they arrive, the resync scheduler (sync/scheduler.ts) re-dumps the table when
 * events cannot be trusted to have kept it exact. One per namespace; this is what the rest of the
 * exporter holds. The event socket must be open before start() so nothing falls between the
 * first dump and the first event.
 */
import type { Batch } from '../netlink/transport.js';
import type { Clock, ShadowTable } from '../table/table.js';
import { EventApplier, type Log } from './applier.js';
import { CollectorCounters, type ResyncReason } from './counters.js';
import type { DriftOptions } from './drift.js';
import { DEFAULT_SCHEDULER_OPTIONS, type Dumper, ResyncScheduler } from './scheduler.js';
import type { SilentScheduleOptions } from './silent-schedule.js';
import { realTimers, type Timers } from './timers.js';

export type { Log } from './applier.js';
export { CollectorCounters, RESYNC_REASONS, type ResyncReason } from './counters.js';
export type { Dumper } from './scheduler.js';

export interface CollectorOptions {
  readonly table: ShadowTable;
  readonly dumper: Dumper;
  readonly log: Log;
  /** The wall clock and timers of the resync schedule; injected by tests. */
  readonly timers?: Timers;
  /** CPU seconds this process has used, all threads (the silent budget is in CPU); injected by tests. */
  readonly cpuClock?: Clock;
  /** Delay before a resync requested while another ran (collapses bursts of requests). */
  readonly followUpDelayMs?: number;
  /** When to re-dump while silent flows remain; `minSeconds: 0` turns it off. */
  readonly silentSchedule?: SilentScheduleOptions;
  /** Reads the kernel's entry count (CT_GET_STATS) for the drift check between scrapes. */
  readonly kernelCount?: () => Promise<number>;
  /** How often the drift timer reads kernelCount (ms); 0 = only at scrapes. */
  readonly driftCheckMs?: number;
  readonly drift?: DriftOptions;
}

export class Collector {
  readonly counters = new CollectorCounters();
  private readonly applier: EventApplier;
  private readonly scheduler: ResyncScheduler;

  constructor(options: CollectorOptions) {
    const timers = options.timers ?? realTimers;
    const d = DEFAULT_SCHEDULER_OPTIONS;
    const { table, dumper, log } = options;
    this.applier = new EventApplier(table, this.counters, log, () => timers.now());
    const deps = { table, dumper, applier: this.applier, counters: this.counters, log, timers };
    this.scheduler = new ResyncScheduler(deps, {
      cpuClock: options.cpuClock ?? d.cpuClock,
      followUpDelayMs: options.followUpDelayMs ?? d.followUpDelayMs,
      silentSchedule: options.silentSchedule ?? d.silentSchedule,
      kernelCount: options.kernelCount,
      driftCheckMs: options.driftCheckMs ?? d.driftCheckMs,
      drift: options.drift ?? d.drift,
    });
  }

  /** True once the first dump has been merged: the table then mirrors the kernel. */
  get ready(): boolean {
    return this.scheduler.ready;
  }

  /** Seeds the table; resolves when it is ready. */
  start(resyncIntervalMs = 0): Promise<void> {
    return this.scheduler.start(resyncIntervalMs);
  }

  stop(): void {
    this.scheduler.stop();
  }

  /** The hot path: a batch of event datagrams from the event socket. */
  onBatch(batch: Batch): void {
    this.applier.onBatch(batch);
  }

  /** One event datagram, buf[from, to); usually one message. */
  onDatagram(buf: Buffer, from = 0, to = buf.length): void {
    this.applier.onDatagram(buf, from, to);
  }

  /** The kernel dropped `lost` events (0 when it only said so, without a count). */
  onOverrun(): void {
    this.scheduler.onOverrun();
  }

  /** The event socket was reopened: flows created while it was closed send no events either. */
  onResubscribed(): void {
    this.scheduler.onResubscribed();
  }

  /** The kernel's entry count, read at a scrape: drift beyond what events explain resyncs. */
  observeKernelCount(entries: number): void {
    this.scheduler.observeKernelCount(entries);
  }

  /** Re-dumps and reconciles now (or right after the dump already running). */
  resync(reason: ResyncReason): Promise<void> {
    return this.scheduler.resync(reason);
  }
}
