/**
 * Requests and their replies: dumps and statistics, one request in flight at a time, reply
 * messages streamed to the caller as they arrive so that a dump of a million flows is never held
 * whole in memory. It talks to a Transport, which unit tests replace with a fake that replays
 * kernel replies.
 */
import { ConntrackError } from '../errors.js';
import { DatagramCursor, MessageCursor } from './framing.js';
import {
  encodeMessage,
  NLM_F_ACK,
  NLM_F_DUMP,
  NLM_F_DUMP_INTR,
  NLM_F_REQUEST,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  NLMSG_NOOP,
  readErrorCode,
  readU32h,
} from './nlmsg.js';
import {
  type Batch,
  NETLINK_CAP_ACK,
  NETLINK_NETFILTER,
  NetlinkSocket,
  SOL_NETLINK,
  socketError,
  type Transport,
} from './transport.js';

export interface RequestResult {
  /** The kernel flagged the dump as inconsistent (NLM_F_DUMP_INTR): the table changed under it. */
  interrupted: boolean;
  messages: number;
}

/** One reply message, positional so that a million-entry dump allocates nothing per entry. */
export type ReplyHandler = (buf: Buffer, type: number, flags: number, start: number, end: number) => void;

/** What clients (ctnetlink statistics and dumps, namespace ids) need of a request socket. */
export interface Requester {
  request(type: number, flags: number, payload: Buffer, onMessage: ReplyHandler): Promise<RequestResult>;
  close(): void;
}

/**
 * Told when the socket itself failed (a receive or send error), not a request (a kernel error,
 * a time-out): the socket may be unusable and is to be reopened (sync/resubscribe.ts).
 */
export type BrokenHandler = (err: ConntrackError) => void;

interface Pending {
  seq: number;
  onMessage: ReplyHandler;
  resolve: (r: RequestResult) => void;
  reject: (e: ConntrackError) => void;
  timer: NodeJS.Timeout;
  interrupted: boolean;
  messages: number;
}

/**
 * Dump datagrams are up to 32 KiB (the kernel sizes them to the reader's buffer, capped there);
 * four chunks of 16 let the reader thread run up to three chunks (about 5,000 flows) ahead.
 */
const REQUEST_SLOTS = 16;
const REQUEST_SLOT_SIZE = 32768;
const REQUEST_CHUNKS = 4;

export class RequestSocket implements Requester {
  private seq = Math.floor(Math.random() * 0x7fffffff);
  private pending: Pending | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  private readonly datagrams = new DatagramCursor();
  private readonly messages = new MessageCursor();

  constructor(
    private readonly transport: Transport,
    private readonly timeoutMs = 5000,
    private readonly onBroken?: BrokenHandler,
  ) {
    // Keeps the process alive only while a request is in flight.
    transport.ref(false);
    transport.start(
      (batch) => this.receive(batch),
      (err) => this.broken(err),
    );
  }

  /**
   * `netns`, `slots` and `chunks` as in OpenOptions (netns: a namespace's file descriptor): a
   * socket that only asks for statistics (a few small datagrams) does with fewer slots and no
   * reader thread (chunks 0).
   */
  static open(
    timeoutMs = 5000,
    netns?: number,
    slots = REQUEST_SLOTS,
    chunks = REQUEST_CHUNKS,
    onBroken?: BrokenHandler,
  ): RequestSocket {
    const sock = NetlinkSocket.open(
      NETLINK_NETFILTER,
      { slots, slotSize: REQUEST_SLOT_SIZE, netns, chunks },
      'opening the ctnetlink request socket',
    );
    try {
      sock.setInt(SOL_NETLINK, NETLINK_CAP_ACK, 1);
      return new RequestSocket(sock, timeoutMs, onBroken);
    } catch (err) {
      sock.close();
      throw err;
    }
  }

  /**
   * Sends one request and streams each reply message to `onMessage` until the reply is complete:
   * NLMSG_DONE for dumps, the ACK otherwise. Non-dump requests always ask for an ACK because the
   * kernel marks even single replies NLM_F_MULTI (CT_GET_STATS does) without a DONE after them,
   * so the ACK is the only reliable end. NLMSG_ERROR rejects.
   */
  request(type: number, flags: number, payload: Buffer, onMessage: ReplyHandler): Promise<RequestResult> {
    const run = () => this.send(type, flags, payload, onMessage);
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.fail(new ConntrackError('CT_ERR_SOCKET', 'request socket closed'));
    this.transport.close();
  }

  private send(
    type: number,
    flags: number,
    payload: Buffer,
    onMessage: ReplyHandler,
  ): Promise<RequestResult> {
    if (this.closed) return Promise.reject(new ConntrackError('CT_ERR_SOCKET', 'request socket closed'));
    this.seq = (this.seq + 1) >>> 0;
    const seq = this.seq;
    return new Promise<RequestResult>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          this.fail(
            new ConntrackError(
              'CT_ERR_TIMEOUT',
              `no reply to request 0x${type.toString(16)} in ${this.timeoutMs} ms`,
            ),
          ),
        this.timeoutMs,
      );
      this.pending = { seq, onMessage, resolve, reject, timer, interrupted: false, messages: 0 };
      this.transport.ref(true);
      const dump = (flags & NLM_F_DUMP) === NLM_F_DUMP;
      try {
        this.transport.send(
          encodeMessage(type, flags | NLM_F_REQUEST | (dump ? 0 : NLM_F_ACK), seq, payload),
        );
      } catch (err) {
        this.broken(err instanceof ConntrackError ? err : socketError(err, 'sending a ctnetlink request'));
      }
    });
  }

  private receive(batch: Batch): void {
    const d = this.datagrams.reset(batch);
    // A reply with a datagram lost must not complete from the datagrams after it.
    while (this.pending && d.next() && d.truncated === 0) this.receiveDatagram(d.buf, d.start, d.end);
    if (d.truncated > 0) this.fail(d.truncation('reply'));
  }

  private receiveDatagram(buf: Buffer, from: number, to: number): void {
    const p = this.pending;
    if (!p) return; // a late reply to a request that already timed out
    const m = this.messages.reset(buf, from, to);
    try {
      while (this.pending === p && m.next()) {
        if (m.seq !== p.seq) continue;
        // The deadline is for silence, not for the whole reply: a big dump keeps it alive.
        p.timer.refresh();
        if (m.flags & NLM_F_DUMP_INTR) p.interrupted = true;
        switch (m.type) {
          case NLMSG_ERROR:
            this.acked(p, buf, m.start, m.end, from);
            break;
          case NLMSG_DONE:
            this.dumpDone(p, buf, m.start, m.end);
            break;
          case NLMSG_NOOP:
            break;
          default:
            p.messages++;
            p.onMessage(buf, m.type, m.flags, m.start, m.end);
        }
      }
    } catch (err) {
      this.fail(
        err instanceof ConntrackError
          ? err
          : new ConntrackError('CT_ERR_SOCKET', 'reply handler failed', { cause: err }),
      );
    }
  }

  /** NLMSG_ERROR: errno 0 is the ACK that ends a request, anything else its failure. */
  private acked(p: Pending, buf: Buffer, start: number, end: number, from: number): void {
    const errno = -readErrorCode(buf, start, end);
    if (errno === 0) this.finish(p);
    else
      this.fail(
        new ConntrackError('CT_ERR_KERNEL', `kernel rejected the request: errno ${errno}`, {
          errno,
          offset: start - from,
        }),
      );
  }

  /** NLMSG_DONE: a dump that failed part-way reports a negative errno in its payload. */
  private dumpDone(p: Pending, buf: Buffer, start: number, end: number): void {
    const status = end - start >= NLMSG_HDRLEN + 4 ? readU32h(buf, start + NLMSG_HDRLEN) | 0 : 0;
    if (status < 0) {
      this.fail(new ConntrackError('CT_ERR_KERNEL', `dump ended with errno ${-status}`, { errno: -status }));
    } else this.finish(p);
  }

  private finish(p: Pending): void {
    if (this.pending !== p) return;
    this.pending = undefined;
    clearTimeout(p.timer);
    if (!this.closed) this.transport.ref(false);
    p.resolve({ interrupted: p.interrupted, messages: p.messages });
  }

  /** The socket failed: the request in flight with it, and the owner is told (once it is open). */
  private broken(err: ConntrackError): void {
    this.fail(err);
    if (!this.closed) this.onBroken?.(err);
  }

  private fail(err: ConntrackError): void {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    clearTimeout(p.timer);
    if (!this.closed) this.transport.ref(false);
    p.reject(err);
  }
}
