/**
 * Which network namespaces exist on the node: the named ones under /var/run/netns (`ip netns`,
 * CNI plugins pin pod namespaces there) and every other one a process lives in (/proc/PID/ns/net),
 * the same namespace found twice counted once (by inode: all namespaces live on the one nsfs
 * device). A scan is cheap (a readdir of /proc and a stat per process); the watcher repeats it on
 * an interval and at once when /var/run/netns changes, and reports what appeared and disappeared.
 *
 * At most `max` namespaces are followed: the exporter's own first, then named ones, then the
 * rest by inode; a namespace once followed keeps its place while it exists. The excess is
 * counted (`skipped`), never silently dropped, and takes a freed place at the next scan.
 *
 * A namespace entering the followed set is opened once, here, and its descriptor is what every
 * later use goes through (setns for its sockets, NETNSA_FD for its id): a path is never opened
 * again, because /proc/PID/ns/net may by then belong to a reused PID in another namespace. The
 * watcher owns the descriptors: it closes one after the change that reports its namespace gone has
 * been handled, and all of them on stop(). Namespaces over the cap are not opened.
 */
import type { BigIntStats } from 'node:fs';
import { closeSync, type FSWatcher, watch } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ConntrackError } from '../errors.js';
import {
  errnoCode,
  type FoundNamespace,
  fileKind,
  type NamespaceRef,
  nsfsNames,
  openNamespace,
  type Refusal,
  refusal,
} from './nsfs.js';

export type { FoundNamespace, NamespaceRef } from './nsfs.js';

export interface DiscoveryRoots {
  /** procfs, normally /proc. */
  proc: string;
  /** Named namespaces, normally /var/run/netns. */
  netnsDir: string;
}

const DEFAULT_ROOTS: DiscoveryRoots = { proc: '/proc', netnsDir: '/var/run/netns' };

export interface Scan {
  /** Every namespace seen, by inode; names win over process paths. */
  readonly found: Map<string, FoundNamespace>;
  /** Paths refused in this scan (those still refused from `before`, and new ones). */
  readonly refused: Map<string, Refusal>;
  /** The nsfs device: that of the exporter's own namespace. */
  readonly nsfsDev: bigint;
  /** Some processes in each namespace, by inode (at most MAX_PIDS each, lowest first): whose it is. */
  readonly pids: Map<string, number[]>;
}

/** Processes recorded per namespace: enough to see whether they agree on whose it is. */
export const MAX_PIDS = 8;

async function statOf(path: string): Promise<BigIntStats | undefined> {
  try {
    return await stat(path, { bigint: true });
  } catch {
    // Gone in between (a process exited), or not ours to see (EACCES without CAP_SYS_PTRACE).
    return undefined;
  }
}

/**
 * `ip netns add` creates an empty file and then mounts the namespace on it: a name seen in between
 * (the directory watch fires on the create) is no namespace yet, and no refusal either.
 */
function mountPending(st: BigIntStats, name: string | undefined): boolean {
  return name !== undefined && st.isFile() && st.size === 0n;
}

function scanFailed(what: string, err: unknown): ConntrackError {
  return new ConntrackError('CT_ERR_NETNS_SCAN', `network namespace scan skipped: ${what}: ${String(err)}`, {
    cause: err,
  });
}

/** Names under /var/run/netns: none when it does not exist; unreadable fails the scan. */
async function namedEntries(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw scanFailed(`reading ${dir}`, err);
  }
}

/** The pids under /proc; a /proc that cannot be listed, or lists none, fails the scan. */
async function pidEntries(proc: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(proc);
  } catch (err) {
    throw scanFailed(`reading ${proc}`, err);
  }
  const pids = entries.filter((e) => /^\d+$/.test(e)).sort((a, b) => Number(a) - Number(b));
  // Every procfs shows at least its pid namespace's init: none means this is no procfs.
  if (pids.length === 0) throw scanFailed(`reading ${proc}`, 'no process listed');
  return pids;
}

/** Records `pid` as one of the processes in namespace `inode`, up to MAX_PIDS. */
function addPid(pids: Map<string, number[]>, inode: string, pid: number): void {
  const list = pids.get(inode);
  if (!list) pids.set(inode, [pid]);
  else if (list.length < MAX_PIDS) list.push(pid);
}

/** Names win over process paths; the first name in directory order over a second mount's. */
function addFound(found: Map<string, FoundNamespace>, ns: Omit<FoundNamespace, 'label'>): void {
  const had = found.get(ns.inode);
  if (had && (had.name !== undefined || ns.name === undefined)) return;
  found.set(ns.inode, { ...ns, label: ns.name ?? `inode:${ns.inode}` });
}

/**
 * Every namespace visible under `roots`, by stat only. A path whose file is no namespace (not on
 * the nsfs device of the exporter's own namespace, or not a regular file) is refused; one refused
 * in `before` as the same file is refused again without a look. Throws CT_ERR_NETNS_SCAN, with
 * nothing to apply, when /proc, /var/run/netns or the exporter's own namespace cannot be read.
 */
export async function scanNamespaces(
  roots: DiscoveryRoots = DEFAULT_ROOTS,
  before: ReadonlyMap<string, Refusal> = new Map(),
): Promise<Scan> {
  const ownPath = join(roots.proc, 'self/ns/net');
  let self: BigIntStats;
  try {
    self = await stat(ownPath, { bigint: true });
  } catch (err) {
    throw scanFailed(`the exporter's own namespace ${ownPath}`, err);
  }
  const names = await namedEntries(roots.netnsDir);
  const pids = await pidEntries(roots.proc);
  const found = new Map<string, FoundNamespace>();
  const refused = new Map<string, Refusal>();
  const pidsOf = new Map<string, number[]>();

  const consider = async (path: string, name: string | undefined, pid?: number): Promise<void> => {
    const st = await statOf(path);
    if (!st) return;
    const id = `${st.dev}:${st.ino}`;
    const was = before.get(path);
    if (was?.id === id) {
      refused.set(path, was);
      if (!was.retry) return;
    }
    if (st.dev !== self.dev || !st.isFile()) {
      if (!mountPending(st, name)) {
        refused.set(path, refusal(id, `${path} is not a network namespace: it is ${fileKind(st)}`));
      }
      return;
    }
    const inode = String(st.ino);
    addFound(found, { inode, name, foundAt: path, own: st.ino === self.ino });
    if (pid !== undefined) addPid(pidsOf, inode, pid);
  };

  for (const name of names) await consider(join(roots.netnsDir, name), name);
  for (const pid of pids) await consider(join(roots.proc, pid, 'ns/net'), undefined, Number(pid));
  // The exporter's own namespace, also when /proc shows no pid of ours (a different pid namespace).
  await consider(ownPath, undefined);
  return { found, refused, nsfsDev: self.dev, pids: pidsOf };
}

export interface DiscoveryChange {
  /** Now followed, each with its descriptor open. */
  added: NamespaceRef[];
  /** No longer followed; their descriptors stay open until the change has been handled. */
  removed: NamespaceRef[];
  /** Namespaces seen but not followed because of the cap. */
  skipped: number;
  /** Processes found in each namespace by this scan, by inode (see Scan.pids). */
  pids?: ReadonlyMap<string, readonly number[]>;
}

/** Order of preference for the places under the cap. */
function rank(a: FoundNamespace, b: FoundNamespace): number {
  if (a.own !== b.own) return a.own ? -1 : 1;
  if ((a.name === undefined) !== (b.name === undefined)) return a.name !== undefined ? -1 : 1;
  return a.inode.length - b.inode.length || (a.inode < b.inode ? -1 : a.inode > b.inode ? 1 : 0);
}

/**
 * The followed set: the cap and the diff, without a filesystem (opening is given). A followed
 * namespace keeps its first ref (label and descriptor) while its inode is seen, whatever path
 * finds it later.
 */
export class FollowedSet {
  private readonly followed = new Map<string, NamespaceRef>();
  skipped = 0;

  constructor(private readonly max: number) {}

  get size(): number {
    return this.followed.size;
  }

  values(): IterableIterator<NamespaceRef> {
    return this.followed.values();
  }

  /**
   * Applies one scan: drops what is gone, then opens newcomers in order of preference until the
   * cap is reached (one that does not open leaves its place to the next). Only what is opened is
   * followed; the rest is counted as skipped.
   */
  async update(
    seen: ReadonlyMap<string, FoundNamespace>,
    openRef: (ns: FoundNamespace) => Promise<NamespaceRef | undefined>,
  ): Promise<DiscoveryChange> {
    const removed: NamespaceRef[] = [];
    for (const [inode, ref] of this.followed) {
      if (seen.has(inode)) continue;
      this.followed.delete(inode);
      removed.push(ref);
    }
    const candidates = [...seen.values()].filter((r) => !this.followed.has(r.inode)).sort(rank);
    const added: NamespaceRef[] = [];
    let tried = 0;
    while (tried < candidates.length && this.followed.size < this.max) {
      const ref = await openRef(candidates[tried++]!);
      if (!ref) continue;
      this.followed.set(ref.inode, ref);
      added.push(ref);
    }
    this.skipped = candidates.length - tried;
    return { added, removed, skipped: this.skipped };
  }

  /** Empties the set; returns what it held. */
  clear(): NamespaceRef[] {
    const all = [...this.followed.values()];
    this.followed.clear();
    return all;
  }
}

export interface WatchOptions {
  roots?: DiscoveryRoots;
  max: number;
  intervalMs: number;
  /** Called with every applied scan; a removed ref's descriptor is closed once this settles. */
  onChange: (change: DiscoveryChange) => void | Promise<void>;
  /**
   * A skipped scan (CT_ERR_NETNS_SCAN: the followed set is unchanged) or, once per path while it
   * stays what it is, a path that is not followed (CT_ERR_NETNS_REFUSED).
   */
  onError: (err: unknown) => void;
  /** The kernel's name of an open namespace file (see nsfsNames); tests on fake trees replace it. */
  nsName?: (fd: number) => Promise<string | undefined>;
}

/** Scans now and then on every interval and /var/run/netns change; one scan at a time. */
export class NamespaceWatcher {
  readonly set: FollowedSet;
  private refusals: ReadonlyMap<string, Refusal> = new Map();
  private timer: NodeJS.Timeout | undefined;
  private watcher: FSWatcher | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(private readonly options: WatchOptions) {
    this.set = new FollowedSet(options.max);
  }

  /** Paths refused at the last applied scan because they are not network namespaces. */
  get refused(): number {
    let n = 0;
    for (const r of this.refusals.values()) if (!r.retry) n++;
    return n;
  }

  /** Resolves after the first scan has been applied. */
  start(): Promise<void> {
    const roots = this.options.roots ?? DEFAULT_ROOTS;
    this.timer = setInterval(() => void this.scan(), this.options.intervalMs);
    this.timer.unref();
    try {
      this.watcher = watch(roots.netnsDir, () => void this.scan());
      this.watcher.on('error', () => this.watcher?.close());
      this.watcher.unref();
    } catch {
      // No /var/run/netns (yet): the interval scan still finds named namespaces once it exists.
    }
    return this.scan();
  }

  /** A scan now, or right after the one under way. */
  scan(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    const run = (async () => {
      do {
        this.again = false;
        try {
          await this.once();
        } catch (err) {
          this.options.onError(err);
        }
      } while (this.again && !this.stopped);
    })().finally(() => {
      this.running = undefined;
    });
    this.running = run;
    return run;
  }

  /** Stops scanning and, once a scan under way has been handled, closes every descriptor. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.watcher?.close();
    await this.running;
    this.close(this.set.clear());
  }

  private async once(): Promise<void> {
    const scan = await scanNamespaces(this.options.roots, this.refusals);
    if (this.stopped) return;
    const nameOf = this.options.nsName ?? nsfsNames();
    const change = await this.set.update(scan.found, async (ns) => {
      const opened = await openNamespace(ns, scan.nsfsDev, nameOf);
      if (opened && 'fd' in opened) {
        scan.refused.delete(ns.foundAt);
        return { ...ns, fd: opened.fd };
      }
      if (opened) scan.refused.set(ns.foundAt, opened.refused);
      return undefined;
    });
    change.pids = scan.pids;
    for (const [path, r] of scan.refused) {
      if (this.refusals.get(path)?.id !== r.id) this.options.onError(r.error);
    }
    this.refusals = scan.refused;
    try {
      if (!this.stopped) await this.options.onChange(change);
    } finally {
      this.close(change.removed);
    }
  }

  private close(refs: readonly NamespaceRef[]): void {
    for (const ref of refs) {
      try {
        closeSync(ref.fd);
      } catch (err) {
        this.options.onError(err);
      }
    }
  }
}
