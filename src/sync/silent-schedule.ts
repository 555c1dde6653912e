/**
 * How often to re-dump the table while it holds silent flows: flows the kernel sends no events
 * for (created while nobody listened, with nf_conntrack_events=2: before the exporter started,
 * or while it restarted). Only a dump sees their state changes and ends, so the interval is the
 * bound on how late those are seen.
 *
 * A dump's cost grows with the table, so the interval is derived from the CPU the last one
 * took: spending `c` CPU seconds every `c / budget` seconds keeps the re-dumps within `budget`
 * of one CPU. Small tables dump in milliseconds and get the floor, `minSeconds`.
 *
 * The caller measures `c` as the process's CPU time (every thread: the dump's reader thread and
 * the kernel's work in our system calls included) over the dump, which also counts the events
 * applied meanwhile: on a busy host the estimate errs towards dumping less often.
 */

export interface SilentScheduleOptions {
  /** The floor: never re-dump more often than this (seconds); 0 turns the re-dumps off. */
  readonly minSeconds: number;
  /** Share of one CPU that re-dumps may take on average. */
  readonly cpuBudget: number;
}

/** 2% of one core: a table whose dump costs 1 CPU second is re-dumped every 50 s. */
export const SILENT_CPU_BUDGET = 0.02;

export const DEFAULT_SILENT_SCHEDULE: SilentScheduleOptions = Object.freeze({
  minSeconds: 5,
  cpuBudget: SILENT_CPU_BUDGET,
});

/**
 * Seconds until the next silent re-dump, given the CPU seconds of the last dump; undefined when
 * the re-dumps are off.
 */
export function silentInterval(
  lastDumpCpuSeconds: number,
  options: SilentScheduleOptions = DEFAULT_SILENT_SCHEDULE,
): number | undefined {
  if (!(options.minSeconds > 0)) return undefined;
  if (!(options.cpuBudget > 0 && options.cpuBudget <= 1)) {
    throw new RangeError(`silent schedule: cpuBudget ${options.cpuBudget} is outside (0, 1]`);
  }
  const d = Number.isFinite(lastDumpCpuSeconds) && lastDumpCpuSeconds > 0 ? lastDumpCpuSeconds : 0;
  return Math.max(options.minSeconds, d / options.cpuBudget);
}
