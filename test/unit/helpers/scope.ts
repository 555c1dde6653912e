/**
 * A metrics scope without sockets: namespaces whose table, collector counters and attribution the
 * test drives, and whose kernel reads come from a script of snapshots (or a KernelStatsReader).
 */
import type { Attribution } from '../../../src/attribution/attribution.js';
import type { NatTracking } from '../../../src/attribution/nat.js';
import { CpuTotals } from '../../../src/kernel/cpu-totals.js';
import type { KernelSnapshot } from '../../../src/kernel/stats.js';
import type { LabelSet } from '../../../src/metrics/family.js';
import { FlowMetrics } from '../../../src/metrics/flows.js';
import { ExporterMetrics, type MetricsOptions } from '../../../src/metrics/metrics.js';
import type { MetricScope, NamespaceMetrics } from '../../../src/metrics/scope.js';
import { CollectorCounters } from '../../../src/sync/collector.js';
import type { SocketHealth } from '../../../src/sync/resubscribe.js';
import { ShadowTable } from '../../../src/table/table.js';
import { FakeClock } from './flows.js';

/** A socket's state as the test sets it. */
export function fakeSocket(name: string, up = true, failures = 0): SocketHealth {
  return { name, up, lost: false, failures };
}

export class FakeNamespace implements NamespaceMetrics {
  kernel: KernelSnapshot | undefined;
  kernelReadErrors = 0;
  sockets: SocketHealth[] = [fakeSocket('stats'), fakeSocket('dump')];
  readonly counters = new CollectorCounters();
  private readonly cpu = new CpuTotals();

  constructor(
    readonly labels: LabelSet,
    readonly table: ShadowTable,
    /** Each read takes the next snapshot; the last one repeats. */
    private readonly readKernel: () => Promise<KernelSnapshot>,
    readonly attribution: Attribution | undefined = undefined,
    readonly nat: NatTracking | undefined = undefined,
  ) {}

  get cpuTotals() {
    return this.cpu.totals;
  }

  async read(): Promise<void> {
    const k = await this.readKernel();
    this.kernel = k;
    this.kernelReadErrors += k.errors;
    this.cpu.add(k.perCpu);
  }
}

export function scripted(snapshots: KernelSnapshot[]): () => Promise<KernelSnapshot> {
  let i = 0;
  return async () => {
    const s = snapshots[Math.min(i++, snapshots.length - 1)];
    if (s === undefined) throw new Error('no snapshot');
    return s;
  };
}

export class FakeScope implements MetricScope {
  namespaces: FakeNamespace[] = [];
  events = { lost: 0, receiveBuffer: undefined as number | undefined, notFromKernel: 0 };
  sockets: SocketHealth[] = [fakeSocket('events')];

  sharedSockets(): readonly SocketHealth[] {
    return this.sockets;
  }

  shown(): Iterable<FakeNamespace> {
    return this.namespaces;
  }

  own(): FakeNamespace | undefined {
    return this.namespaces[0];
  }

  async read(): Promise<void> {
    await Promise.all(this.namespaces.map((n) => n.read()));
  }
}

/** Default mode: one unlabelled namespace over a fresh table observed by the metrics' FlowMetrics. */
export function defaultModeMetrics(
  kernel: () => Promise<KernelSnapshot>,
  options: Partial<MetricsOptions> & { kernelTimestamps?: boolean; natTracking?: NatTracking } = {},
) {
  const clock = new FakeClock();
  const { kernelTimestamps, natTracking, ...metricsOptions } = options;
  const flows = new FlowMetrics(kernelTimestamps ?? false);
  const scope = new FakeScope();
  const table = new ShadowTable(flows, clock.read, natTracking);
  const ns = new FakeNamespace({}, table, kernel, undefined, natTracking);
  scope.namespaces.push(ns);
  const metrics = new ExporterMetrics({
    version: '1.2.3',
    scope,
    flows,
    processMetrics: false,
    ...metricsOptions,
  });
  return { clock, flows, scope, ns, table, counters: ns.counters, metrics };
}
