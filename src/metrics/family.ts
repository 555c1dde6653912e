/**
 * The one way a value reaches /metrics: a metric family whose samples are made at scrape time from
 * what the exporter already counts (the table, the collector's counters, the kernel snapshot of
 * this scrape). Counters are the absolute numbers their owners keep, so nothing is mirrored,
 * reset or remembered between scrapes, and a label set that is no longer there is simply not
 * emitted: a namespace that goes idle or away leaves nothing behind.
 *
 * A family is handed to the client's registry through its public contract (`registerMetric`,
 * then `get()` returns name, help, type and values), so the client formats the text and an
 * update of the client cannot change what a family means.
 */
import type { Metric, Registry } from '@prometheus-io/client';

export type LabelSet = Readonly<Record<string, string>>;

type LabelValue = string | number;

/** One sample in the client's format: its labels, its value, and for histograms the series name. */
export interface Sample {
  labels: Record<string, LabelValue>;
  value: number;
  metricName?: string;
}

export type FamilyType = 'counter' | 'gauge' | 'histogram';

export class Family {
  readonly aggregator = 'sum';
  private values: Sample[] = [];

  constructor(
    registry: Registry,
    readonly name: string,
    readonly help: string,
    readonly type: FamilyType,
    /** Emits this scrape's samples through `add`. */
    private readonly fill: (family: Family) => void,
  ) {
    // The registry takes any metric that answers get() (as its own aggregate() wrappers do);
    // its TypeScript signature names only the client's classes.
    registry.registerMetric(this as unknown as Metric);
  }

  /** A sample with `base` (the namespace's labels) before its own; an unknown value is left out. */
  add(base: LabelSet, own: Readonly<Record<string, LabelValue>>, value: number | undefined): void {
    if (value === undefined) return;
    this.values.push({ labels: { ...base, ...own }, value });
  }

  /** A sample of a histogram's series (`_bucket`, `_sum`, `_count`). */
  addSeries(metricName: string, labels: Record<string, LabelValue>, value: number): void {
    this.values.push({ labels, value, metricName });
  }

  async get(): Promise<{
    name: string;
    help: string;
    type: FamilyType;
    values: Sample[];
    aggregator: 'sum';
  }> {
    this.values = [];
    this.fill(this);
    const values = this.values;
    this.values = [];
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** Nothing is stored between scrapes (Registry.resetMetrics calls this). */
  reset(): void {}
}
