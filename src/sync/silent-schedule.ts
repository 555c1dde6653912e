/**
 * How often to re-dump the table while it holds silent flows: flows the kernel sends no events
 * for (created while nobody listened, with nf_conntrack_events=2: before the exporter started,
 * or while it restarted). Only a dump sees their state changes and ends, so the interval is the
 * bound on how late those are seen.
 *
 * A dump's cost grows with the table, so the interval is derived from how long the last one
 * took: dumping for `d` seconds every `d / budget` seconds keeps the re-dumps within `budget` of
 * one CPU. Small tables dump in milliseconds and get the floor, `minSeconds`.
 *
 * The dump's wall time is taken as its CPU time: the exporter is single-threaded, so the wall
 * time of a dump is an upper bound of the CPU it spent (plus the events it applied meanwhile).
 */

export interface SilentScheduleOptions {
  /** The floor: never re-dump more often than this (seconds); 0 turns the re-dumps off. */
  readonly minSeconds: number;
  /** Share of one CPU that re-dumps may take on average. */
  readonly cpuBudget: number;
}

/** 2% of one core: a 1M-flow table (about 2.5 s a dump) is re-dumped about every 2 minutes. */
export const SILENT_CPU_BUDGET = 0.02;

export const DEFAULT_SILENT_SCHEDULE: SilentScheduleOptions = Object.freeze({
  minSeconds: 5,
  cpuBudget: SILENT_CPU_BUDGET,
});

/**
 * Seconds until the next silent re-dump, given the last dump's duration; undefined when the
 * re-dumps are off.
 */
export function silentInterval(
  lastDumpSeconds: number,
  options: SilentScheduleOptions = DEFAULT_SILENT_SCHEDULE,
): number | undefined {
  if (!(options.minSeconds > 0)) return undefined;
  if (!(options.cpuBudget > 0 && options.cpuBudget <= 1)) {
    throw new RangeError(`silent schedule: cpuBudget ${options.cpuBudget} is outside (0, 1]`);
  }
  const d = Number.isFinite(lastDumpSeconds) && lastDumpSeconds > 0 ? lastDumpSeconds : 0;
  return Math.max(options.minSeconds, d / options.cpuBudget);
}
