/**
 * The event path: datagrams from the event socket -> netlink messages -> the lean decoder
 * (ctnetlink/summary.ts) -> ShadowTable.apply, counted by type. Dump entries take the same decoder
 * into ShadowTable.stage. A malformed message is counted and skipped, never thrown, and logged at
 * most once per 10 s. Allocates nothing per message: one FlowSummary is reused throughout.
 */
import { type EventType, eventType } from '../ctnetlink/event.js';
import { FlowSummary, summarizeFlow } from '../ctnetlink/summary.js';
import { ConntrackError } from '../errors.js';
import { DatagramCursor, MessageCursor } from '../netlink/framing.js';
import type { Batch } from '../netlink/transport.js';
import type { ShadowTable } from '../table/table.js';
import type { CollectorCounters } from './counters.js';

export interface Log {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** A stream of bad messages must not become a stream of log lines. */
const DECODE_LOG_EVERY_MS = 10_000;

export class EventApplier {
  /** Reused for every message: the hot path allocates nothing per event. */
  private readonly summary = new FlowSummary();
  private readonly datagrams = new DatagramCursor();
  private readonly messages = new MessageCursor();
  private lastDecodeLog = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly table: ShadowTable,
    private readonly counters: CollectorCounters,
    private readonly log: Log,
    /** Milliseconds, for the log's rate limit. */
    private readonly now: () => number,
  ) {}

  /** The batch entry point: every datagram the event socket drained in one wake-up. */
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

  /** One entry of a dump, buf[start, end): staged for the resync's merge, or counted. */
  stage(buf: Buffer, start: number, end: number): void {
    try {
      summarizeFlow(buf, start, end, this.summary);
    } catch (err) {
      this.decodeFailed(err, buf.subarray(start, end));
      return;
    }
    this.table.stage(this.summary);
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
    const now = this.now();
    if (now - this.lastDecodeLog < DECODE_LOG_EVERY_MS) return;
    this.lastDecodeLog = now;
    this.log.warn(
      { code: err.code, offset: err.offset, bytes: buf?.toString('hex'), total: this.counters.decodeErrors },
      `skipped a malformed ctnetlink message: ${err.message}`,
    );
  }
}
