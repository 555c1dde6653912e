/**
 * The only importer of the `netlink` package. Two sockets on NETLINK_NETFILTER:
 * - an event socket joined to the ctnetlink NEW/UPDATE/DESTROY groups. When the kernel cannot
 *   queue an event because our receive buffer is full, recvmsg fails with ENOBUFS: that is an
 *   overrun (events were lost, the shadow table must resync), reported apart from real errors;
 * - a request socket for dumps and statistics, one request in flight at a time, multipart
 *   replies streamed to the caller message by message so a dump of a million flows is never held
 *   whole in memory.
 */
import { constants as os } from 'node:os';
import { RawNetlinkSocket } from 'netlink/dist/raw.js';
import { ConntrackError } from '../errors.js';
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
import {
  fdOfInode,
  getsockoptInt,
  NETLINK_NO_ENOBUFS,
  netlinkRow,
  SO_RCVBUF,
  SO_RCVBUFFORCE,
  SOL_NETLINK,
  SOL_SOCKET,
  setsockoptInt,
} from './sockopt.js';

export const NETLINK_NETFILTER = 12;

interface ErrnoLike {
  errno?: unknown;
  code?: unknown;
  message?: unknown;
}

/** Maps an errno failure from the binding to our error, with the permission case spelled out. */
export function socketError(err: unknown, what: string): ConntrackError {
  const e = (typeof err === 'object' && err !== null ? err : {}) as ErrnoLike;
  const errno = typeof e.errno === 'number' ? Math.abs(e.errno) : undefined;
  const code = typeof e.code === 'string' ? e.code : 'unknown error';
  if (errno === os.errno.EPERM || errno === os.errno.EACCES) {
    return new ConntrackError(
      'CT_ERR_PERMISSION',
      `${what}: ${code}: ctnetlink needs CAP_NET_ADMIN (run as root, grant it with ` +
        '`setcap cap_net_admin+ep $(command -v node)`, or add NET_ADMIN to the container capabilities)',
      { ...(errno === undefined ? {} : { errno }), cause: err },
    );
  }
  return new ConntrackError('CT_ERR_SOCKET', `${what}: ${code}`, {
    ...(errno === undefined ? {} : { errno }),
    cause: err,
  });
}

/**
 * Runs a handler called from the addon's native callback. An exception escaping into the addon
 * becomes a C++ exception that aborts the process ("Error in native callback"), so it is
 * re-raised from setImmediate instead (not nextTick: the addon's callback scope drains the tick
 * queue before it returns), where the process's own handlers see it.
 */
function guarded(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    setImmediate(() => {
      throw err;
    });
  }
}

export interface EventSocketHandlers {
  /** One datagram from the kernel; usually one event message. */
  onDatagram(buf: Buffer): void;
  /** The kernel dropped `lost` event messages for us: the receive queue was full. */
  onOverrun(lost: number): void;
  /** Any other socket failure; the socket may be unusable afterwards. */
  onError(err: ConntrackError): void;
}

export interface EventSocketOptions {
  /** Receive buffer in bytes; set with SO_RCVBUFFORCE, so net.core.rmem_max does not cap it. */
  rcvbuf?: number | undefined;
  /** How often to look at the kernel's drop counter for this socket. */
  dropCheckMs?: number | undefined;
}

/**
 * Overruns are detected from the socket's drop counter, not from ENOBUFS: netlink 0.3.0 aborts
 * the process when epoll reports the socket error that ENOBUFS leaves behind (its poll handler
 * builds an error with a NULL syscall name), so NETLINK_NO_ENOBUFS is set and
 * /proc/self/net/netlink's Drops column, which counts every lost message, is polled instead.
 * That also catches the drops the kernel does not signal at all while the socket stays congested.
 */
export class EventSocket {
  private readonly sock: RawNetlinkSocket;
  private readonly portId: number;
  private readonly fd: number;
  private readonly timer: NodeJS.Timeout;
  private lastDrops = 0;
  private closed = false;

  constructor(
    private readonly handlers: EventSocketHandlers,
    options: EventSocketOptions = {},
  ) {
    try {
      this.sock = new RawNetlinkSocket(NETLINK_NETFILTER);
    } catch (err) {
      throw socketError(err, 'opening the ctnetlink event socket');
    }
    try {
      this.portId = this.sock.address().port;
      const row = netlinkRow(this.portId);
      const fd = row === undefined ? undefined : fdOfInode(row.inode);
      if (fd === undefined) {
        throw new ConntrackError('CT_ERR_SOCKET', `no file descriptor found for netlink port ${this.portId}`);
      }
      this.fd = fd;
      setsockoptInt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, 1);
      if (options.rcvbuf !== undefined) {
        try {
          setsockoptInt(fd, SOL_SOCKET, SO_RCVBUFFORCE, options.rcvbuf);
        } catch {
          // Without CAP_NET_ADMIN in the socket's namespace: the capped SO_RCVBUF still helps.
          this.sock.setRecvBufferSize(options.rcvbuf);
        }
      }
      for (const group of [NFNLGRP_CONNTRACK_NEW, NFNLGRP_CONNTRACK_UPDATE, NFNLGRP_CONNTRACK_DESTROY]) {
        this.sock.addMembership(group);
      }
    } catch (err) {
      this.sock.close();
      throw err instanceof ConntrackError ? err : socketError(err, 'joining the ctnetlink event groups');
    }
    this.sock.on('message', (msg) => guarded(() => handlers.onDatagram(msg)));
    this.sock.on('error', (err) =>
      guarded(() => {
        if (err.errno === os.errno.ENOBUFS || err.code === 'ENOBUFS') handlers.onOverrun(0);
        else handlers.onError(socketError(err, 'receiving ctnetlink events'));
      }),
    );
    this.timer = setInterval(() => this.checkDrops(), options.dropCheckMs ?? 250);
    this.timer.unref();
  }

  /** The effective SO_RCVBUF, as the kernel reports it (twice what was granted). */
  get receiveBufferSize(): number {
    return getsockoptInt(this.fd, SOL_SOCKET, SO_RCVBUF);
  }

  /** Messages the kernel dropped for this socket since it was opened. */
  get drops(): number {
    return this.lastDrops;
  }

  /** Reads the drop counter now and reports an overrun if it moved. */
  checkDrops(): void {
    if (this.closed) return;
    const drops = netlinkRow(this.portId)?.drops;
    if (drops !== undefined && drops > this.lastDrops) {
      const lost = drops - this.lastDrops;
      this.lastDrops = drops;
      guarded(() => this.handlers.onOverrun(lost));
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.sock.close();
  }
}

/** A message view inside a reply datagram. */
export interface ReplyMessage {
  buf: Buffer;
  type: number;
  flags: number;
  start: number;
  end: number;
}

export interface RequestResult {
  /** The kernel flagged the dump as inconsistent (NLM_F_DUMP_INTR): the table changed under it. */
  interrupted: boolean;
  messages: number;
}

interface Pending {
  seq: number;
  onMessage: (m: ReplyMessage) => void;
  resolve: (r: RequestResult) => void;
  reject: (e: ConntrackError) => void;
  timer: NodeJS.Timeout;
  interrupted: boolean;
  messages: number;
}

export class RequestSocket {
  private readonly sock: RawNetlinkSocket;
  private seq = Math.floor(Math.random() * 0x7fffffff);
  private pending: Pending | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(private readonly timeoutMs = 5000) {
    try {
      this.sock = new RawNetlinkSocket(NETLINK_NETFILTER);
    } catch (err) {
      throw socketError(err, 'opening the ctnetlink request socket');
    }
    // Keeps the process alive only while a request is in flight.
    this.sock.unref();
    this.sock.on('message', (msg) => guarded(() => this.receive(msg)));
    this.sock.on('error', (err) => guarded(() => this.fail(socketError(err, 'receiving a ctnetlink reply'))));
  }

  /**
   * Sends one request and streams each reply message to `onMessage` until the reply is complete:
   * NLMSG_DONE for dumps, the ACK otherwise. Non-dump requests always ask for an ACK because the
   * kernel marks even single replies NLM_F_MULTI (CT_GET_STATS does) without a DONE after them,
   * so the ACK is the only reliable end. NLMSG_ERROR rejects.
   */
  request(
    type: number,
    flags: number,
    payload: Buffer,
    onMessage: (m: ReplyMessage) => void,
  ): Promise<RequestResult> {
    const run = () => this.send(type, flags, payload, onMessage);
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.fail(new ConntrackError('CT_ERR_SOCKET', 'request socket closed'));
    this.sock.close();
  }

  private send(
    type: number,
    flags: number,
    payload: Buffer,
    onMessage: (m: ReplyMessage) => void,
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
      this.sock.ref();
      const dump = (flags & NLM_F_DUMP) === NLM_F_DUMP;
      const wire = encodeMessage(type, flags | NLM_F_REQUEST | (dump ? 0 : NLM_F_ACK), seq, payload);
      this.sock.send(wire, {}, (err) => {
        if (err) this.fail(socketError(err, 'sending a ctnetlink request'));
      });
    });
  }

  private receive(buf: Buffer): void {
    const p = this.pending;
    if (!p) return; // a late reply to a request that already timed out
    try {
      forEachMessage(buf, (type, flags, seq, start, end) => {
        if (this.pending !== p || seq !== p.seq) return;
        // The deadline is for silence, not for the whole reply: a big dump keeps it alive.
        p.timer.refresh();
        if (flags & NLM_F_DUMP_INTR) p.interrupted = true;
        if (type === NLMSG_ERROR) {
          const errno = -readErrorCode(buf, start, end);
          if (errno === 0) this.finish(p);
          else
            this.fail(
              new ConntrackError('CT_ERR_KERNEL', `kernel rejected the request: errno ${errno}`, {
                errno,
                offset: start,
              }),
            );
          return;
        }
        if (type === NLMSG_DONE) {
          // A dump that failed part-way reports a negative errno in the DONE payload.
          const status = end - start >= NLMSG_HDRLEN + 4 ? readU32h(buf, start + NLMSG_HDRLEN) | 0 : 0;
          if (status < 0) {
            this.fail(
              new ConntrackError('CT_ERR_KERNEL', `dump ended with errno ${-status}`, { errno: -status }),
            );
          } else this.finish(p);
          return;
        }
        if (type === NLMSG_NOOP) return;
        p.messages++;
        p.onMessage({ buf, type, flags, start, end });
      });
    } catch (err) {
      this.fail(
        err instanceof ConntrackError
          ? err
          : new ConntrackError('CT_ERR_SOCKET', 'reply handler failed', { cause: err }),
      );
    }
  }

  private finish(p: Pending): void {
    if (this.pending !== p) return;
    this.pending = undefined;
    clearTimeout(p.timer);
    if (!this.closed) this.sock.unref();
    p.resolve({ interrupted: p.interrupted, messages: p.messages });
  }

  private fail(err: ConntrackError): void {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    clearTimeout(p.timer);
    if (!this.closed) this.sock.unref();
    p.reject(err);
  }
}
