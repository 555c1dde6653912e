/**
 * Keeps the shadow table equal to the kernel's: event datagrams are decoded and applied as they
 * arrive; a full dump seeds the table at start-up and repairs it after lost events (overrun) or,
 * optionally, on a timer. The event socket must be open before the first dump so nothing falls
 * between the two.
 */
import type { DumpResult, DumpSink } from './ctnetlink/client.js';
import { eventType } from './ctnetlink/event.js';
import { FlowSummary, summarizeFlow } from './ctnetlink/summary.js';
import { ConntrackError } from './errors.js';
import { NLMSG_HDRLEN, readU16h, readU32h } from './netlink/nlmsg.js';
import { type Batch, META_FIELDS } from './netlink/socket.js';
import { type Clock, type ShadowTable, wallClock } from './table/table.js';

export type ResyncReason = 'startup' | 'overrun' | 'periodic' | 'preexisting';
export const RESYNC_REASONS: readonly ResyncReason[] = ['startup', 'overrun', 'periodic', 'preexisting'];

export interface Dumper {
  dumpTable(sink: DumpSink): Promise<DumpResult>;
}

export interface Log {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Plain numbers on the event path; the metrics layer mirrors them at scrape time. */
export class CollectorCounters {
  eventsNew = 0;
  eventsUpdate = 0;
  eventsDestroy = 0;
  decodeErrors = 0;
  overruns = 0;
  /** Event messages the kernel dropped for us (the socket's drop counter). */
  eventsLost = 0;
  resyncs: Record<ResyncReason, number> = { startup: 0, overrun: 0, periodic: 0, preexisting: 0 };
  resyncFailures = 0;
  /** Seconds since the epoch of the last completed resync; 0 before the first. */
  lastResync = 0;
}

export class Collector {
  readonly counters = new CollectorCounters();
  private running: Promise<void> | undefined;
  private pending: ResyncReason | undefined;
  private lostDuringSync = false;
  private timer: NodeJS.Timeout | undefined;
  private silentTimer: NodeJS.Timeout | undefined;
  /** The next dump's new flows may predate our subscription (start-up, socket reopened). */
  private nextDumpSilent = true;
  private stopped = false;
  private lastDecodeLog = 0;
  /** Reused for every message: the hot path allocates nothing per event. */
  private readonly summary = new FlowSummary();
  /** True once the first dump has been merged: the table then mirrors the kernel. */
  ready = false;

  constructor(
    private readonly table: ShadowTable,
    private readonly dumper: Dumper,
    private readonly log: Log,
    private readonly clock: Clock = wallClock,
    private readonly followUpDelayMs = 1000,
    /** How often to re-dump while flows that send no events (see silentFlows) remain. */
    private readonly preexistingResyncMs = 60_000,
  ) {}

  /** Seeds the table; resolves when it is ready. */
  start(resyncIntervalMs = 0): Promise<void> {
    if (resyncIntervalMs > 0) {
      this.timer = setInterval(() => void this.resync('periodic'), resyncIntervalMs);
      this.timer.unref();
    }
    return this.resync('startup');
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.silentTimer) clearTimeout(this.silentTimer);
  }

  /** The hot path: a batch of event datagrams from the event socket. */
  onBatch(batch: Batch): void {
    const { buf, meta } = batch;
    for (let i = 0; i < batch.count; i++) {
      const at = i * META_FIELDS;
      const len = meta[at + 1]!;
      if (len < 0) {
        this.decodeFailed(
          new ConntrackError('CT_ERR_TRUNCATED', `event datagram of ${-len} bytes truncated`),
          buf.subarray(meta[at]!, meta[at]! + 64),
        );
        continue;
      }
      this.onDatagram(buf, meta[at]!, meta[at]! + len);
    }
  }

  /** One event datagram, buf[from, to); usually one message. */
  onDatagram(buf: Buffer, from = 0, to = buf.length): void {
    let off = from;
    while (off < to) {
      const len = to - off >= NLMSG_HDRLEN ? readU32h(buf, off) : 0;
      if (len < NLMSG_HDRLEN || off + len > to) {
        this.decodeFailed(
          new ConntrackError(
            'CT_ERR_TRUNCATED',
            `netlink message at offset ${off - from} declares length ${len}`,
            {
              offset: off - from,
            },
          ),
          buf.subarray(from, to),
        );
        return;
      }
      const et = eventType(readU16h(buf, off + 4), readU16h(buf, off + 6));
      // Expectation events and the like are not ours.
      if (et !== undefined) {
        try {
          summarizeFlow(buf, off, off + len, this.summary);
          if (et === 'new') this.counters.eventsNew++;
          else if (et === 'update') this.counters.eventsUpdate++;
          else this.counters.eventsDestroy++;
          this.table.apply(et, this.summary);
        } catch (err) {
          this.decodeFailed(err, buf.subarray(off, off + len));
        }
      }
      off += (len + 3) & ~3;
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
      this.counters.resyncs[reason]++;
      this.counters.lastResync = this.clock();
      this.ready = true;
      this.log.info(
        { reason, flows: res.flows, attempts: res.attempts, ...merged, seconds: this.clock() - started },
        'conntrack table synchronised',
      );
      // Events lost while the dump ran may hide changes the dump had already passed over.
      if (this.lostDuringSync) this.pending ??= 'overrun';
      this.followSilentFlows(reason);
    } catch (err) {
      if (silent) this.nextDumpSilent = true;
      this.table.abortSync();
      this.counters.resyncFailures++;
      this.log.error({ reason, err }, 'conntrack table dump failed');
      if (reason === 'startup') throw err;
      this.followSilentFlows(reason);
    }
  }

  /** While flows without events remain, re-dump every preexistingResyncMs to follow them. */
  private followSilentFlows(reason: ResyncReason): void {
    const n = this.table.silentFlows;
    if (reason !== 'preexisting' && n > 0) {
      this.log.info(
        { flows: n, everySeconds: this.preexistingResyncMs / 1000 },
        'flows that predate the event subscription send no events (nf_conntrack_events=2); re-dumping until they are gone',
      );
    }
    if (n === 0 || this.stopped || this.silentTimer || this.preexistingResyncMs <= 0) return;
    this.silentTimer = setTimeout(() => {
      this.silentTimer = undefined;
      void this.resync('preexisting');
    }, this.preexistingResyncMs);
    this.silentTimer.unref();
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
