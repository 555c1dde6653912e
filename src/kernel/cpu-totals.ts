/**
 * The kernel keeps each per-CPU statistic as a wrapping u32; adding per-CPU differences modulo
 * 2^32 gives totals that never go back, across wraps, for as long as this object lives.
 */
import { CPU_STAT_NAMES, type CpuStatName, type CpuStats } from '../ctnetlink/stats.js';

export class CpuTotals {
  readonly totals: Partial<Record<CpuStatName, number>> = {};
  private readonly last = new Map<number, Partial<Record<CpuStatName, number>>>();

  add(perCpu: readonly CpuStats[]): void {
    for (const s of perCpu) {
      const last = this.last.get(s.cpu) ?? {};
      for (const name of CPU_STAT_NAMES) {
        const v = s.values[name];
        if (v === undefined) continue;
        this.totals[name] = (this.totals[name] ?? 0) + ((v - (last[name] ?? 0)) >>> 0);
      }
      this.last.set(s.cpu, { ...s.values });
    }
  }
}
