/**
 * A histogram filled on the event path and rendered at scrape time. The client's Histogram hashes
 * the label set on every observe(), even through a cached labels() child; here an observation is
 * a bucket search and three additions into a series the caller holds, and the samples are made
 * only when a scrape asks, in the client's own sample format (family.ts).
 */
import type { Registry } from '@prometheus-io/client';
import { Family } from './family.js';

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

/**
 * A histogram whose series are created by series(labels), observed on the event path, and
 * rendered cumulatively by the family register() adds to a registry.
 */
export class FilledHistogram<L extends string> {
  private readonly all = new Map<string, { labels: Readonly<Record<L, string>>; counts: BucketCounts }>();

  constructor(private readonly bounds: readonly number[]) {}

  register(registry: Registry, name: string, help: string): void {
    const bounds = this.bounds;
    const bucket = `${name}_bucket`;
    new Family(registry, name, help, 'histogram', (f) => {
      for (const { labels, counts } of this.all.values()) {
        let acc = 0;
        for (let i = 0; i < bounds.length; i++) {
          acc += counts.counts[i]!;
          // `le` first, as the client renders it.
          f.addSeries(bucket, { le: bounds[i]!, ...labels }, acc);
        }
        f.addSeries(bucket, { le: '+Inf', ...labels }, counts.count);
        f.addSeries(`${name}_sum`, { ...labels }, counts.sum);
        f.addSeries(`${name}_count`, { ...labels }, counts.count);
      }
    });
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
}
