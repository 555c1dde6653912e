/**
 * The one way a value reaches /metrics: a metric family whose points are made at scrape time from
 * what the exporter already counts (the table, the collector's counters, the kernel snapshot of
 * this scrape). Counters are the absolute numbers their owners keep, so nothing is mirrored,
 * reset or remembered between scrapes, and a label set that is no longer there is simply not
 * emitted: a namespace that goes idle or away leaves nothing behind.
 *
 * A family is registered in the client's registry (`registerMetric`), which keeps the order of
 * /metrics beside the client's own metrics (process.ts); at a scrape it hands its points to the
 * exposition model (exposition/model.ts), which the format the scraper asked for renders.
 */
import type { Metric, Registry } from '@prometheus-io/client';
import { type ClientMetricData, fromClient } from './exposition/client.js';
import type { FamilyData, HistogramPoint, Labels, ScalarPoint } from './exposition/model.js';

export type LabelSet = Labels;

type LabelValue = string | number;

export type FamilyType = FamilyData['type'];

export class Family {
  private scalars: ScalarPoint[] = [];
  private histograms: HistogramPoint[] = [];

  constructor(
    registry: Registry,
    readonly name: string,
    readonly help: string,
    readonly type: FamilyType,
    /** Emits this scrape's points through `add` (counters, gauges) or `addHistogram`. */
    private readonly fill: (family: Family) => void,
  ) {
    // The registry takes any metric with a name (as its own aggregate() wrappers are); its
    // TypeScript signature names only the client's classes.
    registry.registerMetric(this as unknown as Metric);
  }

  /** A point with `base` (the namespace's labels) before its own; an unknown value is left out. */
  add(base: LabelSet, own: Readonly<Record<string, LabelValue>>, value: number | undefined): void {
    if (value === undefined) return;
    const labels: Record<string, string> = { ...base };
    for (const name in own) labels[name] = String(own[name]);
    this.scalars.push({ labels, value });
  }

  /** One label set of a histogram family. */
  addHistogram(point: HistogramPoint): void {
    this.histograms.push(point);
  }

  /** This scrape's points. */
  data(): FamilyData {
    this.scalars = [];
    this.histograms = [];
    this.fill(this);
    const { name, help, type } = this;
    const data: FamilyData =
      type === 'histogram'
        ? { name, help, type, points: this.histograms }
        : { name, help, type, points: this.scalars };
    this.scalars = [];
    this.histograms = [];
    return data;
  }

  /** Nothing is stored between scrapes (Registry.resetMetrics calls this). */
  reset(): void {}
}

/** Every family of `registry` with this scrape's points, in registration order. */
export async function collect(registry: Registry): Promise<FamilyData[]> {
  const families: FamilyData[] = [];
  for (const m of registry.getMetricsAsArray()) {
    families.push(
      m instanceof Family
        ? m.data()
        : // The client's own metrics (process.ts, the build info): its Metric classes all answer get().
          fromClient(await (m as unknown as { get(): Promise<ClientMetricData> }).get()),
    );
  }
  return families;
}
