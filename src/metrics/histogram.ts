/**
 * A histogram filled on the event path and rendered at scrape time. The client's Histogram hashes
 * the label set on every observe(), even through a cached labels() child; here an observation is
 * a bucket search and a few additions into a series the caller holds, and the points are made
 * only when a scrape asks (family.ts).
 *
 * Every series keeps its classic buckets and native (exponential) buckets side by side, as
 * client_golang's histograms with both do: the protobuf format carries both in one message.
 *
 * Native schema 3: 8 buckets per power of two, each 9% wider than the last (2^(1/8) = 1.0905), so
 * a quantile is known within ±4.4%, the resolution client_golang's bucket factor 1.1 picks and
 * Kubernetes' components expose. Durations from a microsecond to days span about 38 powers of two,
 * about 300 buckets at most; spans keep only the used ones. The zero threshold is 2^-20 s (about
 * 1 µs, a bucket boundary of every schema): the kernel's timestamps are in nanoseconds, so
 * sub-millisecond lifetimes (loopback, refused connections) are resolved, below the classic
 * buckets' first bound of 1 ms; what lasts less counts as zero.
 */
import { endianness } from 'node:os';
import type { Registry } from '@prometheus-io/client';
import type { HistogramPoint, NativeBuckets } from './exposition/model.js';
import { Family } from './family.js';

export const NATIVE_SCHEMA = 3;
export const NATIVE_ZERO_THRESHOLD = 2 ** -20;
const PER_OCTAVE = 2 ** NATIVE_SCHEMA;
/** The first bucket above the zero threshold: (2^-20, 2^(-159/8)]. */
const FIRST_KEY = -20 * PER_OCTAVE + 1;
/** Buckets allocated up front: up to 2^19 s (6 days, beyond the 5-day TCP timeout). */
const INITIAL_KEYS = 19 * PER_OCTAVE - FIRST_KEY + 1;

/**
 * Upper bounds of the fraction (v = frac * 2^exp, frac in [0.5, 1)) per bucket of an octave:
 * 2^(i/8) / 2, client_golang's nativeHistogramBounds[3] digit for digit, so a value on a boundary
 * lands in the same bucket as there; 2 after them, which no fraction reaches.
 */
const OCTAVE = Float64Array.of(
  0.5,
  0.5452538663326288,
  0.5946035575013605,
  0.6484197773255048,
  0.7071067811865475,
  0.7711054127039704,
  0.8408964152537144,
  0.9170040432046711,
  2,
);

/**
 * By the fraction's top 8 mantissa bits (256 slots of 1/512 each): how many of OCTAVE's bounds lie
 * below the slot. The bounds are at least 0.045 apart, so a slot holds at most one, and one
 * comparison with it finishes the count. A binary search over the 8 bounds took 30-40 ns on
 * random durations (its branches cannot be predicted); this takes about 6.
 */
const SLOT = new Uint8Array(256);
for (let m = 0; m < 256; m++) {
  const low = 0.5 * (1 + m / 256);
  let below = 0;
  while (below < PER_OCTAVE && OCTAVE[below]! < low) below++;
  SLOT[m] = below;
}

const word = new Float64Array(1);
const halves = new Uint32Array(word.buffer);
const HIGH = endianness() === 'LE' ? 1 : 0;

/**
 * The native bucket index of `v` (> the zero threshold, finite): i such that
 * 2^((i-1)/8) < v <= 2^(i/8). Exponent and fraction come from the float's bits (Go's
 * math.Frexp); the fraction's place in its octave from SLOT and one comparison.
 */
export function nativeKey(v: number): number {
  word[0] = v;
  const high = halves[HIGH]!;
  const exp = ((high >>> 20) & 0x7ff) - 1022;
  let i = SLOT[(high >>> 12) & 0xff]!;
  halves[HIGH] = (high & 0x000fffff) | 0x3fe00000;
  if (OCTAVE[i]! < word[0]!) i++;
  return i + (exp - 1) * PER_OCTAVE;
}

/**
 * Dense counts (index j is bucket firstKey + j) as metrics.proto's spans and deltas, as
 * client_golang's makeBuckets does: a gap of one or two empty buckets stays inside a span (as
 * zero deltas), a longer one starts a new span.
 */
export function spansAndDeltas(
  counts: ArrayLike<number>,
  firstKey: number,
): Pick<NativeBuckets, 'spans' | 'deltas'> {
  const spans: { offset: number; length: number }[] = [];
  const deltas: number[] = [];
  let previous = 0;
  let next = 0;
  for (let j = 0; j < counts.length; j++) {
    const count = counts[j]!;
    if (count === 0) continue;
    const key = firstKey + j;
    const gap = key - next;
    let span = spans.at(-1);
    if (span === undefined || gap > 2) {
      span = { offset: gap, length: 0 };
      spans.push(span);
    } else {
      for (let g = 0; g < gap; g++) {
        deltas.push(-previous);
        previous = 0;
        span.length++;
      }
    }
    deltas.push(count - previous);
    previous = count;
    span.length++;
    next = key + 1;
  }
  return { spans, deltas };
}

/** The upper bound of native bucket `key`: 2^(key/8), exactly as nativeKey draws it. */
function nativeUpper(key: number): number {
  const octave = Math.floor(key / PER_OCTAVE);
  return 2 ** octave * 2 * OCTAVE[key - octave * PER_OCTAVE]!;
}

/**
 * For each allocated native bucket, the classic bucket its lowest values fall in (the number of
 * classic bounds at or below the native bucket's lower edge). A native bucket is 9% wide and the
 * classic bounds at least 20% apart, so from there the classic search takes at most one step: the
 * native key, computed anyway, replaces the classic linear search (13 ns on random durations).
 */
const classicStarts = new WeakMap<readonly number[], Uint16Array>();
function classicStart(bounds: readonly number[]): Uint16Array {
  let starts = classicStarts.get(bounds);
  if (starts === undefined) {
    starts = new Uint16Array(INITIAL_KEYS);
    for (let j = 0; j < INITIAL_KEYS; j++) {
      const lower = nativeUpper(FIRST_KEY + j - 1);
      let i = 0;
      while (i < bounds.length && bounds[i]! <= lower) i++;
      starts[j] = i;
    }
    classicStarts.set(bounds, starts);
  }
  return starts;
}

/** One label set's observations: counts per classic bucket (not cumulative), native buckets, sum and count. */
export class BucketCounts {
  readonly counts: Float64Array;
  /** Native bucket FIRST_KEY + j at j; grows when a value beyond it comes. */
  native = new Float64Array(INITIAL_KEYS);
  zeroCount = 0;
  sum = 0;
  count = 0;
  /** When this series was made (seconds since the epoch). */
  readonly created = Date.now() / 1000;

  private readonly classicFrom: Uint16Array;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
    this.classicFrom = classicStart(bounds);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    // Where the classic search starts: the native bucket's classic bucket, or the first.
    let i = 0;
    // The table observes no value below zero (table.ts checks), so the zero bucket is [0, 2^-20].
    if (value > NATIVE_ZERO_THRESHOLD) {
      const j = nativeKey(value) - FIRST_KEY;
      if (j >= this.native.length) this.grow(j);
      this.native[j]!++;
      if (j < this.classicFrom.length) i = this.classicFrom[j]!;
    } else {
      this.zeroCount++;
    }
    const bounds = this.bounds;
    while (i < bounds.length && value > bounds[i]!) i++;
    if (i < bounds.length) this.counts[i]!++;
    this.sum += value;
    this.count++;
  }

  private grow(j: number): void {
    const wider = new Float64Array(Math.max(j + 1, this.native.length * 2));
    wider.set(this.native);
    this.native = wider;
  }

  /** The classic buckets cumulated and the native ones as spans and deltas. */
  point(labels: HistogramPoint['labels']): HistogramPoint {
    const cumulative: number[] = [];
    let acc = 0;
    for (const c of this.counts) {
      acc += c;
      cumulative.push(acc);
    }
    return {
      labels,
      bounds: this.bounds,
      cumulative,
      count: this.count,
      sum: this.sum,
      created: this.created,
      native: {
        schema: NATIVE_SCHEMA,
        zeroThreshold: NATIVE_ZERO_THRESHOLD,
        zeroCount: this.zeroCount,
        ...spansAndDeltas(this.native, FIRST_KEY),
      },
    };
  }
}

/**
 * A histogram whose series are created by series(labels), observed on the event path, and
 * rendered by the family register() adds to a registry.
 */
export class FilledHistogram<L extends string> {
  private readonly all = new Map<string, { labels: Readonly<Record<L, string>>; counts: BucketCounts }>();

  constructor(private readonly bounds: readonly number[]) {}

  register(registry: Registry, name: string, help: string): void {
    new Family(registry, name, help, 'histogram', (f) => {
      for (const { labels, counts } of this.all.values()) f.addHistogram(counts.point(labels));
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
