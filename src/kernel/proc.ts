/**
 * The one reader of the kernel's procfs files for a namespace: conntrack sysctls
 * (/proc/sys/net/netfilter/*) and the per-CPU statistics (/proc/net/stat/nf_conntrack), which
 * procfs shows for the namespace of whoever opened them. The exporter's own namespace reads them
 * by path; another namespace's are opened once from inside it (the addon enters it on a thread
 * and comes back) and then read by descriptor at every scrape, so no process of that namespace,
 * and no /proc/PID path that a reused PID could redirect, is ever needed.
 */
import { closeSync, read as readFd, readFileSync, readSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { constants as os } from 'node:os';
import { promisify } from 'node:util';
import { addon } from '../netlink/addon.js';

const pread = promisify(readFd);

/** A path under /proc, e.g. `sys/net/netfilter/nf_conntrack_count`. */
export type ProcPath = `sys/net/netfilter/${string}` | 'net/stat/nf_conntrack';

export interface ProcFiles {
  /** The file's text; undefined when this kernel has no such file (no data); throws otherwise. */
  read(path: ProcPath): Promise<string | undefined>;
  /**
   * The same, at once: for many small sysctls read together (the timeouts), where a thread-pool
   * round trip per file costs far more than the read. procfs makes a sysctl's text from memory,
   * so the read never waits for a disk.
   */
  readSync(path: ProcPath): string | undefined;
  close(): void;
}

const isMissing = (err: unknown): boolean => (err as NodeJS.ErrnoException).code === 'ENOENT';

/** The exporter's own namespace (or a fake root in tests). */
export class OwnProcFiles implements ProcFiles {
  constructor(private readonly root = '/proc') {}

  async read(path: ProcPath): Promise<string | undefined> {
    try {
      return await readFile(`${this.root}/${path}`, 'utf8');
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  readSync(path: ProcPath): string | undefined {
    try {
      return readFileSync(`${this.root}/${path}`, 'utf8');
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  close(): void {}
}

/** Statistics lines grow with CPUs (~150 bytes each); a sysctl is a few bytes. */
const STAT_BYTES = 65536;
const SYSCTL_BYTES = 256;

/** Another namespace's files, opened inside it on first read and kept open. */
export class NamespaceProcFiles implements ProcFiles {
  /** fd, or null: the kernel has no such file there. */
  private readonly fds = new Map<ProcPath, number | null>();
  private closed = false;

  /** `netnsFd`: the namespace, kept open by its owner for as long as this object lives. */
  constructor(private readonly netnsFd: number) {}

  async read(path: ProcPath): Promise<string | undefined> {
    const fd = this.open(path);
    if (fd === null) return undefined;
    // A buffer per read: a scrape reads several files at once. pread at 0: procfs makes the
    // text anew on every read from the start.
    const buf = Buffer.allocUnsafe(path === 'net/stat/nf_conntrack' ? STAT_BYTES : SYSCTL_BYTES);
    const { bytesRead } = await pread(fd, buf, 0, buf.length, 0);
    return buf.toString('utf8', 0, bytesRead);
  }

  readSync(path: ProcPath): string | undefined {
    const fd = this.open(path);
    if (fd === null) return undefined;
    const buf = Buffer.allocUnsafe(path === 'net/stat/nf_conntrack' ? STAT_BYTES : SYSCTL_BYTES);
    return buf.toString('utf8', 0, readSync(fd, buf, 0, buf.length, 0));
  }

  close(): void {
    this.closed = true;
    for (const fd of this.fds.values()) if (fd !== null) closeSync(fd);
    this.fds.clear();
  }

  private open(path: ProcPath): number | null {
    if (this.closed) throw new Error('namespace procfs files closed');
    let fd = this.fds.get(path);
    if (fd !== undefined) return fd;
    // thread-self: procfs resolves /proc/self to the process, whose main thread stays home.
    const full = path.startsWith('net/') ? `/proc/thread-self/${path}` : `/proc/${path}`;
    try {
      fd = addon().openFileIn(this.netnsFd, full);
    } catch (err) {
      if ((err as { errno?: number }).errno !== os.errno.ENOENT) throw err;
      fd = null;
    }
    this.fds.set(path, fd);
    return fd;
  }
}

function sysctlNumber(path: ProcPath, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number.parseInt(text, 10);
  if (!Number.isFinite(n)) throw new Error(`${path}: not a number: ${JSON.stringify(text)}`);
  return n;
}

/** A sysctl of `files` as a number; undefined when the kernel has none. */
export async function readSysctl(files: ProcFiles, name: string): Promise<number | undefined> {
  const path: ProcPath = `sys/net/netfilter/${name}`;
  return sysctlNumber(path, await files.read(path));
}

/** readSysctl at once (ProcFiles.readSync). */
export function readSysctlSync(files: ProcFiles, name: string): number | undefined {
  const path: ProcPath = `sys/net/netfilter/${name}`;
  return sysctlNumber(path, files.readSync(path));
}
