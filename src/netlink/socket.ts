/**
 * Netlink sockets over the project's addon (addon.ts), three layers:
 * - NetlinkSocket: one socket, its options, send, and batched receive: the addon drains many
 *   datagrams per wake-up into one shared buffer and calls back once per batch;
 * - EventSocket: joined to the ctnetlink NEW/UPDATE/DESTROY groups. NETLINK_NO_ENOBUFS is set, so
 *   a full receive queue never fails the socket; the kernel's drop counter for the socket, read by
 *   the addon after every batch, reports each loss (an overrun: the shadow table must resync);
 * - RequestSocket: dumps and statistics, one request in flight at a time, reply messages streamed
 *   to the caller as they arrive so a dump of a million flows is never held whole in memory. It
 *   talks to a Transport, which unit tests replace with a fake that replays kernel replies.
 */
import { constants as os } from 'node:os';
import { ConntrackError } from '../errors.js';
import { addon, type NativeHandle } from './addon.js';
import { NFNLGRP_CONNTRACK_DESTROY, NFNLGRP_CONNTRACK_NEW, NFNLGRP_CONNTRACK_UPDATE } from './nfnetlink.js';
import {
  encodeMessage,
  forEachMessage,
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

const NETLINK_NETFILTER = 12;

const SOL_SOCKET = 1;
const SO_RCVBUF = 8;
const SO_RCVBUFFORCE = 33;
const SOL_NETLINK = 270;
const NETLINK_ADD_MEMBERSHIP = 1;
const NETLINK_NO_ENOBUFS = 5;
const NETLINK_LISTEN_ALL_NSID = 8;
/** Error replies carry only the offending header, not the whole request. */
const NETLINK_CAP_ACK = 10;

/** Meta fields per datagram: offset in `buf`, length (negative: truncated), namespace id or -1. */
export const META_FIELDS = 3;

/**
 * Datagrams received in one wake-up. Datagram i is buf[meta[3i], meta[3i] + meta[3i+1]); its
 * sender's namespace id (NETLINK_LISTEN_ALL_NSID) is meta[3i+2], -1 for our own namespace. Valid
 * only during the callback that receives it: the next batch reuses the memory.
 */
export interface Batch {
  readonly buf: Buffer;
  readonly meta: Int32Array;
  count: number;
}

/** Calls `fn` for each datagram of a batch that arrived whole; returns how many were truncated. */
export function forEachDatagram(
  batch: Batch,
  fn: (buf: Buffer, start: number, end: number, nsid: number) => void,
): number {
  let truncated = 0;
  for (let i = 0; i < batch.count; i++) {
    const at = i * META_FIELDS;
    const start = batch.meta[at]!;
    const len = batch.meta[at + 1]!;
    if (len < 0) truncated++;
    else fn(batch.buf, start, start + len, batch.meta[at + 2]!);
  }
  return truncated;
}

/** Maps an errno failure from the addon to our error, with the permission case spelled out. */
function socketError(err: unknown, what: string): ConntrackError {
  const e = (typeof err === 'object' && err !== null ? err : {}) as { errno?: unknown; message?: unknown };
  const errno = typeof e.errno === 'number' ? Math.abs(e.errno) : undefined;
  const detail = typeof e.message === 'string' ? e.message : String(err);
  const extra = { ...(errno === undefined ? {} : { errno }), cause: err };
  if (errno === os.errno.EPERM || errno === os.errno.EACCES) {
    return new ConntrackError(
      'CT_ERR_PERMISSION',
      `${what}: ${detail}: ctnetlink needs CAP_NET_ADMIN (run as root, grant it with ` +
        '`setcap cap_net_admin+ep $(command -v node)`, or add NET_ADMIN to the container capabilities)',
      extra,
    );
  }
  return new ConntrackError('CT_ERR_SOCKET', `${what}: ${detail}`, extra);
}

export interface OpenOptions {
  /** Datagrams read per recvmmsg call. */
  slots: number;
  /** Room per datagram: a larger datagram arrives truncated (length negative in the meta). */
  slotSize: number;
  /** Open the socket inside this network namespace (a path like /var/run/netns/NAME). */
  netns?: string | undefined;
  /**
   * After draining the socket, wait this long before reading again, so that a stream of events
   * arrives in large batches (a wake-up per pause, not per event). The receive buffer absorbs
   * what arrives meanwhile; 0 reads as soon as anything arrives.
   */
  pauseMs?: number;
  /**
   * Receive on a reader thread into a ring of this many chunks of `slots` datagrams (0: on the
   * event loop). For dumps: the kernel fills the next chunk on another core while JS decodes one.
   */
  chunks?: number;
}

/** What RequestSocket needs of a socket; unit tests fake it. */
export interface Transport {
  send(message: Buffer): void;
  start(onBatch: (batch: Batch, lost: number) => void, onError: (err: ConntrackError) => void): void;
  /** Whether the socket keeps the process alive. */
  ref(on: boolean): void;
  close(): void;
}

export class NetlinkSocket implements Transport {
  /** One per chunk: the same data buffer (offsets are absolute), the chunk's own meta. */
  private readonly batches: Batch[];
  private closed = false;

  private constructor(
    private readonly handle: NativeHandle,
    data: ArrayBuffer,
    meta: ArrayBuffer,
    readonly portId: number,
    chunks: number,
  ) {
    const buf = Buffer.from(data);
    const perChunk = meta.byteLength / chunks;
    this.batches = Array.from({ length: chunks }, (_, c) => ({
      buf,
      meta: new Int32Array(meta, c * perChunk, perChunk / Int32Array.BYTES_PER_ELEMENT),
      count: 0,
    }));
  }

  static open(protocol: number, options: OpenOptions, what: string): NetlinkSocket {
    try {
      const [handle, data, meta, portId] = addon().open(
        protocol,
        options.slots,
        options.slotSize,
        options.netns ?? null,
        options.pauseMs ?? 0,
        options.chunks ?? 0,
      );
      return new NetlinkSocket(handle, data, meta, portId, Math.max(1, options.chunks ?? 0));
    } catch (err) {
      throw err instanceof ConntrackError ? err : socketError(err, what);
    }
  }

  setInt(level: number, name: number, value: number): void {
    addon().setInt(this.handle, level, name, value);
  }

  getInt(level: number, name: number): number {
    return addon().getInt(this.handle, level, name);
  }

  send(message: Buffer): void {
    try {
      addon().send(this.handle, message);
    } catch (err) {
      throw socketError(err, 'sending a netlink request');
    }
  }

  start(onBatch: (batch: Batch, lost: number) => void, onError: (err: ConntrackError) => void): void {
    const batches = this.batches;
    addon().start(
      this.handle,
      (count, lost, chunk) => {
        const batch = batches[chunk]!;
        batch.count = count;
        onBatch(batch, lost);
      },
      (errno, syscall) => onError(socketError({ errno, message: `${syscall} failed` }, 'netlink receive')),
    );
  }

  ref(on: boolean): void {
    if (!this.closed) addon().ref(this.handle, on);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    addon().close(this.handle);
  }
}

export interface EventSocketHandlers {
  /** Event datagrams; each usually holds one event message. */
  onBatch(batch: Batch): void;
  /** The kernel dropped `lost` event messages for us: the receive queue was full. */
  onOverrun(lost: number): void;
  /** Any other socket failure; the socket may be unusable afterwards. */
  onError(err: ConntrackError): void;
}

export interface EventSocketOptions {
  /** Receive buffer in bytes; set with SO_RCVBUFFORCE, so net.core.rmem_max does not cap it. */
  rcvbuf?: number | undefined;
  netns?: string | undefined;
  /**
   * Also receive the events of every namespace that has an id as seen from this one (--netns.all);
   * each datagram's id is in the batch meta. Needs CAP_NET_BROADCAST here, and the kernel checks
   * it again over each sending namespace.
   */
  listenAllNsid?: boolean | undefined;
}

/** Events are small (a few hundred bytes); 256 a read keeps syscalls rare under a flood. */
const EVENT_SLOTS = 256;
const EVENT_SLOT_SIZE = 8192;
/**
 * At 100,000 events/s, 5 ms gathers 500 events (about 0.6 MB of the default 16 MiB buffer) per
 * wake-up. Metrics are read every few seconds; a few milliseconds of delay cost nothing.
 */
const EVENT_PAUSE_MS = 5;

export class EventSocket {
  private readonly sock: NetlinkSocket;

  constructor(handlers: EventSocketHandlers, options: EventSocketOptions = {}) {
    this.sock = NetlinkSocket.open(
      NETLINK_NETFILTER,
      { slots: EVENT_SLOTS, slotSize: EVENT_SLOT_SIZE, netns: options.netns, pauseMs: EVENT_PAUSE_MS },
      'opening the ctnetlink event socket',
    );
    try {
      this.sock.setInt(SOL_NETLINK, NETLINK_NO_ENOBUFS, 1);
      if (options.listenAllNsid) {
        try {
          this.sock.setInt(SOL_NETLINK, NETLINK_LISTEN_ALL_NSID, 1);
        } catch (err) {
          throw new ConntrackError(
            'CT_ERR_PERMISSION',
            'NETLINK_LISTEN_ALL_NSID (--netns.all) was refused: it needs CAP_NET_BROADCAST (add NET_BROADCAST to the container capabilities)',
            { cause: err },
          );
        }
      }
      if (options.rcvbuf !== undefined) {
        try {
          this.sock.setInt(SOL_SOCKET, SO_RCVBUFFORCE, options.rcvbuf);
        } catch {
          // Without CAP_NET_ADMIN in the socket's namespace: the capped SO_RCVBUF still helps.
          this.sock.setInt(SOL_SOCKET, SO_RCVBUF, options.rcvbuf);
        }
      }
      for (const group of [NFNLGRP_CONNTRACK_NEW, NFNLGRP_CONNTRACK_UPDATE, NFNLGRP_CONNTRACK_DESTROY]) {
        this.sock.setInt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group);
      }
      this.sock.start(
        (batch, lost) => {
          if (batch.count > 0) handlers.onBatch(batch);
          if (lost > 0) handlers.onOverrun(lost);
        },
        (err) => handlers.onError(err),
      );
    } catch (err) {
      this.sock.close();
      throw err instanceof ConntrackError ? err : socketError(err, 'joining the ctnetlink event groups');
    }
  }

  /** The effective SO_RCVBUF, as the kernel reports it (twice what was granted). */
  get receiveBufferSize(): number {
    return this.sock.getInt(SOL_SOCKET, SO_RCVBUF);
  }

  close(): void {
    this.sock.close();
  }
}

export interface RequestResult {
  /** The kernel flagged the dump as inconsistent (NLM_F_DUMP_INTR): the table changed under it. */
  interrupted: boolean;
  messages: number;
}

/** One reply message, positional so that a million-entry dump allocates nothing per entry. */
export type ReplyHandler = (buf: Buffer, type: number, flags: number, start: number, end: number) => void;

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

export class RequestSocket {
  private seq = Math.floor(Math.random() * 0x7fffffff);
  private pending: Pending | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly transport: Transport,
    private readonly timeoutMs = 5000,
  ) {
    // Keeps the process alive only while a request is in flight.
    transport.ref(false);
    transport.start(
      (batch) => this.receive(batch),
      (err) => this.fail(err),
    );
  }

  /**
   * `slots` and `chunks` as in OpenOptions: a socket that only asks for statistics (a few small
   * datagrams) does with fewer slots and no reader thread (chunks 0).
   */
  static open(
    timeoutMs = 5000,
    netns?: string,
    slots = REQUEST_SLOTS,
    chunks = REQUEST_CHUNKS,
  ): RequestSocket {
    const sock = NetlinkSocket.open(
      NETLINK_NETFILTER,
      { slots, slotSize: REQUEST_SLOT_SIZE, netns, chunks },
      'opening the ctnetlink request socket',
    );
    try {
      sock.setInt(SOL_NETLINK, NETLINK_CAP_ACK, 1);
      return new RequestSocket(sock, timeoutMs);
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
        this.fail(err instanceof ConntrackError ? err : socketError(err, 'sending a ctnetlink request'));
      }
    });
  }

  private receive(batch: Batch): void {
    const { buf, meta } = batch;
    for (let i = 0; i < batch.count && this.pending; i++) {
      const start = meta[i * 3]!;
      const len = meta[i * 3 + 1]!;
      if (len < 0) {
        this.fail(new ConntrackError('CT_ERR_TRUNCATED', `reply datagram of ${-len} bytes truncated`));
        return;
      }
      this.receiveDatagram(buf, start, start + len);
    }
  }

  private receiveDatagram(buf: Buffer, from: number, to: number): void {
    const p = this.pending;
    if (!p) return; // a late reply to a request that already timed out
    try {
      forEachMessage(
        buf,
        (type, flags, seq, start, end) => {
          if (this.pending !== p || seq !== p.seq) return;
          // The deadline is for silence, not for the whole reply: a big dump keeps it alive.
          p.timer.refresh();
          if (flags & NLM_F_DUMP_INTR) p.interrupted = true;
          switch (type) {
            case NLMSG_ERROR:
              this.acked(p, buf, start, end, from);
              break;
            case NLMSG_DONE:
              this.dumpDone(p, buf, start, end);
              break;
            case NLMSG_NOOP:
              break;
            default:
              p.messages++;
              p.onMessage(buf, type, flags, start, end);
          }
        },
        from,
        to,
      );
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

  private fail(err: ConntrackError): void {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    clearTimeout(p.timer);
    if (!this.closed) this.transport.ref(false);
    p.reject(err);
  }
}
