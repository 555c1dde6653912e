/** What the fake kernel of the metrics tests reports, one read at a time. */
import type { CpuStats } from '../../../src/ctnetlink/stats.js';
import type { KernelSnapshot } from '../../../src/kernel/stats.js';

/**
 * One read: a table of 3 entries out of 262144 in 65536 buckets, 1 expectation out of 4096, two
 * timeouts, a slab cache of 144 objects of 256 bytes, events for flows created while someone
 * listens (mode 2), accounting on, timestamps off, no failed reads; `over` replaces any.
 */
export function kernelSnapshot(perCpu: CpuStats[], over: Partial<KernelSnapshot> = {}): KernelSnapshot {
  return {
    entries: 3,
    limit: 262144,
    buckets: 65536,
    perCpu,
    expectations: 1,
    expectLimit: 4096,
    timeouts: [
      { protocol: 'tcp', state: 'TIME_WAIT', seconds: 120 },
      { protocol: 'udp', state: 'UNREPLIED', seconds: 30 },
    ],
    slab: { objects: 144, objectSize: 256 },
    eventsMode: 2,
    timestamps: 0,
    accounting: 1,
    errors: 0,
    ...over,
  };
}

/** One CPU's counters, all attributes known. */
export function cpu(n: number, values: CpuStats['values']): CpuStats {
  return { cpu: n, values };
}
