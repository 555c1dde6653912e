/**
 * What one scrape shows, before any format: metric families with their points. Every format
 * (text.ts, openmetrics.ts, protobuf.ts) renders this and only this, so the three cannot say
 * different things. Names are the text format's (a counter ends in `_total`); each formatter
 * derives its own spelling from them.
 */

/** Label names and values in the order they are shown. */
export type Labels = Readonly<Record<string, string>>;

export interface ScalarPoint {
  readonly labels: Labels;
  readonly value: number;
}

/** A span of consecutive native buckets, as metrics.proto's BucketSpan. */
export interface BucketSpan {
  /** Gap to the previous span's end, or the first bucket's index for the first span. */
  readonly offset: number;
  readonly length: number;
}

/**
 * A native (exponential) histogram's buckets: bucket i of `schema` holds values in
 * (2^((i-1)/2^schema), 2^(i/2^schema)]; values within ±zeroThreshold count in the zero bucket.
 * Only positive buckets: the exporter observes durations, never below zero.
 */
export interface NativeBuckets {
  readonly schema: number;
  readonly zeroThreshold: number;
  readonly zeroCount: number;
  readonly spans: readonly BucketSpan[];
  /** Each bucket's count minus the previous bucket's (the first: minus 0), in span order. */
  readonly deltas: readonly number[];
}

export interface HistogramPoint {
  readonly labels: Labels;
  /** Classic buckets: finite upper bounds, increasing, and their cumulative counts. */
  readonly bounds: readonly number[];
  readonly cumulative: readonly number[];
  readonly count: number;
  readonly sum: number;
  /** Native buckets beside the classic ones (the protobuf format carries both). */
  readonly native?: NativeBuckets | undefined;
  /** When the series started counting (seconds since the epoch). */
  readonly created?: number | undefined;
}

interface FamilyBase {
  /** As the text format names it: counters end in `_total`. */
  readonly name: string;
  readonly help: string;
}

export type FamilyData =
  | (FamilyBase & { readonly type: 'counter' | 'gauge'; readonly points: readonly ScalarPoint[] })
  | (FamilyBase & { readonly type: 'histogram'; readonly points: readonly HistogramPoint[] });

/** Base units a family's name may end in; OpenMetrics and protobuf declare them as its unit. */
const UNITS = ['seconds', 'bytes'] as const;

/** The family's name without a counter's `_total`, as OpenMetrics names families. */
export function familyName(f: FamilyData): string {
  return f.type === 'counter' && f.name.endsWith('_total') ? f.name.slice(0, -'_total'.length) : f.name;
}

/** The unit the family name ends in (`_seconds`, `_bytes`), if any. */
export function unitOf(f: FamilyData): string | undefined {
  const name = familyName(f);
  return UNITS.find((u) => name.endsWith(`_${u}`));
}
