/**
 * The only door to native/netlink.c: its functions, typed. Loaded on first use so that modules
 * which merely import the socket layer (and their unit tests) need no compiled addon.
 */
import { createRequire } from 'node:module';
import { ConntrackError } from '../errors.js';

/** An open socket inside the addon; only the addon reads it. */
export interface NativeHandle {
  readonly __nativeNetlinkSocket: unique symbol;
}

/**
 * Every integer argument is checked: not a number is a TypeError, not an integer in its range a
 * RangeError (code ERR_OUT_OF_RANGE) whose message starts with the argument's name. A call that
 * fails releases what it made (descriptors, memory, references, the reader's wake eventfd).
 */
export interface NetlinkAddon {
  /**
   * [socket, datagram area, meta area, netlink port id]. protocol 0..31, slots 1..4096, slotSize
   * 1 KiB..1 MiB, pauseMs 0..1000, chunks 0..64, and the areas (slots * slotSize * max(chunks, 1))
   * at most 64 MiB.
   */
  open(
    protocol: number,
    slots: number,
    slotSize: number,
    /** A network namespace's descriptor (the caller's, left open), or null for our own. */
    netnsFd: number | null,
    pauseMs: number,
    chunks: number,
  ): [NativeHandle, ArrayBuffer, ArrayBuffer, number];
  /** A socket buffer size (SO_RCVBUF, SO_SNDBUF and their FORCE forms) must be 1 KiB..1 GiB. */
  setInt(s: NativeHandle, level: number, name: number, value: number): void;
  getInt(s: NativeHandle, level: number, name: number): number;
  send(s: NativeHandle, data: Buffer): number;
  /** Starts receiving; if it fails (eventfd, pthread_create), the socket is as before and may be started again. */
  start(
    s: NativeHandle,
    /** `rejected`: datagrams dropped since the last call because the kernel did not send them. */
    onBatch: (count: number, lost: number, chunk: number, rejected: number) => void,
    onError: (errno: number, syscall: string) => void,
  ): void;
  ref(s: NativeHandle, on: boolean): void;
  close(s: NativeHandle): void;
  /** Opens `path` read-only from inside the network namespace open as `netnsFd`; returns the fd. */
  openFileIn(netnsFd: number, path: string): number;
}

/** dist/src/netlink/ -> native/build/Release/, built by `npm ci` (the package's install script). */
const ADDON_PATH = '../../../native/build/Release/netlink.node';

let loaded: NetlinkAddon | undefined;

export function addon(): NetlinkAddon {
  if (!loaded) {
    try {
      loaded = createRequire(import.meta.url)(ADDON_PATH) as NetlinkAddon;
    } catch (err) {
      throw new ConntrackError(
        'CT_ERR_SOCKET',
        'native/build/Release/netlink.node is missing: run `npm ci` (it builds it with node-gyp; needs make, g++ and python3)',
        { cause: err },
      );
    }
  }
  return loaded;
}
