/**
 * Keeps the shadow table equal to the kernel's: event datagrams are decoded and applied as they
 * arrive; a full dump seeds the table at start-up and repairs it after lost events (overrun),
 * when the kernel's entry count and the table disagree beyond what events in flight explain
 * (drift, see sync/drift.ts), while the table holds flows the kernel sends no events for (silent,
 * see sync/silent-schedule.ts) and, optionally, on a timer. The event socket must be open before
 * the first dump so nothing falls between the two.
 */
import type { DumpResult, DumpSink } from '../ctnetlink/client.js';
import { type EventType, eventType } from '../ctnetlink/event.js';
import { FlowSummary, summarizeFlow } from '../ctnetlink/summary.js';
import { ConntrackError } from '../errors.js';
import { DatagramCursor, MessageCursor } from '../netlink/framing.js';
import type { Batch } from '../netlink/transport.js';
import { type Clock, type ShadowTable, wallClock } from '../table/table.js';
import { DEFAULT_DRIFT_OPTIONS, DriftGuard, type DriftOptions } from './drift.js';
import { DEFAULT_SILENT_SCHEDULE, type SilentScheduleOptions, silentInterval } from './silent-schedule.js';

export type ResyncReason = 'startup' | 'overrun' | 'drift' | 'periodic' | 'silent';
export const RESYNC_REASONS: readonly ResyncReason[] = ['startup', 'overrun', 'drift', 'periodic', 'silent'];

const perReason = (): Record<ResyncReason, number> => ({
  startup: 0,
  overrun: 0,
  drift: 0,
  periodic: 0,
  silent: 0,
});

export interface Dumper {
  dumpTable(sink: DumpSink): Promise<DumpResult>;
}

export interface Log {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface CollectorOptions {
  readonly table: ShadowTable;
  readonly dumper: Dumper;
  readonly log: Log;
  /** Seconds since the epoch; injected by tests. */
  readonly clock?: Clock;
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

/** CPU seconds of the whole process, user and system, every thread (the dump's reader too). */
const processCpu: Clock = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** Every 5 s: a flush of silent flows shows within one 15 s scrape interval, idle cost ~0. */
const DEFAULT_DRIFT_CHECK_MS = 5000;

/** Plain numbers on the event path; the metrics layer mirrors them at scrape time. */
export class CollectorCounters {
  eventsNew = 0;
  eventsUpdate = 0;
  eventsDestroy = 0;
  decodeErrors = 0;
  overruns = 0;
  /** Event messages the kernel dropped for us (the socket's drop counter). */
  eventsLost = 0;
  resyncs: Record<ResyncReason, number> = perReason();
  resyncFailures: Record<ResyncReason, number> = perReason();
  /** Kernel entry counts the drift timer could not read. */
  driftReadErrors = 0;
  /** Seconds since the epoch of the last completed resync; 0 before the first. */
  lastResync = 0;
  /** Seconds the last completed dump took. */
  lastDumpSeconds = 0;
  /** CPU seconds the process spent during the last completed dump (all threads). */
  lastDumpCpuSeconds = 0;

  get events(): number {
    return this.eventsNew + this.eventsUpdate + this.eventsDestroy;
  }
}

export class Collector {
  readonly counters = new CollectorCounters();
  private readonly table: ShadowTable;
  private readonly dumper: Dumper;
  private readonly log: Log;
  private readonly clock: Clock;
  private readonly cpuClock: Clock;
  private readonly followUpDelayMs: number;
  private readonly silentSchedule: SilentScheduleOptions;
  private readonly kernelCount: (() => Promise<number>) | undefined;
  private readonly driftCheckMs: number;
  private readonly drift: DriftGuard;
  private running: Promise<void> | undefined;
  private pending: ResyncReason | undefined;
  private lostDuringSync = false;
  private timer: NodeJS.Timeout | undefined;
  private silentTimer: NodeJS.Timeout | undefined;
  private driftTimer: NodeJS.Timeout | undefined;
  private confirmTimer: NodeJS.Timeout | undefined;
  /** The next dump's new flows may be silent (start-up, socket reopened). */
  private nextDumpSilent = true;
  private stopped = false;
  private lastDecodeLog = 0;
  private lastDriftReadLog = 0;
  /** Reused for every message: the hot path allocates nothing per event. */
  private readonly summary = new FlowSummary();
  private readonly datagrams = new DatagramCursor();
  private readonly messages = new MessageCursor();
  /** True once the first dump has been merged: the table then mirrors the kernel. */
  ready = false;

  constructor(options: CollectorOptions) {
    this.table = options.table;
    this.dumper = options.dumper;
    this.log = options.log;
    this.clock = options.clock ?? wallClock;
    this.cpuClock = options.cpuClock ?? processCpu;
    this.followUpDelayMs = options.followUpDelayMs ?? 1000;
    this.silentSchedule = options.silentSchedule ?? DEFAULT_SILENT_SCHEDULE;
    this.kernelCount = options.kernelCount;
    this.driftCheckMs = options.driftCheckMs ?? DEFAULT_DRIFT_CHECK_MS;
    this.drift = new DriftGuard(options.drift ?? DEFAULT_DRIFT_OPTIONS, this.clock);
  }

  /** Seeds the table; resolves when it is ready. */
  start(resyncIntervalMs = 0): Promise<void> {
    if (resyncIntervalMs > 0) {
      this.timer = setInterval(() => void this.resync('periodic'), resyncIntervalMs);
      this.timer.unref();
    }
    if (this.kernelCount && this.driftCheckMs > 0) {
      this.driftTimer = setInterval(() => void this.checkDrift(), this.driftCheckMs);
      this.driftTimer.unref();
    }
    return this.resync('startup');
  }

  stop(): void {
    this.stopped = true;
    for (const t of [this.timer, this.driftTimer]) if (t) clearInterval(t);
    for (const t of [this.silentTimer, this.confirmTimer]) if (t) clearTimeout(t);
  }

  /** The hot path: a batch of event datagrams from the event socket. */
  onBatch(batch: Batch): void {
    const d = this.datagrams.reset(batch);
    while (d.next()) this.onDatagram(d.buf, d.start, d.end);
    // Each datagram cut short by its receive slot lost at least one event.
    for (let i = 0; i < d.truncated; i++) this.decodeFailed(d.truncation('event'));
  }

  /** One event datagram, buf[from, to); usually one message. */
  onDatagram(buf: Buffer, from = 0, to = buf.length): void {
    const m = this.messages.reset(buf, from, to);
    try {
      while (m.next()) {
        const et = eventType(m.type, m.flags);
        // Expectation events and the like are not ours.
        if (et !== undefined) this.onEvent(et, buf, m.start, m.end);
      }
    } catch (err) {
      // Broken framing: the rest of the datagram cannot be trusted.
      this.decodeFailed(err, buf.subarray(from, to));
    }
  }

  /** One conntrack event message, buf[start, end): into the table, or counted as undecodable. */
  private onEvent(et: EventType, buf: Buffer, start: number, end: number): void {
    try {
      summarizeFlow(buf, start, end, this.summary);
      if (et === 'new') this.counters.eventsNew++;
      else if (et === 'update') this.counters.eventsUpdate++;
      else this.counters.eventsDestroy++;
      this.table.apply(et, this.summary);
    } catch (err) {
      this.decodeFailed(err, buf.subarray(start, end));
    }
  }

  /** The event socket was reopened: flows created while it was closed send no events either. */
  onResubscribed(): void {
    this.nextDumpSilent = true;
    this.onOverrun();
  }

  /** The kernel dropped `lost` events (0 when it only said so, without a count). */
  onOverrun(lost = 0): void {
    this.counters.overruns++;
    this.counters.eventsLost += lost;
    if (this.table.syncing) this.lostDuringSync = true;
    void this.resync('overrun');
  }

  /**
   * Re-dumps and reconciles. One resync at a time; requests that arrive meanwhile collapse into
   * one follow-up, started `followUpDelayMs` later, so an event flood that keeps overrunning the
   * socket costs one dump per interval, not one per overrun; the last one, after the flood, is
   * exact.
   */
  resync(reason: ResyncReason): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running) {
      this.pending ??= reason;
      return this.running;
    }
    const run = this.runResync(reason).finally(() => {
      this.running = undefined;
      const next = this.pending;
      this.pending = undefined;
      if (next && !this.stopped) {
        if (this.followUpDelayMs > 0) setTimeout(() => void this.resync(next), this.followUpDelayMs).unref();
        else void this.resync(next);
      }
    });
    this.running = run;
    return run;
  }

  private async runResync(reason: ResyncReason): Promise<void> {
    const started = this.clock();
    const cpuStarted = this.cpuClock();
    this.lostDuringSync = false;
    const silent = this.nextDumpSilent;
    this.nextDumpSilent = false;
    this.table.beginSync(silent);
    const summary = this.summary;
    try {
      const res = await this.dumper.dumpTable({
        begin: (attempt) => {
          if (attempt > 1) this.table.restartSync();
        },
        entry: (buf, start, end) => {
          try {
            summarizeFlow(buf, start, end, summary);
          } catch (err) {
            this.decodeFailed(err, buf.subarray(start, end));
            return;
          }
          this.table.stage(summary);
        },
      });
      const merged = this.table.commitSync();
      this.drift.resynced();
      this.counters.resyncs[reason]++;
      this.counters.lastResync = this.clock();
      this.counters.lastDumpSeconds = this.counters.lastResync - started;
      this.counters.lastDumpCpuSeconds = this.cpuClock() - cpuStarted;
      this.ready = true;
      this.log.info(
        {
          reason,
          flows: res.flows,
          attempts: res.attempts,
          ...merged,
          seconds: this.counters.lastDumpSeconds,
          cpuSeconds: this.counters.lastDumpCpuSeconds,
        },
        'conntrack table synchronised',
      );
      // Events lost while the dump ran may hide changes the dump had already passed over.
      if (this.lostDuringSync) this.pending ??= 'overrun';
      this.followSilentFlows(reason);
    } catch (err) {
      if (silent) this.nextDumpSilent = true;
      this.table.abortSync();
      this.counters.resyncFailures[reason]++;
      this.log.error({ reason, err }, 'conntrack table dump failed');
      if (reason === 'startup') throw err;
      this.followSilentFlows(reason);
    }
  }

  /**
   * While silent flows remain, re-dump to follow them, at an interval derived from the CPU the
   * last dump took (sync/silent-schedule.ts).
   */
  private followSilentFlows(reason: ResyncReason): void {
    const n = this.table.silentFlows;
    const every = silentInterval(this.counters.lastDumpCpuSeconds, this.silentSchedule);
    if (reason !== 'silent' && n > 0) {
      this.log.info(
        { flows: n, everySeconds: every },
        'the kernel sends no events for these flows (created while no one listened, nf_conntrack_events=2); re-dumping until they are gone',
      );
    }
    if (n === 0 || this.stopped || this.silentTimer || every === undefined) return;
    this.silentTimer = setTimeout(() => {
      this.silentTimer = undefined;
      void this.resync('silent');
    }, every * 1000);
    this.silentTimer.unref();
  }

  /**
   * The kernel's entry count, read at a scrape or by the drift timer: a difference from the table
   * that events cannot explain triggers a rate-limited resync (sync/drift.ts).
   */
  observeKernelCount(entries: number): void {
    // While a dump runs the table is half old, half new: any difference means nothing yet.
    if (!this.ready || this.stopped || this.running) return;
    const d = this.drift.observe({ kernel: entries, table: this.table.size, events: this.counters.events });
    if (d.action === 'confirm') {
      if (this.confirmTimer || !this.kernelCount) return;
      this.confirmTimer = setTimeout(() => {
        this.confirmTimer = undefined;
        void this.checkDrift();
      }, d.afterSeconds * 1000);
      this.confirmTimer.unref();
    } else if (d.action === 'resync') {
      this.log.warn(
        { difference: d.difference, kernel: entries, nextAfterSeconds: d.gapSeconds },
        'shadow table differs from the kernel entry count beyond what events in flight explain; resynchronising',
      );
      void this.resync('drift');
    } else if (d.action === 'wait') {
      this.log.debug(
        { difference: d.difference, afterSeconds: d.afterSeconds },
        'drift persists; backing off',
      );
    }
  }

  private async checkDrift(): Promise<void> {
    if (!this.kernelCount || !this.ready || this.stopped || this.running) return;
    let entries: number;
    try {
      entries = await this.kernelCount();
    } catch (err) {
      this.counters.driftReadErrors++;
      const now = this.clock();
      if (now - this.lastDriftReadLog >= 60) {
        this.lastDriftReadLog = now;
        this.log.warn({ err, total: this.counters.driftReadErrors }, 'could not read the kernel entry count');
      }
      return;
    }
    this.observeKernelCount(entries);
  }

  /** Counted and skipped, never rethrown: one bad message must not stop the daemon. */
  private decodeFailed(err: unknown, buf?: Buffer): void {
    this.counters.decodeErrors++;
    if (!(err instanceof ConntrackError)) {
      this.log.error(
        { err, bytes: buf?.toString('hex') },
        'internal error while applying a ctnetlink message',
      );
      return;
    }
    // One log line per 10 s at most: a stream of bad messages must not become a stream of logs.
    const now = this.clock();
    if (now - this.lastDecodeLog >= 10) {
      this.lastDecodeLog = now;
      this.log.warn(
        {
          code: err.code,
          offset: err.offset,
          bytes: buf?.toString('hex'),
          total: this.counters.decodeErrors,
        },
        `skipped a malformed ctnetlink message: ${err.message}`,
      );
    }
  }
}
