/**
 * What the `netlink` package does not expose about its sockets, reached through the socket's
 * file descriptor: integer socket options (native/sockopt.c) and the kernel's per-socket drop
 * counter. The fd is found by the socket's netlink port id: /proc/self/net/netlink maps the port
 * id to the socket inode, /proc/self/fd maps the inode to the fd.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { ConntrackError } from '../errors.js';

export const SOL_SOCKET = 1;
export const SO_RCVBUF = 8;
export const SO_RCVBUFFORCE = 33;
export const SOL_NETLINK = 270;
export const NETLINK_NO_ENOBUFS = 5;

interface SockoptAddon {
  setsockoptInt(fd: number, level: number, name: number, value: number): void;
  getsockoptInt(fd: number, level: number, name: number): number;
}

let addon: SockoptAddon | undefined;

function native(): SockoptAddon {
  if (!addon) {
    try {
      // dist/src/netlink/ -> native/build/Release/, built by `npm ci` (the install script).
      addon = createRequire(import.meta.url)('../../../native/build/Release/sockopt.node') as SockoptAddon;
    } catch (err) {
      throw new ConntrackError(
        'CT_ERR_SOCKET',
        'native/build/Release/sockopt.node is missing: run `npm ci` (it builds it with node-gyp; needs make and a C compiler)',
        { cause: err },
      );
    }
  }
  return addon;
}

export interface NetlinkSocketRow {
  portId: number;
  inode: number;
  /** Messages the kernel dropped because the receive queue was full (sk_drops). */
  drops: number;
  /** Bytes queued for reading. */
  rmem: number;
}

/** Parses /proc/net/netlink. Columns: sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode. */
export function parseProcNetlink(text: string): NetlinkSocketRow[] {
  const rows: NetlinkSocketRow[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    rows.push({ portId: Number(f[2]), rmem: Number(f[4]), drops: Number(f[8]), inode: Number(f[9]) });
  }
  return rows;
}

export function netlinkRow(portId: number): NetlinkSocketRow | undefined {
  return parseProcNetlink(readFileSync('/proc/self/net/netlink', 'utf8')).find((r) => r.portId === portId);
}

export function fdOfInode(inode: number): number | undefined {
  const want = `socket:[${inode}]`;
  for (const name of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${name}`) === want) return Number(name);
    } catch {
      // fds close under us (readdir's own among them); not ours
    }
  }
  return undefined;
}

export function setsockoptInt(fd: number, level: number, name: number, value: number): void {
  native().setsockoptInt(fd, level, name, value);
}

export function getsockoptInt(fd: number, level: number, name: number): number {
  return native().getsockoptInt(fd, level, name);
}
