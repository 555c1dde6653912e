/**
 * Every metric conntrack-exporter serves in default mode, one registry built from groups, each a
 * file with one job: kernel.ts (what the kernel counts, read once per scrape), shadow.ts (the
 * table's flows and the events that feed it), flows.ts (lifetimes, state durations and
 * transitions, observed on the event path), health.ts (the collector's own health) and
 * process.ts (Node.js). attribution.ts and netns.ts add to or replace parts of this registry.
 *
 * The registry renders the Prometheus text format only: @prometheus-io/client (like prom-client
 * 15.1.3 before it) renames counters in place when rendering OpenMetrics, so one metric object must
 * never be rendered in both.
 */
import { release } from 'node:os';
import { Gauge, Registry } from '@prometheus-io/client';
import type { KernelSnapshot } from '../kernel/stats.js';
import type { CollectorCounters } from '../sync/collector.js';
import type { ShadowTable } from '../table/table.js';
import { FlowMetrics } from './flows.js';
import { registerHealthMetrics } from './health.js';
import { KernelMetrics } from './kernel.js';
import { registerProcessMetrics } from './process.js';
import { registerShadowMetrics } from './shadow.js';

export interface MetricSources {
  table: ShadowTable;
  counters: CollectorCounters;
  /** Reads the kernel's own counts; called once per scrape. */
  readKernel: () => Promise<KernelSnapshot>;
  /** Effective SO_RCVBUF of the event socket. */
  rcvbuf: () => number | undefined;
}

export interface MetricsOptions {
  version: string;
  /** nf_conntrack_timestamp was on at start: lifetimes come from the kernel's start stamp. */
  kernelTimestamps: boolean;
  /** Node.js process metrics (the client's defaults); off in unit tests for stable output. */
  processMetrics?: boolean;
}

export class ExporterMetrics {
  readonly registry = new Registry();
  /** The shadow table's observer (TableObserver): called per event, rendered per scrape. */
  readonly flows: FlowMetrics;
  private readonly kernel: KernelMetrics;
  private sources: MetricSources | undefined;
  private renderQueue: Promise<unknown> = Promise.resolve();

  constructor(options: MetricsOptions) {
    const registry = this.registry;
    new Gauge({
      name: 'conntrack_exporter_build_info',
      help: 'A metric with a constant 1 labelled by the exporter version, Node.js version and kernel release.',
      labelNames: ['version', 'node_version', 'kernel'] as const,
      registers: [registry],
    }).set({ version: options.version, node_version: process.version, kernel: release() }, 1);
    // Registration order is the order of /metrics (and of the golden test's fixture).
    this.kernel = new KernelMetrics(registry);
    registerShadowMetrics(
      registry,
      () => this.sources?.table,
      () => this.sources?.counters,
    );
    this.flows = new FlowMetrics(registry, options.kernelTimestamps);
    registerHealthMetrics(registry, {
      table: () => this.sources?.table,
      counters: () => this.sources?.counters,
      kernelEntries: () => this.kernel.snapshot?.entries,
      scrapeReadErrors: () => this.kernel.readErrors,
      rcvbuf: () => this.sources?.rcvbuf(),
    });
    if (options.processMetrics !== false) registerProcessMetrics(registry);
  }

  attach(sources: MetricSources): void {
    this.sources = sources;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** One scrape: read the kernel, then render. Serialised so counter mirrors never go backwards. */
  render(): Promise<string> {
    const run = async (): Promise<string> => {
      if (this.sources) this.kernel.update(await this.sources.readKernel());
      return this.registry.metrics();
    };
    const result = this.renderQueue.then(run, run);
    this.renderQueue = result.catch(() => undefined);
    return result;
  }
}
