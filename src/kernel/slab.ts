/**
 * Kernel memory held by the conntrack table's entries: the `nf_conntrack` slab cache, as objects
 * the cache holds (in use or free in its slabs: what the table has taken from the system, which a
 * shrinking table does not give back at once) times the size of each object (with its metadata
 * and alignment: 256 bytes on a 6.18 x86-64 kernel). The cache is one for the whole node: every
 * network namespace's entries live in it.
 *
 * Read from SLUB's sysfs directory for the cache, two small files at once (~30 µs: sysfs makes
 * them from counters in memory, so the read never waits for a disk), not /proc/slabinfo, which
 * walks every cache of the kernel (~350 µs for 234 caches here); slabinfo is the fallback where
 * /sys/kernel/slab is not there. Absent (no data, not an error) when the cache is merged
 * with another (its sysfs entry is then a symlink to the shared cache, or other caches are merged
 * into it, or slabinfo has no line for it): its numbers would not be conntrack's alone.
 */
import { lstatSync, readFileSync } from 'node:fs';

export interface SlabCache {
  /** Objects in the cache's slabs, in use or free (slabinfo's <num_objs>, sysfs total_objects). */
  objects: number;
  /** Bytes per object with metadata and alignment (slabinfo's <objsize>, sysfs slab_size). */
  objectSize: number;
}

const CACHE = 'nf_conntrack';

const isMissing = (err: unknown): boolean => (err as NodeJS.ErrnoException).code === 'ENOENT';

/**
 * The cache's line of /proc/slabinfo (version 2.x: `name active_objs num_objs objsize ...`);
 * undefined when it has none (merged into another cache, or conntrack not loaded).
 */
export function parseSlabinfo(text: string, cache = CACHE): SlabCache | undefined {
  const [header, ...lines] = text.split('\n');
  if (!/^slabinfo - version: 2\./.test(header ?? '')) throw new Error(`unknown slabinfo format: ${header}`);
  for (const line of lines) {
    const [name, , num, size] = line.trim().split(/\s+/);
    if (name !== cache) continue;
    if (!/^\d+$/.test(num ?? '') || !/^\d+$/.test(size ?? ''))
      throw new Error(`slabinfo: bad line for ${cache}: ${line}`);
    return { objects: Number(num), objectSize: Number(size) };
  }
  return undefined;
}

/** A SLUB sysfs number, e.g. total_objects' `144 N0=144` (the total, then per NUMA node). */
export function parseSlabNumber(text: string): number {
  const m = /^\d+/.exec(text.trim());
  if (m === null) throw new Error(`not a slab count: ${JSON.stringify(text)}`);
  return Number(m[0]);
}

export class SlabReader {
  /** Constant for the cache's life. */
  private objectSize: number | undefined;

  constructor(
    private readonly sysSlab = '/sys/kernel/slab',
    private readonly slabinfo = '/proc/slabinfo',
  ) {}

  /** The cache as it is now; undefined when merged or not there; throws when it cannot be read. */
  read(): SlabCache | undefined {
    const dir = `${this.sysSlab}/${CACHE}`;
    let isDir: boolean;
    try {
      isDir = lstatSync(dir).isDirectory();
    } catch (err) {
      if (!isMissing(err)) throw err;
      return this.fromSlabinfo();
    }
    // A symlink: the cache is an alias of a merged one.
    if (!isDir) return undefined;
    const number = (file: string) => parseSlabNumber(readFileSync(`${dir}/${file}`, 'utf8'));
    if (number('aliases') > 0) return undefined;
    const objects = number('total_objects');
    this.objectSize ??= number('slab_size');
    return { objects, objectSize: this.objectSize };
  }

  /** No SLUB sysfs (not mounted): the cache's line of /proc/slabinfo, if it has one. */
  private fromSlabinfo(): SlabCache | undefined {
    let text: string;
    try {
      text = readFileSync(this.slabinfo, 'utf8');
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
    return parseSlabinfo(text);
  }
}
