/**
 * One netlink socket over the project's addon (addon.ts): its options, send, and batched receive.
 * The addon drains many datagrams per wake-up into one shared buffer and calls back once per
 * batch. Transport is what the request socket needs of it, so that unit tests can replay kernel
 * replies through a fake (test/support/fake-transport.ts).
 */
import { constants as os } from 'node:os';
import { ConntrackError } from '../errors.js';
import { addon, type NativeHandle } from './addon.js';

export const NETLINK_NETFILTER = 12;

export const SOL_SOCKET = 1;
export const SO_RCVBUF = 8;
export const SO_RCVBUFFORCE = 33;
export const SOL_NETLINK = 270;
export const NETLINK_ADD_MEMBERSHIP = 1;
export const NETLINK_NO_ENOBUFS = 5;
export const NETLINK_LISTEN_ALL_NSID = 8;
/** Error replies carry only the offending header, not the whole request. */
export const NETLINK_CAP_ACK = 10;

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

/** Maps an errno failure from the addon to our error, with the permission case spelled out. */
export function socketError(err: unknown, what: string): ConntrackError {
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
  /**
   * Open the socket inside the network namespace open as this file descriptor. The caller owns it
   * (keeps it open as long as it names the namespace it means, and closes it): a path reopened
   * later, such as /proc/PID/ns/net, may by then name another process's namespace.
   */
  netns?: number | undefined;
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

/**
 * Datagrams the addon dropped on every socket of this process because their sender was not the
 * kernel (port id not 0): forged events or replies from a local process with CAP_NET_ADMIN.
 */
let rejectedDatagrams = 0;

export function notFromKernel(): number {
  return rejectedDatagrams;
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
      (count, lost, chunk, rejected) => {
        rejectedDatagrams += rejected;
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
