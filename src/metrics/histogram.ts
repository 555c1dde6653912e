/**
 * A histogram filled on the event path and rendered at scrape time. The client's Histogram hashes
 * the label set on every observe(), even through a cached labels() child; here an observation is
 * a bucket search and three additions into a series the caller holds, and the client only renders.
 */
import { Histogram, type Registry } from '@prometheus-io/client';

/** One label set's observations: counts per bucket (not cumulative), sum and count. */
export class BucketCounts {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    if (i < bounds.length) this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

/** A rendered sample, in the shape the client's registry formats for histograms (labels first, then the series' own). */
interface Sample {
  labels: Record<string, string | number>;
  sharedLabels: Readonly<Record<string, string>>;
  value: number;
  metricName: string;
  exemplar: null | undefined;
}

/**
 * A Histogram to the registry (name, HELP, TYPE and the client's sample format), whose samples come
 * from series(labels): the inherited observe() feeds a store this class does not render.
 */
export class FilledHistogram<L extends string> extends Histogram<L> {
  private readonly all = new Map<string, { labels: Readonly<Record<L, string>>; counts: BucketCounts }>();

  constructor(
    registry: Registry,
    private readonly name: string,
    private readonly help: string,
    labelNames: readonly L[],
    private readonly bounds: readonly number[],
  ) {
    super({ name, help, labelNames, buckets: [...bounds], registers: [registry] });
  }

  /** The series of one label set, created (empty, and rendered from now on) on first use. */
  series(labels: Readonly<Record<L, string>>): BucketCounts {
    const key = JSON.stringify(labels);
    let s = this.all.get(key);
    if (!s) {
      s = { labels: { ...labels }, counts: new BucketCounts(this.bounds) };
      this.all.set(key, s);
    }
    return s.counts;
  }

  /**
   * The registry renders a Histogram from this method (get() splays its result for JSON): the
   * same samples the client's own histogram makes, so a scraper sees no difference.
   */
  async getForPromString(): Promise<{
    name: string;
    help: string;
    type: 'histogram';
    values: Sample[];
    aggregator: 'sum';
  }> {
    const bucket = `${this.name}_bucket`;
    const values: Sample[] = [];
    for (const { labels, counts } of this.all.values()) {
      let acc = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        acc += counts.counts[i]!;
        values.push({
          labels: { le: this.bounds[i]! },
          sharedLabels: labels,
          value: acc,
          metricName: bucket,
          exemplar: null,
        });
      }
      values.push(
        {
          labels: { le: '+Inf' },
          sharedLabels: labels,
          value: counts.count,
          metricName: bucket,
          exemplar: null,
        },
        {
          labels: {},
          sharedLabels: labels,
          value: counts.sum,
          metricName: `${this.name}_sum`,
          exemplar: undefined,
        },
        {
          labels: {},
          sharedLabels: labels,
          value: counts.count,
          metricName: `${this.name}_count`,
          exemplar: undefined,
        },
      );
    }
    return { name: this.name, help: this.help, type: 'histogram', values, aggregator: 'sum' };
  }
}
