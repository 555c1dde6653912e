/**
 * When to re-dump the kernel's table into the shadow table, and the dump itself: at start-up,
 * after lost events (overrun), when the kernel's entry count and the table disagree beyond what
 * events in flight explain (drift, sync/drift.ts), while the table holds flows the kernel sends
 * no events for (silent, sync/silent-schedule.ts) and, optionally, on a timer. One dump at a
 * time; requests that arrive meanwhile collapse into one follow-up. Time comes from the injected
 * Timers, so its tests advance a fake clock.
 */
import type { DumpResult, DumpSink } from '../ctnetlink/client.js';
import type { Clock, ShadowTable } from '../table/table.js';
import type { EventApplier, Log } from './applier.js';
import type { CollectorCounters, ResyncReason } from './counters.js';
import { DEFAULT_DRIFT_OPTIONS, DriftGuard, type DriftOptions } from './drift.js';
import { DEFAULT_SILENT_SCHEDULE, type SilentScheduleOptions, silentInterval } from './silent-schedule.js';
import type { TimerHandle, Timers } from './timers.js';

export interface Dumper {
  dumpTable(sink: DumpSink): Promise<DumpResult>;
}

export interface SchedulerOptions {
  /** CPU seconds this process has used, all threads (the silent budget is in CPU). */
  readonly cpuClock: Clock;
  /** Delay before a resync requested while another ran (collapses bursts of requests). */
  readonly followUpDelayMs: number;
  /** When to re-dump while silent flows remain; `minSeconds: 0` turns it off. */
  readonly silentSchedule: SilentScheduleOptions;
  /** Reads the kernel's entry count (CT_GET_STATS) for the drift check between scrapes. */
  readonly kernelCount: (() => Promise<number>) | undefined;
  /** How often the drift timer reads kernelCount (ms); 0 = only at scrapes. */
  readonly driftCheckMs: number;
  readonly drift: DriftOptions;
}

/** CPU seconds of the whole process, user and system, every thread (the dump's reader too). */
const processCpu: Clock = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** Every 5 s: a flush of silent flows shows within one 15 s scrape interval, idle cost ~0. */
const DEFAULT_DRIFT_CHECK_MS = 5000;

export const DEFAULT_SCHEDULER_OPTIONS: SchedulerOptions = Object.freeze({
  cpuClock: processCpu,
  followUpDelayMs: 1000,
  silentSchedule: DEFAULT_SILENT_SCHEDULE,
  kernelCount: undefined,
  driftCheckMs: DEFAULT_DRIFT_CHECK_MS,
  drift: DEFAULT_DRIFT_OPTIONS,
});

/** Drift reads that fail are logged at most once a minute. */
const DRIFT_READ_LOG_EVERY_MS = 60_000;

/** What the scheduler works on and with. */
export interface SchedulerDeps {
  readonly table: ShadowTable;
  readonly dumper: Dumper;
  /** Decodes the dump's entries into the table, as it does events. */
  readonly applier: EventApplier;
  readonly counters: CollectorCounters;
  readonly log: Log;
  readonly timers: Timers;
}

export class ResyncScheduler {
  private readonly table: ShadowTable;
  private readonly dumper: Dumper;
  private readonly applier: EventApplier;
  private readonly counters: CollectorCounters;
  private readonly log: Log;
  private readonly timers: Timers;
  /** Seconds since the epoch. */
  private readonly clock: Clock;
  private readonly drift: DriftGuard;
  private running: Promise<void> | undefined;
  private pending: ResyncReason | undefined;
  private lostDuringSync = false;
  private periodicTimer: TimerHandle | undefined;
  private driftTimer: TimerHandle | undefined;
  private silentTimer: TimerHandle | undefined;
  private confirmTimer: TimerHandle | undefined;
  private followUpTimer: TimerHandle | undefined;
  /** The next dump's new flows may be silent (start-up, socket reopened). */
  private nextDumpSilent = true;
  private stopped = false;
  private lastDriftReadLog = Number.NEGATIVE_INFINITY;
  private seeded = false;

  constructor(
    deps: SchedulerDeps,
    private readonly options: SchedulerOptions = DEFAULT_SCHEDULER_OPTIONS,
  ) {
    this.table = deps.table;
    this.dumper = deps.dumper;
    this.applier = deps.applier;
    this.counters = deps.counters;
    this.log = deps.log;
    this.timers = deps.timers;
    this.clock = () => this.timers.now() / 1000;
    this.drift = new DriftGuard(options.drift, this.clock);
  }

  /** True once the first dump has been merged: the table then mirrors the kernel. */
  get ready(): boolean {
    return this.seeded;
  }

  /** Seeds the table; resolves when it is ready. */
  start(resyncIntervalMs = 0): Promise<void> {
    const { kernelCount, driftCheckMs } = this.options;
    if (resyncIntervalMs > 0) {
      this.periodicTimer = this.timers.setInterval(() => void this.resync('periodic'), resyncIntervalMs);
    }
    if (kernelCount && driftCheckMs > 0) {
      this.driftTimer = this.timers.setInterval(() => void this.checkDrift(), driftCheckMs);
    }
    return this.resync('startup');
  }

  stop(): void {
    this.stopped = true;
    for (const t of [this.periodicTimer, this.driftTimer]) if (t) this.timers.clearInterval(t);
    for (const t of [this.silentTimer, this.confirmTimer, this.followUpTimer])
      if (t) this.timers.clearTimeout(t);
  }

  /** The event socket was reopened: flows created while it was closed send no events either. */
  onResubscribed(): void {
    this.nextDumpSilent = true;
    this.onOverrun();
  }

  /**
   * The kernel dropped events for the socket: the table cannot be trusted until a dump. How many
   * were lost is the socket's to count (one socket may serve several namespaces).
   */
  onOverrun(): void {
    this.counters.overruns++;
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
      if (next && !this.stopped) this.followUp(next);
    });
    this.running = run;
    return run;
  }

  /**
   * The kernel's entry count, read at a scrape or by the drift timer: a difference from the table
   * that events cannot explain triggers a rate-limited resync (sync/drift.ts).
   */
  observeKernelCount(entries: number): void {
    // While a dump runs the table is half old, half new: any difference means nothing yet.
    if (!this.seeded || this.stopped || this.running) return;
    const d = this.drift.observe({ kernel: entries, table: this.table.size, events: this.counters.events });
    if (d.action === 'confirm') {
      if (this.confirmTimer || !this.options.kernelCount) return;
      this.confirmTimer = this.timers.setTimeout(() => {
        this.confirmTimer = undefined;
        void this.checkDrift();
      }, d.afterSeconds * 1000);
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

  private followUp(reason: ResyncReason): void {
    const delay = this.options.followUpDelayMs;
    if (delay <= 0) {
      void this.resync(reason);
      return;
    }
    this.followUpTimer = this.timers.setTimeout(() => {
      this.followUpTimer = undefined;
      void this.resync(reason);
    }, delay);
  }

  private async runResync(reason: ResyncReason): Promise<void> {
    const { cpuClock } = this.options;
    const started = this.clock();
    const cpuStarted = cpuClock();
    this.lostDuringSync = false;
    const silent = this.nextDumpSilent;
    this.nextDumpSilent = false;
    this.table.beginSync(silent);
    try {
      const res = await this.dumper.dumpTable({
        begin: (attempt) => {
          if (attempt > 1) this.table.restartSync();
        },
        entry: (buf, start, end) => this.applier.stage(buf, start, end),
      });
      const merged = this.table.commitSync();
      this.drift.resynced();
      this.counters.resyncs[reason]++;
      this.counters.lastResync = this.clock();
      this.counters.lastDumpSeconds = this.counters.lastResync - started;
      this.counters.lastDumpCpuSeconds = cpuClock() - cpuStarted;
      this.seeded = true;
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
    const every = silentInterval(this.counters.lastDumpCpuSeconds, this.options.silentSchedule);
    if (reason !== 'silent' && n > 0) {
      this.log.info(
        { flows: n, everySeconds: every },
        'the kernel sends no events for these flows (created while no one listened, nf_conntrack_events=2); re-dumping until they are gone',
      );
    }
    if (n === 0 || this.stopped || this.silentTimer || every === undefined) return;
    this.silentTimer = this.timers.setTimeout(() => {
      this.silentTimer = undefined;
      void this.resync('silent');
    }, every * 1000);
  }

  private async checkDrift(): Promise<void> {
    const { kernelCount } = this.options;
    if (!kernelCount || !this.seeded || this.stopped || this.running) return;
    let entries: number;
    try {
      entries = await kernelCount();
    } catch (err) {
      this.counters.driftReadErrors++;
      const now = this.timers.now();
      if (now - this.lastDriftReadLog >= DRIFT_READ_LOG_EVERY_MS) {
        this.lastDriftReadLog = now;
        this.log.warn({ err, total: this.counters.driftReadErrors }, 'could not read the kernel entry count');
      }
      return;
    }
    this.observeKernelCount(entries);
  }
}
