/**
 * A memory cgroup for one test, `ctx-mem-<pid>-<n>`: cgroup v2 where the unified hierarchy has
 * the memory controller (/sys/fs/cgroup), else v1's memory hierarchy (/sys/fs/cgroup/memory,
 * as on hosts that still mount v1 controllers, this project's VM among them). A process is put in
 * it by writing its PID to `procs` before it allocates anything; remove() deletes the cgroup once
 * its processes are gone.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { sleep } from './netns.js';

const V2 = '/sys/fs/cgroup';
const V1 = '/sys/fs/cgroup/memory';

let serial = 0;

interface Files {
  limit: string;
  usage: string;
  /** The highest usage seen. */
  peak: string;
}

const V2_FILES: Files = { limit: 'memory.max', usage: 'memory.current', peak: 'memory.peak' };
const V1_FILES: Files = {
  limit: 'memory.limit_in_bytes',
  usage: 'memory.usage_in_bytes',
  peak: 'memory.max_usage_in_bytes',
};

function v2HasMemory(): boolean {
  try {
    return readFileSync(`${V2}/cgroup.subtree_control`, 'utf8').split(/\s+/).includes('memory');
  } catch {
    return false;
  }
}

export class MemoryCgroup {
  private constructor(
    readonly dir: string,
    readonly version: 1 | 2,
    private readonly files: Files,
  ) {}

  /** Why no memory cgroup can be made here, or undefined when one can. */
  static unavailable(): string | undefined {
    if (process.getuid?.() !== 0) return 'needs root to create a cgroup';
    if (v2HasMemory() || existsSync(`${V1}/memory.limit_in_bytes`)) return undefined;
    return 'no memory controller: neither cgroup v2 with memory in cgroup.subtree_control nor a v1 memory hierarchy';
  }

  static create(): MemoryCgroup {
    const name = `ctx-mem-${process.pid}-${serial++}`;
    const cg = v2HasMemory()
      ? new MemoryCgroup(`${V2}/${name}`, 2, V2_FILES)
      : new MemoryCgroup(`${V1}/${name}`, 1, V1_FILES);
    // Not recursive: a cgroup of that name left behind must fail here, not be reused.
    mkdirSync(cg.dir);
    return cg;
  }

  /** The file a PID is written to, to move that process in. */
  get procs(): string {
    return `${this.dir}/cgroup.procs`;
  }

  setLimit(bytes: number): void {
    writeFileSync(`${this.dir}/${this.files.limit}`, String(bytes));
  }

  usage(): number {
    return this.read(this.files.usage);
  }

  peak(): number {
    return this.read(this.files.peak);
  }

  /**
   * Times the cgroup's usage reached its limit and the kernel had to reclaim or fail a charge
   * (v2 `memory.events` max, v1 `memory.failcnt`): the limit was hit, whatever reclaim then freed.
   */
  limitHits(): number {
    if (this.version === 1) return this.read('memory.failcnt');
    const text = readFileSync(`${this.dir}/memory.events`, 'utf8');
    return Number(/^max (\d+)$/m.exec(text)?.[1] ?? 0);
  }

  /** Processes the kernel killed for this cgroup's limit. */
  oomKills(): number {
    const text = readFileSync(
      `${this.dir}/${this.version === 2 ? 'memory.events' : 'memory.oom_control'}`,
      'utf8',
    );
    return Number(/^oom_kill (\d+)$/m.exec(text)?.[1] ?? 0);
  }

  /** Deletes the cgroup, waiting (bounded) for its processes to have left. */
  async remove(): Promise<void> {
    for (let i = 0; ; i++) {
      try {
        rmdirSync(this.dir);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        if (i >= 50) throw err;
        await sleep(100);
      }
    }
  }

  private read(file: string): number {
    return Number(readFileSync(`${this.dir}/${file}`, 'utf8').trim());
  }
}
