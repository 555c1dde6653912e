/**
 * The event path: datagrams from the event socket -> netlink messages -> the lean decoder
 * (ctnetlink/summary.ts) -> ShadowTable.apply, counted by type. Dump entries take the same decoder
 * into ShadowTable.stage. A malformed message is counted and skipped, never thrown, and logged at
 * most once per 10 s. Allocates nothing per message: one FlowSummary is reused throughout.
 */
import { type EventType, eventType } from '../ctnetlink/event.js';
import { FlowSummary, summarizeFlow } from '../ctnetlink/summary.js';
import { ConntrackError } from '../errors.js';
import { NLMSG_HDRLEN, readU16h, readU32h } from '../netlink/nlmsg.js';
import { type Batch, META_FIELDS } from '../netlink/socket.js';
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
      if (et !== undefined) this.onEvent(et, buf, off, off + len);
      off += (len + 3) & ~3;
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
  private decodeFailed(err: unknown, buf: Buffer): void {
    this.counters.decodeErrors++;
    if (!(err instanceof ConntrackError)) {
      this.log.error(
        { err, bytes: buf.toString('hex') },
        'internal error while applying a ctnetlink message',
      );
      return;
    }
    const now = this.now();
    if (now - this.lastDecodeLog < DECODE_LOG_EVERY_MS) return;
    this.lastDecodeLog = now;
    this.log.warn(
      { code: err.code, offset: err.offset, bytes: buf.toString('hex'), total: this.counters.decodeErrors },
      `skipped a malformed ctnetlink message: ${err.message}`,
    );
  }
}
