/**
 * Every metric conntrack-exporter serves, one registry built from groups, each a file with one
 * job: kernel.ts (what the kernel counts), shadow.ts (the table's flows and the events that feed
 * it), flows.ts (lifetimes, state durations and transitions, observed on the event path),
 * health.ts (the collector's own health), process.ts (Node.js), attribution.ts (who fills the
 * table), nat.ts (address translation) and netns.ts (--netns.all's discovery). Each group reads the namespaces of the scope
 * with their labels, so one declaration serves both modes.
 *
 * One scrape: read the kernel once per shown namespace, collect every family into the exposition
 * model, then render it in the format asked for (exposition/). Scrapes are serialised, so two
 * never interleave their reads.
 */
import { release } from 'node:os';
import { Gauge, Registry } from '@prometheus-io/client';
import { type AttributionSettings, registerAttributionMetrics } from './attribution.js';
import { type ExpositionFormat, encode } from './exposition/formats.js';
import { collect } from './family.js';
import type { FlowMetrics } from './flows.js';
import { registerHealthMetrics } from './health.js';
import { KernelMetrics } from './kernel.js';
import { type NatSettings, registerNatMetrics } from './nat.js';
import { type DiscoveryMetrics, registerNamespaceMetrics } from './netns.js';
import { registerProcessMetrics } from './process.js';
import type { MetricScope } from './scope.js';
import { registerShadowMetrics } from './shadow.js';

export interface MetricsOptions {
  version: string;
  scope: MetricScope;
  /** The tables' observer, rendered here. */
  flows: FlowMetrics;
  /** Who fills the table; absent with --top.k=0. */
  attribution?: AttributionSettings | undefined;
  /** Network address translation (nat.ts). */
  nat?: NatSettings | undefined;
  /** --netns.all's discovery. */
  discovery?: DiscoveryMetrics | undefined;
  /**
   * Node.js process metrics (the client's defaults, process_* and nodejs_*); off with
   * --web.disable-exporter-metrics, and in unit tests for stable output.
   */
  processMetrics?: boolean;
}

export class ExporterMetrics {
  readonly registry = new Registry();
  private readonly kernel: KernelMetrics;
  private readonly scope: MetricScope;
  private renderQueue: Promise<unknown> = Promise.resolve();

  constructor(options: MetricsOptions) {
    const { registry } = this;
    this.scope = options.scope;
    new Gauge({
      name: 'conntrack_exporter_build_info',
      help: 'A metric with a constant 1 labelled by the exporter version, Node.js version and kernel release.',
      labelNames: ['version', 'node_version', 'kernel'] as const,
      registers: [registry],
    }).set({ version: options.version, node_version: process.version, kernel: release() }, 1);
    // Registration order is the order of /metrics (and of the golden test's fixture).
    this.kernel = new KernelMetrics(registry, options.scope);
    registerShadowMetrics(registry, options.scope);
    options.flows.register(registry);
    registerHealthMetrics(registry, options.scope);
    if (options.processMetrics !== false) registerProcessMetrics(registry);
    if (options.attribution) registerAttributionMetrics(registry, options.scope, options.attribution);
    if (options.nat) registerNatMetrics(registry, options.scope, options.nat);
    if (options.discovery) registerNamespaceMetrics(registry, options.scope, options.discovery);
  }

  /** One scrape in `format` (text 0.0.4 by default). */
  render(format?: 'text' | 'openmetrics'): Promise<string>;
  render(format: 'protobuf'): Promise<Uint8Array>;
  render(format: ExpositionFormat): Promise<string | Uint8Array>;
  render(format: ExpositionFormat = 'text'): Promise<string | Uint8Array> {
    const run = async (): Promise<string | Uint8Array> => {
      await this.scope.read();
      this.kernel.discover();
      return encode(format, await collect(this.registry));
    };
    const result = this.renderQueue.then(run, run);
    this.renderQueue = result.catch(() => undefined);
    return result;
  }
}
