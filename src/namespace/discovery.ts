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
 */
import { type FSWatcher, watch } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

export interface NamespaceRef {
  /** nsfs inode, decimal: the namespace's identity while it exists. */
  readonly inode: string;
  /** Name under /var/run/netns, when it has one. */
  readonly name: string | undefined;
  /** A path that opens it: /var/run/netns/NAME, else /proc/PID/ns/net of one of its processes. */
  readonly path: string;
  /** The exporter's own namespace. */
  readonly own: boolean;
  /** The `netns` label value: the name, else `inode:<inode>`. */
  readonly label: string;
  /** TEMPORARY until discovery keeps descriptors: an open descriptor of the namespace. */
  readonly fd?: number;
}

export interface DiscoveryRoots {
  /** procfs, normally /proc. */
  proc: string;
  /** Named namespaces, normally /var/run/netns. */
  netnsDir: string;
}

const DEFAULT_ROOTS: DiscoveryRoots = { proc: '/proc', netnsDir: '/var/run/netns' };

async function inodeOf(path: string): Promise<string | undefined> {
  try {
    return String((await stat(path, { bigint: true })).ino);
  } catch {
    // Gone in between (a process exited), or not ours to see (EACCES without CAP_SYS_PTRACE).
    return undefined;
  }
}

async function list(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}

/** Every namespace visible under `roots`, deduplicated by inode; names win over process paths. */
export async function scanNamespaces(
  roots: DiscoveryRoots = DEFAULT_ROOTS,
): Promise<Map<string, NamespaceRef>> {
  const own = await inodeOf(join(roots.proc, 'self/ns/net'));
  const found = new Map<string, NamespaceRef>();
  const add = (inode: string, name: string | undefined, path: string): void => {
    const had = found.get(inode);
    // The first name in directory order is kept when one namespace is mounted under two names.
    if (had && (had.name !== undefined || name === undefined)) return;
    found.set(inode, { inode, name, path, own: inode === own, label: name ?? `inode:${inode}` });
  };
  for (const name of (await list(roots.netnsDir)).sort()) {
    const path = join(roots.netnsDir, name);
    const inode = await inodeOf(path);
    if (inode !== undefined) add(inode, name, path);
  }
  const pids = (await list(roots.proc)).filter((e) => /^\d+$/.test(e)).sort((a, b) => Number(a) - Number(b));
  for (const pid of pids) {
    const path = join(roots.proc, pid, 'ns/net');
    const inode = await inodeOf(path);
    if (inode !== undefined) add(inode, undefined, path);
  }
  // The exporter's own namespace, also when /proc shows no pid of ours (a different pid namespace).
  if (own !== undefined) add(own, undefined, join(roots.proc, 'self/ns/net'));
  return found;
}

export interface DiscoveryChange {
  added: NamespaceRef[];
  removed: NamespaceRef[];
  /** Namespaces seen but not followed because of the cap. */
  skipped: number;
}

/** Order of preference for the places under the cap. */
function rank(a: NamespaceRef, b: NamespaceRef): number {
  if (a.own !== b.own) return a.own ? -1 : 1;
  if ((a.name === undefined) !== (b.name === undefined)) return a.name !== undefined ? -1 : 1;
  return a.inode.length - b.inode.length || (a.inode < b.inode ? -1 : a.inode > b.inode ? 1 : 0);
}

/** The followed set: pure, so the cap and the diff are unit-tested without a filesystem. */
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

  /** Applies one scan; returns what starts and stops being followed. */
  update(seen: ReadonlyMap<string, NamespaceRef>): DiscoveryChange {
    const removed: NamespaceRef[] = [];
    for (const [inode, ref] of this.followed) {
      const now = seen.get(inode);
      // Same inode, different name: it was renamed or a second name appeared; keep the first
      // label so the series do not jump, but remember a path that still opens it.
      if (!now) {
        this.followed.delete(inode);
        removed.push(ref);
      } else if (now.path !== ref.path && now.name === ref.name) {
        this.followed.set(inode, { ...ref, path: now.path });
      }
    }
    const candidates = [...seen.values()].filter((r) => !this.followed.has(r.inode)).sort(rank);
    const room = Math.max(0, this.max - this.followed.size);
    const added = candidates.slice(0, room);
    for (const ref of added) this.followed.set(ref.inode, ref);
    this.skipped = candidates.length - added.length;
    return { added, removed, skipped: this.skipped };
  }
}

export interface WatchOptions {
  roots?: DiscoveryRoots;
  max: number;
  intervalMs: number;
  onChange: (change: DiscoveryChange) => void | Promise<void>;
  onError: (err: unknown) => void;
}

/** Scans now and then on every interval and /var/run/netns change; one scan at a time. */
export class NamespaceWatcher {
  readonly set: FollowedSet;
  private timer: NodeJS.Timeout | undefined;
  private watcher: FSWatcher | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(private readonly options: WatchOptions) {
    this.set = new FollowedSet(options.max);
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
          const seen = await scanNamespaces(this.options.roots);
          if (this.stopped) return;
          await this.options.onChange(this.set.update(seen));
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

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.watcher?.close();
  }
}
