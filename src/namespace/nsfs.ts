/**
 * A network namespace as a file (nsfs): opened once, without blocking, and checked to be the
 * namespace a scan saw before its descriptor is kept. What discovery hands out is that descriptor:
 * every later use (setns for sockets, NETNSA_FD for ids) goes through it, never through a path,
 * which may lead elsewhere by then (/proc/PID/ns/net of a reused pid).
 */
import type { BigIntStats } from 'node:fs';
import { closeSync, constants, fstat, fstatSync, open, openSync } from 'node:fs';
import { readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ConntrackError } from '../errors.js';

/** A namespace as a scan found it, by stat alone: nothing is open yet. */
export interface FoundNamespace {
  /** nsfs inode, decimal: the namespace's identity while it exists. */
  readonly inode: string;
  /** Name under /var/run/netns, when it has one. */
  readonly name: string | undefined;
  /** The path it was found at (and opened from, once); for logs, never to be opened again. */
  readonly foundAt: string;
  /** The exporter's own namespace. */
  readonly own: boolean;
  /** The `netns` label value: the name, else `inode:<inode>`. */
  readonly label: string;
}

/** A followed namespace: found, opened and checked once. */
export interface NamespaceRef extends FoundNamespace {
  /**
   * An O_RDONLY descriptor of the namespace, open while it is followed. Borrowed: the watcher
   * closes it after the change reporting the namespace gone has been handled, or on stop().
   */
  readonly fd: number;
}

/** Why a path is not followed, and what it was then: a path that changes is looked at afresh. */
export interface Refusal {
  /** `device:inode` of the refused file. */
  readonly id: string;
  readonly error: ConntrackError;
  /** A namespace that could not be opened (EACCES, EMFILE) is tried again; a non-namespace is not. */
  readonly retry: boolean;
}

const openFd = promisify(open);
const fstatFd = promisify(fstat);

export const errnoCode = (err: unknown): string | undefined =>
  err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;

/** What a file that is no namespace is, for the refusal's message. */
export function fileKind(st: BigIntStats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isDirectory()) return 'a directory';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'a file outside nsfs';
}

/** A refusal of the file `id`; `err` gives it a cause and an errno. */
export function refusal(id: string, message: string, retry = false, err?: unknown): Refusal {
  const errno =
    err instanceof Error && 'errno' in err && typeof err.errno === 'number' ? -err.errno : undefined;
  return {
    id,
    retry,
    error: new ConntrackError('CT_ERR_NETNS_REFUSED', message, {
      ...(errno === undefined ? {} : { errno }),
      ...(err === undefined ? {} : { cause: err }),
    }),
  };
}

/** How the kernel names a namespace file: `net:[4026531840]`. */
const NS_NAME = /^([a-z_]+):\[(\d+)\]$/;

/**
 * The kernel's name of an open nsfs file, `TYPE:[INODE]` (undefined when it cannot be read). A
 * file opened through a /proc/PID/ns link shows it as its /proc/self/fd link; one opened through a
 * bind mount (`ip netns add`) shows the mount's path there, and the name as the root of that mount
 * in /proc/self/mountinfo. This tells a net namespace from a uts one without the NS_GET_NSTYPE
 * ioctl. One per scan: mountinfo is read at most once, again only for a mount it did not list.
 */
export function nsfsNames(): (fd: number) => Promise<string | undefined> {
  let roots: Map<string, string> | undefined;
  const readRoots = async (): Promise<Map<string, string>> => {
    const m = new Map<string, string>();
    for (const line of (await readFile('/proc/self/mountinfo', 'utf8')).split('\n')) {
      const [id, , , root] = line.split(' ');
      if (id !== undefined && root !== undefined) m.set(id, root);
    }
    return m;
  };
  return async (fd) => {
    try {
      const link = await readlink(`/proc/self/fd/${fd}`);
      if (NS_NAME.test(link)) return link;
      const mnt = /^mnt_id:\s*(\d+)$/m.exec(await readFile(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1];
      if (mnt === undefined) return undefined;
      roots ??= await readRoots();
      if (!roots.has(mnt)) roots = await readRoots();
      return roots.get(mnt);
    } catch {
      return undefined;
    }
  };
}

export type Opened = { fd: number } | { refused: Refusal } | undefined;

/**
 * Opens a found namespace and checks it is the file the scan saw and a network namespace: the
 * descriptor, a refusal, or undefined when it is gone or changed since the scan (a later scan looks
 * again). O_NONBLOCK: a FIFO put there after the scan's stat must not block the open (libuv adds
 * O_CLOEXEC itself).
 */
export async function openNamespace(
  ns: FoundNamespace,
  nsfsDev: bigint,
  nameOf: (fd: number) => Promise<string | undefined> = nsfsNames(),
): Promise<Opened> {
  const id = `${nsfsDev}:${ns.inode}`;
  let fd: number;
  try {
    fd = await openFd(ns.foundAt, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ESRCH') return undefined;
    return { refused: refusal(id, `opening network namespace ${ns.foundAt}: ${String(err)}`, true, err) };
  }
  let keep = false;
  try {
    const st = await fstatFd(fd, { bigint: true }).catch(() => undefined);
    if (!st || st.dev !== nsfsDev || !st.isFile() || String(st.ino) !== ns.inode) return undefined;
    const name = NS_NAME.exec((await nameOf(fd)) ?? '');
    // Unreadable names are let through: setns and NETNSA_FD refuse a wrong type again.
    if (name && name[1] !== 'net') {
      return {
        refused: refusal(id, `${ns.foundAt} is not a network namespace: it is a ${name[1]} namespace`),
      };
    }
    if (name && name[2] !== ns.inode) return undefined;
    keep = true;
    return { fd };
  } finally {
    if (!keep) closeSync(fd);
  }
}

/**
 * The exporter's own namespace, opened (default mode, where nothing is discovered): /proc/self is
 * always this process, so the path cannot lead elsewhere. The caller keeps the descriptor.
 */
export function ownNamespace(proc = '/proc'): NamespaceRef {
  const foundAt = join(proc, 'self/ns/net');
  const fd = openSync(foundAt, constants.O_RDONLY | constants.O_NONBLOCK);
  const inode = String(fstatSync(fd, { bigint: true }).ino);
  return { inode, name: undefined, foundAt, own: true, label: `inode:${inode}`, fd };
}
