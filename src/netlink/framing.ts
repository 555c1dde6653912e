/**
 * Framing, once for every socket: a batch from the addon holds datagrams, a datagram holds netlink
 * messages. Two cursors walk them without allocating (no closure, no object per datagram or
 * message), for the event path as for request replies. A datagram that arrived truncated (longer
 * than its receive slot: its length is negative in the batch meta) is recognised here and nowhere
 * else: DatagramCursor steps over it and counts it.
 */
import { ConntrackError } from '../errors.js';
import { align4, NLMSG_HDRLEN, readU16h, readU32h } from './nlmsg.js';
import { type Batch, META_FIELDS } from './transport.js';

const EMPTY = Buffer.alloc(0);
const NO_DATAGRAMS: Batch = { buf: EMPTY, meta: new Int32Array(0), count: 0 };

/**
 * The whole datagrams of a batch. next() steps over truncated ones and counts them in
 * `truncated`; a consumer that must not act on what follows a lost datagram (a request reply)
 * checks `truncated` after each next().
 */
export class DatagramCursor {
  /** After next() returned true: the datagram is buf[start, end), from namespace id `nsid` (-1: ours). */
  buf: Buffer = EMPTY;
  start = 0;
  end = 0;
  nsid = -1;
  /** Datagrams stepped over since reset() because they arrived truncated. */
  truncated = 0;
  private batch = NO_DATAGRAMS;
  private i = 0;
  private lastTruncatedLength = 0;

  reset(batch: Batch): this {
    this.batch = batch;
    this.buf = batch.buf;
    this.i = 0;
    this.truncated = 0;
    return this;
  }

  next(): boolean {
    const { meta, count } = this.batch;
    while (this.i < count) {
      const at = this.i++ * META_FIELDS;
      const len = meta[at + 1]!;
      if (len < 0) {
        this.truncated++;
        this.lastTruncatedLength = -len;
        continue;
      }
      this.start = meta[at]!;
      this.end = this.start + len;
      this.nsid = meta[at + 2]!;
      return true;
    }
    return false;
  }

  /** The error for the truncated datagrams (`what`: event, reply, ...); call when `truncated` > 0. */
  truncation(what: string): ConntrackError {
    return new ConntrackError(
      'CT_ERR_TRUNCATED',
      `${this.truncated} ${what} datagram(s) truncated, the last of ${this.lastTruncatedLength} bytes`,
    );
  }
}

/**
 * The messages of one datagram, buf[from, to). After each next() that returned true, the message
 * is buf[start, end), its length checked; its header fields are read from it on demand. A message
 * that overruns the datagram, or trailing bytes too few for a header, throw CT_ERR_TRUNCATED with
 * the offset relative to `from`; the messages before it have been seen.
 */
export class MessageCursor {
  buf: Buffer = EMPTY;
  /** The whole message, header included: buf[start, end). */
  start = 0;
  end = 0;
  private from = 0;
  private off = 0;
  private to = 0;

  // Header fields are getters, not fields next() fills: the event path reads two of them, and a
  // sequence number stored in a field (the request socket's start at random, up to 2^31) would
  // make the field a heap number in every cursor, the event path's included.
  get type(): number {
    return readU16h(this.buf, this.start + 4);
  }

  get flags(): number {
    return readU16h(this.buf, this.start + 6);
  }

  get seq(): number {
    return readU32h(this.buf, this.start + 8);
  }

  reset(buf: Buffer, from = 0, to = buf.length): this {
    this.buf = buf;
    this.from = from;
    this.off = from;
    this.to = to;
    return this;
  }

  next(): boolean {
    const off = this.off;
    const to = this.to;
    if (off >= to) return false;
    const len = to - off >= NLMSG_HDRLEN ? readU32h(this.buf, off) : 0;
    if (len < NLMSG_HDRLEN || off + len > to) throw this.overrun(off, len);
    this.start = off;
    this.end = off + len;
    // The last message may be unpadded; overshooting `to` just ends the walk.
    this.off = off + align4(len);
    return true;
  }

  private overrun(off: number, len: number): ConntrackError {
    const left = this.to - off;
    return new ConntrackError(
      'CT_ERR_TRUNCATED',
      left < NLMSG_HDRLEN
        ? `${left} trailing bytes after the last netlink message`
        : `netlink message at offset ${off - this.from} declares length ${len}, datagram has ${left} bytes left`,
      { offset: off - this.from },
    );
  }
}

/**
 * Calls `fn` for each whole datagram of a batch (a closure per batch, a call per datagram);
 * returns how many were truncated.
 */
export function forEachDatagram(
  batch: Batch,
  fn: (buf: Buffer, start: number, end: number, nsid: number) => void,
): number {
  const d = new DatagramCursor().reset(batch);
  while (d.next()) fn(d.buf, d.start, d.end, d.nsid);
  return d.truncated;
}
