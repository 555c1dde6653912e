/**
 * The kernel's side of a netlink socket, replayed (as mdlayher/netlink's nltest does for Go): a
 * Transport that records what is sent and answers with kernel-framed replies, so request/reply
 * matching, multipart dumps, DONE with an errno, truncation and socket errors are tested without
 * root. Every socket test uses it; batchOf lays datagrams out as the addon does.
 */
import type { ConntrackError } from '../../src/errors.js';
import {
  encodeMessage,
  NLM_F_MULTI,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  readU16h,
  readU32h,
  writeU32h,
} from '../../src/netlink/nlmsg.js';
import { type Batch, META_FIELDS, type Transport } from '../../src/netlink/transport.js';

/** One message as the socket sent it. */
export interface SentMessage {
  type: number;
  flags: number;
  seq: number;
  /** The whole message, header included. */
  bytes: Buffer;
}

/** What the kernel sends back: datagrams, each a list of messages. */
export type Datagrams = readonly (readonly Buffer[])[];

export interface DeliverOptions {
  /** Index of a datagram that arrives truncated (longer than its receive slot). */
  truncated?: number;
  /** Namespace ids the datagrams come from (NETLINK_LISTEN_ALL_NSID); -1, the default: ours. */
  nsids?: readonly number[];
  /** Messages the kernel reports dropped with this batch. */
  lost?: number;
}

export class FakeTransport implements Transport {
  readonly sent: SentMessage[] = [];
  /** Every ref() call: whether the socket kept the process alive. */
  readonly refs: boolean[] = [];
  closed = false;
  /** Thrown by send() while set, as the addon throws when sendto fails. */
  sendError: Error | undefined;
  private onBatch: ((batch: Batch, lost: number) => void) | undefined;
  private onError: ((err: ConntrackError) => void) | undefined;

  /**
   * `respond` answers each sent message as the kernel would, in a microtask (after send()
   * returns, as a real reply arrives later); without it, or when it returns undefined, nothing
   * is answered and the test delivers by hand.
   */
  constructor(private readonly respond?: (request: SentMessage) => Datagrams | undefined) {}

  send(message: Buffer): void {
    if (this.sendError) throw this.sendError;
    const request: SentMessage = {
      type: readU16h(message, 4),
      flags: readU16h(message, 6),
      seq: readU32h(message, 8),
      bytes: Buffer.from(message),
    };
    this.sent.push(request);
    const reply = this.respond?.(request);
    if (reply) queueMicrotask(() => this.deliver(reply));
  }

  start(onBatch: (batch: Batch, lost: number) => void, onError: (err: ConntrackError) => void): void {
    this.onBatch = onBatch;
    this.onError = onError;
  }

  ref(on: boolean): void {
    this.refs.push(on);
  }

  close(): void {
    this.closed = true;
  }

  /** The sequence number of the last message sent. */
  get lastSeq(): number {
    const last = this.sent.at(-1);
    if (!last) throw new Error('nothing was sent');
    return last.seq;
  }

  /** Delivers datagrams as one batch. */
  deliver(datagrams: Datagrams, opts: DeliverOptions = {}): void {
    this.onBatch?.(
      batchOf(
        datagrams.map((msgs) => Buffer.concat(msgs)),
        opts,
      ),
      opts.lost ?? 0,
    );
  }

  /** The socket fails (a receive error). */
  fail(err: ConntrackError): void {
    this.onError?.(err);
  }
}

/** Datagrams as one batch, each in its own 4 KiB slot as the addon receives them. */
export function batchOf(datagrams: readonly Buffer[], opts: DeliverOptions = {}): Batch {
  const slot = 4096;
  const buf = Buffer.alloc(slot * datagrams.length);
  const meta = new Int32Array(datagrams.length * META_FIELDS);
  datagrams.forEach((d, i) => {
    d.copy(buf, i * slot);
    meta[i * META_FIELDS] = i * slot;
    meta[i * META_FIELDS + 1] = i === opts.truncated ? -d.length : d.length;
    meta[i * META_FIELDS + 2] = opts.nsids?.[i] ?? -1;
  });
  return { buf, meta, count: datagrams.length };
}

/** NLMSG_ERROR for `seq`: an acknowledgement (errno 0) or the kernel's error. */
export function ack(seq: number, errno = 0): Buffer {
  const p = Buffer.alloc(4 + NLMSG_HDRLEN);
  writeU32h(p, -errno >>> 0, 0);
  return encodeMessage(NLMSG_ERROR, 0, seq, p);
}

/** NLMSG_DONE ending a dump for `seq`, with the errno of a dump that failed part-way. */
export function done(seq: number, errno = 0): Buffer {
  const p = Buffer.alloc(4);
  writeU32h(p, -errno >>> 0, 0);
  return encodeMessage(NLMSG_DONE, NLM_F_MULTI, seq, p);
}
