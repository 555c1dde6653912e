/**
 * The memory limit the kernel enforces on this process, from its memory cgroup, and that cgroup's
 * usage: what the OOM killer compares with the limit. cgroup v2: `memory.max` and
 * `memory.current`; v1: `memory.limit_in_bytes` and `memory.usage_in_bytes`. The process's
 * cgroup is named in /proc/self/cgroup relative to its hierarchy's root, and that hierarchy is
 * mounted where /proc/self/mountinfo says (possibly only a subtree of it, as in a container
 * without a cgroup namespace). Every cgroup from the process's up to the mounted root limits it:
 * the tightest limit on that path is the one that applies, and its cgroup's usage is what counts
 * (a systemd slice's limit covers its siblings too).
 *
 * v2 is taken when the process's cgroup has the memory controller (`memory.current` exists),
 * else v1's memory hierarchy: on a hybrid host (v1 controllers, an empty v2 hierarchy beside
 * them) memory is v1's. "max" and v1's "unlimited" (about 2^63) are no limit.
 *
 * `root` prefixes every path, so tests read a fake /proc and /sys from a directory.
 */
import { existsSync, readFileSync } from 'node:fs';

export interface CgroupMemory {
  readonly version: 1 | 2;
  /** The cgroup whose limit applies (the tightest from the process's cgroup up). */
  readonly dir: string;
  /** Bytes. */
  readonly limit: number;
  /** The cgroup's usage, bytes: one small file. */
  usage(): number;
  /**
   * Its inactive page cache, bytes (memory.stat). The kernel reclaims that cache before it kills,
   * so usage less it (kubelet's "working set") is what must stay under the limit.
   */
  inactiveFile(): number;
}

/** Limits at or above this are "no limit" (v1 writes unlimited as 2^63 rounded down to a page). */
const UNLIMITED = 2 ** 62;

interface Files {
  limit: string;
  usage: string;
  /** memory.stat's key for the inactive file cache. */
  inactiveFile: string;
}

const V2: Files = { limit: 'memory.max', usage: 'memory.current', inactiveFile: 'inactive_file' };
// v1's total_ counts the hierarchy below, as usage_in_bytes does.
const V1: Files = {
  limit: 'memory.limit_in_bytes',
  usage: 'memory.usage_in_bytes',
  inactiveFile: 'total_inactive_file',
};

interface Mount {
  /** The hierarchy's directory shown at the mount point. */
  root: string;
  point: string;
  fstype: string;
  superOptions: string[];
}

/** mountinfo escapes space, tab, newline and backslash as octal (\040). */
function unescapeOctal(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}

/** The cgroup mounts of /proc/self/mountinfo. */
function parseMountinfo(text: string): Mount[] {
  const mounts: Mount[] = [];
  for (const line of text.split('\n')) {
    const dash = line.indexOf(' - ');
    if (dash < 0) continue;
    const fields = line.slice(0, dash).split(' ');
    const [fstype = '', , superOptions = ''] = line.slice(dash + 3).split(' ');
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    const root = fields[3];
    const point = fields[4];
    if (root === undefined || point === undefined) continue;
    mounts.push({
      root: unescapeOctal(root),
      point: unescapeOctal(point),
      fstype,
      superOptions: superOptions.split(','),
    });
  }
  return mounts;
}

/** /proc/self/cgroup: the v2 path (`0::/path`) and the v1 memory hierarchy's path. */
function parseProcCgroup(text: string): { v2?: string; v1Memory?: string } {
  const out: { v2?: string; v1Memory?: string } = {};
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    if (m[1] === '0' && m[2] === '') out.v2 = m[3]!;
    else if (m[2]!.split(',').includes('memory')) out.v1Memory = m[3]!;
  }
  return out;
}

/** The directory of cgroup `path` under `mount`; undefined when the mount does not show it. */
function dirOf(mount: Mount, path: string): string | undefined {
  const root = mount.root === '/' ? '' : mount.root;
  if (path !== root && !path.startsWith(`${root}/`)) return undefined;
  return `${mount.point}${path.slice(root.length)}`.replace(/\/+$/, '') || '/';
}

/** A limit file's value: bytes, or undefined for "max", "unlimited" or a missing file. */
function parseLimit(text: string): number | undefined {
  const t = text.trim();
  if (!/^\d+$/.test(t)) return undefined;
  const n = Number(t);
  return n >= UNLIMITED ? undefined : n;
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** The tightest limit from `dir` up to the mount point, and the cgroup that sets it. */
function tightest(
  root: string,
  dir: string,
  point: string,
  files: Files,
): { dir: string; limit: number } | undefined {
  let best: { dir: string; limit: number } | undefined;
  for (let d = dir; ; d = d.slice(0, d.lastIndexOf('/')) || '/') {
    const limit = parseLimit(read(`${root}${d}/${files.limit}`) ?? '');
    if (limit !== undefined && (best === undefined || limit < best.limit)) best = { dir: d, limit };
    if (d === point || d === '/' || !d.startsWith(point)) break;
  }
  return best;
}

function limited(root: string, version: 1 | 2, dir: string, point: string): CgroupMemory | undefined {
  const files = version === 2 ? V2 : V1;
  const found = tightest(root, dir, point, files);
  if (!found) return undefined;
  const usagePath = `${root}${found.dir}/${files.usage}`;
  const statPath = `${root}${found.dir}/memory.stat`;
  const inactive = new RegExp(`^${files.inactiveFile} (\\d+)$`, 'm');
  return {
    version,
    dir: found.dir,
    limit: found.limit,
    usage: () => Number(readFileSync(usagePath, 'utf8').trim()),
    inactiveFile: () => Number(inactive.exec(readFileSync(statPath, 'utf8'))?.[1] ?? 0),
  };
}

/** The first of `mounts` that shows cgroup `path` with the memory controller's `marker` file in it. */
function mounted(
  root: string,
  mounts: Mount[],
  path: string | undefined,
  marker: string,
): { dir: string; point: string } | undefined {
  if (path === undefined) return undefined;
  for (const m of mounts) {
    const dir = dirOf(m, path);
    if (dir !== undefined && existsSync(`${root}${dir}/${marker}`)) return { dir, point: m.point };
  }
  return undefined;
}

/**
 * The memory cgroup that limits this process; undefined when there is none, no limit on the
 * path, or the files cannot be read.
 */
export function cgroupMemory(root = ''): CgroupMemory | undefined {
  const own = parseProcCgroup(read(`${root}/proc/self/cgroup`) ?? '');
  const mounts = parseMountinfo(read(`${root}/proc/self/mountinfo`) ?? '');
  const v2 = mounted(
    root,
    mounts.filter((m) => m.fstype === 'cgroup2'),
    own.v2,
    V2.usage,
  );
  if (v2) return limited(root, 2, v2.dir, v2.point);
  const v1 = mounted(
    root,
    mounts.filter((m) => m.fstype === 'cgroup' && m.superOptions.includes('memory')),
    own.v1Memory,
    V1.usage,
  );
  return v1 && limited(root, 1, v1.dir, v1.point);
}
