/**
 * The memory budget: the exporter knows its limit and, before reaching it, stops attribution's
 * per-key arrays from growing (the only part of its memory that grows with distinct keys, which a
 * spoofed flood controls); the table and the kernel counts are never degraded.
 *
 * The limit is --memory.limit's, or else the memory cgroup's (cgroup.ts). What is compared with
 * it follows where it comes from: the cgroup's usage less inactive page cache (what the OOM
 * killer will not reclaim) for the cgroup's limit, the process's RSS for the flag's (the flag is
 * this process's budget, whatever else shares its cgroup).
 *
 * The table comes first: until it holds nf_conntrack_max flows, the memory it will still take
 * (ROW_BYTES a flow, its own rows and attribution's ids beside them) is reserved, counted as if
 * used. Without the reserve, attribution could fill the budget while the table is small, and the
 * table's growth after that would run into the limit.
 *
 * Read once a second on a timer (one small file, or RSS from libuv): cheap enough for an idle
 * exporter and never per event. When memory used plus the reserve reaches 80% of the limit
 * attribution is degraded; it recovers below 70% (hysteresis: a reading wobbling around one mark
 * does not flap). Between readings, attribution asks before each growth of its arrays and the
 * bytes granted count until the next reading, so a burst cannot overshoot the mark by more than
 * what other code allocates in a second. One log line when it degrades, one when it recovers.
 */
import type { Logger } from 'pino';
import { type CgroupMemory, cgroupMemory } from './cgroup.js';

/** Attribution degrades at this share of the limit... */
const HIGH = 0.8;
/** ...and recovers below this one. */
const LOW = 0.7;
const INTERVAL_MS = 1000;
/** The cgroup's limit is re-read every this many readings (a pod resized in place gets a new one). */
const LIMIT_EVERY = 60;
/**
 * Memory a flow takes that the budget never degrades: the table's row and index slot, and
 * attribution's four ids beside it. Measured: RSS grew 65 MiB from idle to 1,000,000 flows with
 * attribution degraded from the start (README "Memory").
 */
export const ROW_BYTES = 66;

/** What the table will still take until it holds `maxFlows` (nf_conntrack_max) flows. */
export function tableReserve(maxFlows: number | undefined, flows: number): number {
  return maxFlows === undefined ? 0 : ROW_BYTES * Math.max(0, maxFlows - flows);
}

export interface MemoryMeter {
  /** Where the limit comes from, for the log: `--memory.limit` or `cgroup v2 <dir>`. */
  readonly source: string;
  /** The limit, bytes; re-read by refreshLimit. */
  readonly limit: number;
  /** Memory to compare with the limit, bytes. Below `low` a cheaper, larger figure may do. */
  read(low: number): number;
  /** The limit now (undefined: unchanged or gone). */
  refreshLimit?(): number | undefined;
}

/** Memory that is not used yet but must stay free (the table's growth), bytes. */
export type Reserve = () => number;

export class MemoryBudget {
  private limit: number;
  /** The last reading, bytes. */
  private used = 0;
  /** Granted to attribution since that reading. */
  private granted = 0;
  private samples = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Attribution takes no new keys beyond its arrays' current capacity. */
  degraded = false;
  /** Set once the tables exist (they are built with this budget). */
  reserve: Reserve = () => 0;

  constructor(
    private readonly meter: MemoryMeter,
    private readonly log: Logger,
  ) {
    this.limit = meter.limit;
    this.sample();
  }

  get limitBytes(): number {
    return this.limit;
  }

  private get high(): number {
    return this.limit * HIGH;
  }

  private get low(): number {
    return this.limit * LOW;
  }

  /** Reads the memory once and moves between normal and degraded. */
  sample(): void {
    if (++this.samples % LIMIT_EVERY === 0) this.limit = this.meter.refreshLimit?.() ?? this.limit;
    try {
      this.used = this.meter.read(this.low);
    } catch (err) {
      // A cgroup file that cannot be read: keep the last reading, try again next second.
      this.log.debug({ err }, 'cannot read memory usage');
      return;
    }
    this.granted = 0;
    const committed = this.committed();
    if (!this.degraded && committed >= this.high) this.degrade('memory');
    else if (this.degraded && committed < this.low) this.recover();
  }

  /** Used at the last reading, granted since, and reserved for the table. */
  private committed(): number {
    return this.used + this.granted + this.reserve();
  }

  // GrowthBudget (attribution/interner.ts).

  headroom(): number {
    return this.degraded ? 0 : Math.max(0, this.high - this.committed());
  }

  spent(bytes: number): void {
    this.granted += bytes;
  }

  exhausted(): void {
    if (!this.degraded) this.degrade('growth');
  }

  start(intervalMs = INTERVAL_MS): void {
    this.timer ??= setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private degrade(reason: 'memory' | 'growth'): void {
    this.degraded = true;
    this.log.warn(
      {
        reason,
        usedBytes: this.used + this.granted,
        reservedBytes: this.reserve(),
        limitBytes: this.limit,
        source: this.meter.source,
      },
      reason === 'memory'
        ? `memory used and reserved for the table above ${HIGH * 100}% of the limit: attribution takes no new keys, their flows count in "other" (the table and the kernel counts are exact)`
        : `attribution's arrays cannot grow within ${HIGH * 100}% of the memory limit: new keys count in "other" (the table and the kernel counts are exact)`,
    );
  }

  private recover(): void {
    this.degraded = false;
    this.log.info(
      {
        usedBytes: this.used,
        reservedBytes: this.reserve(),
        limitBytes: this.limit,
        source: this.meter.source,
      },
      `memory used and reserved below ${LOW * 100}% of the limit: attribution takes new keys again`,
    );
  }
}

/** The cgroup as a meter: usage, less inactive page cache when it matters (near the marks). */
function cgroupMeter(cg: CgroupMemory, root: string): MemoryMeter {
  return {
    source: `cgroup v${cg.version} ${cg.dir}`,
    limit: cg.limit,
    read: (low) => {
      const usage = cg.usage();
      // Below the low mark the larger figure already says "fine": memory.stat only near the marks.
      return usage < low ? usage : Math.max(0, usage - cg.inactiveFile());
    },
    refreshLimit: () => cgroupMemory(root)?.limit,
  };
}

/**
 * The budget for --memory.limit (`limitFlag`: bytes; 0: off; undefined: the cgroup's), or
 * undefined when there is no limit. Logs which limit applies.
 */
export function memoryBudget(
  limitFlag: number | undefined,
  log: Logger,
  root = '',
): MemoryBudget | undefined {
  if (limitFlag === 0) {
    log.info('memory budget off (--memory.limit=0): attribution grows with the table');
    return undefined;
  }
  const cg = limitFlag === undefined ? cgroupMemory(root) : undefined;
  const meter: MemoryMeter | undefined =
    limitFlag !== undefined
      ? { source: '--memory.limit', limit: limitFlag, read: () => process.memoryUsage.rss() }
      : cg && cgroupMeter(cg, root);
  if (!meter) {
    log.info(
      'no memory limit (no memory cgroup limit, no --memory.limit): attribution grows with the table, bounded by nf_conntrack_max',
    );
    return undefined;
  }
  log.info(
    { limitBytes: meter.limit, source: meter.source },
    `memory limit found: attribution stops growing at ${HIGH * 100}% of it`,
  );
  return new MemoryBudget(meter, log);
}
