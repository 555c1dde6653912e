/**
 * Who fills the table: per-flow attribution kept beside the shadow table's rows (a RowExtension),
 * and its top K by source prefix, destination, zone and mark, plus the fastest creators of new
 * flows over the last minute (creators.ts). Knows nothing of Prometheus: metrics/attribution.ts
 * renders it.
 *
 * Per flow it keeps four interned ids (16 bytes a row); per distinct key, its bytes and a live
 * count in typed arrays. Counts move as flows are added, removed or change mark, so a scrape is
 * one pass over the distinct keys of each dimension with a K-entry heap: never a pass over the
 * flows, never a sort of a million entries.
 *
 * Memory: the per-key arrays are what grows with distinct keys (a spoofed flood), so they grow
 * only as far as a GrowthBudget allows. A new key that finds no room gets no id (NO_KEY): its
 * flow counts in the remainder (`other`), so every total stays exact, and in `unattributed`.
 */

import { formatIPv4, formatIPv6 } from '../ctnetlink/address.js';
import type { FlowSummary } from '../ctnetlink/summary.js';
import { AF_INET6 } from '../netlink/nfnetlink.js';
import { type Family, familyName, hasPorts, isIcmp, protocolName } from '../table/classify.js';
import type { Clock, RowExtension } from '../table/table.js';
import { wallClock } from '../table/table.js';
import { Creators, resized } from './creators.js';
import { type GrowthBudget, KeyInterner, NO_KEY } from './interner.js';
import { TopK } from './topk.js';

export interface AttributionOptions {
  /** Series per dimension, besides the remainder; at least 1. */
  k: number;
  /** Source prefix lengths that aggregate sources into one row. */
  sourcePrefixV4: number;
  sourcePrefixV6: number;
  clock?: Clock;
  /** Length of a creators window, seconds. */
  windowSeconds?: number;
  /** Distinct source prefixes counted as creators per window. */
  maxCreators?: number;
  /** Memory the per-key arrays may grow into; none: they grow without limit. */
  growth?: GrowthBudget | undefined;
}

/**
 * The attribution a configuration asks for; undefined for --top.k=0, so the table gets no
 * extension and attribution costs nothing per flow.
 */
export function attributionFor(
  config: {
    topK: number;
    topSourcePrefixV4: number;
    topSourcePrefixV6: number;
  },
  growth?: GrowthBudget,
): Attribution | undefined {
  if (config.topK === 0) return undefined;
  return new Attribution({
    k: config.topK,
    sourcePrefixV4: config.topSourcePrefixV4,
    sourcePrefixV6: config.topSourcePrefixV6,
    growth,
  });
}

/** The dimensions whose keys are interned, each with its own count of flows left unattributed. */
export type Dimension = 'source' | 'destination' | 'zone' | 'mark';

const DEFAULT_WINDOW_SECONDS = 60;
const DEFAULT_MAX_CREATORS = 131_072;

export interface Ranked<L> {
  /** At most K entries, largest first. */
  top: { labels: L; value: number }[];
  /** Everything else: the total minus the top entries. */
  other: number;
}

export interface SourceLabels {
  family: Family;
  source: string;
}

export interface DestinationLabels {
  family: Family;
  protocol: string;
  destination: string;
  /** TCP, UDP, UDP-Lite, SCTP, DCCP: the port; ICMP and ICMPv6: the type; absent otherwise. */
  port?: string;
}

// Key layouts (32-bit words).
/** Source: [family, address words masked to the prefix]. */
const SOURCE_WORDS = 5;
/** Destination: [family << 24 | protocol << 16 | port or ICMP type, address words]. */
const DEST_WORDS = 5;

const MIN_ROWS = 1024;
/** sourceFlows: 4 bytes per source id. */
const SOURCE_FLOWS_BYTES = 4;

/** The mask of word `w` (0..3) of an address cut to `prefix` bits. */
function wordMask(prefix: number, w: number): number {
  const bits = prefix - 32 * w;
  if (bits >= 32) return 0xffffffff;
  if (bits <= 0) return 0;
  return (0xffffffff << (32 - bits)) >>> 0;
}

function releaseKey(keys: KeyInterner, id: number): void {
  if (id !== NO_KEY) keys.release(id);
}

export class Attribution implements RowExtension {
  readonly k: number;
  readonly sourcePrefixV4: number;
  readonly sourcePrefixV6: number;

  // Per row.
  private srcOf = new Int32Array(MIN_ROWS);
  private dstOf = new Int32Array(MIN_ROWS);
  private zoneOf = new Int32Array(MIN_ROWS);
  private markOf = new Int32Array(MIN_ROWS);
  /** Flows tracked (rows added and not removed). */
  private live = 0;

  // Per key. Destinations, zones and marks count their flows as references; sources also hold
  // a reference per creators window that counts them, so their flows are counted apart.
  private readonly sources: KeyInterner;
  private readonly destinations: KeyInterner;
  private readonly zones: KeyInterner;
  private readonly marks: KeyInterner;
  private sourceFlows = new Uint32Array(0);
  private readonly creators: Creators;
  /** Flows whose key in a dimension got no id (the budget refused): counted in `other`. */
  readonly unattributed: Record<Dimension, number> = { source: 0, destination: 0, zone: 0, mark: 0 };

  private readonly heap: TopK;
  private readonly addr = Buffer.alloc(16);
  private readonly v4Masks: Uint32Array;
  private readonly v6Masks: Uint32Array;

  constructor(options: AttributionOptions) {
    if (!(options.k >= 1)) throw new RangeError('attribution needs k >= 1');
    this.k = options.k;
    this.sourcePrefixV4 = options.sourcePrefixV4;
    this.sourcePrefixV6 = options.sourcePrefixV6;
    const growth = options.growth;
    this.sources = new KeyInterner(SOURCE_WORDS, growth, SOURCE_FLOWS_BYTES + Creators.BYTES_PER_ID);
    this.destinations = new KeyInterner(DEST_WORDS, growth);
    this.zones = new KeyInterner(1, growth);
    this.marks = new KeyInterner(1, growth);
    this.creators = new Creators(
      this.sources,
      options.clock ?? wallClock,
      options.windowSeconds ?? DEFAULT_WINDOW_SECONDS,
      options.maxCreators ?? DEFAULT_MAX_CREATORS,
    );
    this.heap = new TopK(this.k);
    this.v4Masks = Uint32Array.of(wordMask(this.sourcePrefixV4, 0), 0, 0, 0);
    this.v6Masks = Uint32Array.from([0, 1, 2, 3], (w) => wordMask(this.sourcePrefixV6, w));
    this.fitSourceArrays();
  }

  /** Flows attributed now. */
  get size(): number {
    return this.live;
  }

  /** Bytes held by the per-row columns and the per-key arrays. */
  get bytes(): number {
    return (
      this.srcOf.byteLength * 4 +
      this.sources.bytes +
      this.destinations.bytes +
      this.zones.bytes +
      this.marks.bytes +
      this.sourceFlows.byteLength +
      this.creators.bytes
    );
  }

  // RowExtension.

  resize(capacity: number): void {
    const make = (n: number) => new Int32Array(n);
    this.srcOf = resized(this.srcOf, capacity, make);
    this.dstOf = resized(this.dstOf, capacity, make);
    this.zoneOf = resized(this.zoneOf, capacity, make);
    this.markOf = resized(this.markOf, capacity, make);
  }

  added(row: number, s: FlowSummary, created: boolean): void {
    this.sourceKey(s);
    const src = this.intern(this.sources, 'source');
    if (src !== NO_KEY) {
      if (this.sources.capacity !== this.sourceFlows.length) this.fitSourceArrays();
      this.sourceFlows[src]!++;
    }
    this.srcOf[row] = src;
    this.destinationKey(s);
    this.dstOf[row] = this.intern(this.destinations, 'destination');
    this.zones.scratch[0] = s.zone;
    this.zoneOf[row] = this.intern(this.zones, 'zone');
    this.marks.scratch[0] = Math.max(s.mark, 0);
    this.markOf[row] = this.intern(this.marks, 'mark');
    this.live++;

    if (created) {
      this.creators.created(src);
      if (this.sources.capacity !== this.sourceFlows.length) this.fitSourceArrays();
    }
  }

  /** The flow's source, cut to its prefix, into the sources' scratch key. */
  private sourceKey(s: FlowSummary): void {
    const sk = this.sources.scratch;
    const masks = s.family === AF_INET6 ? this.v6Masks : this.v4Masks;
    const n = s.addrLen >>> 2;
    sk[0] = s.family;
    for (let w = 0; w < 4; w++) {
      sk[w + 1] = w < n && s.srcAt >= 0 ? (s.buf.readUInt32BE(s.srcAt + 4 * w) & masks[w]!) >>> 0 : 0;
    }
  }

  /** The flow's destination (family, protocol, port or ICMP type, address) into the scratch key. */
  private destinationKey(s: FlowSummary): void {
    const dk = this.destinations.scratch;
    const proto = s.proto;
    const port = hasPorts(proto) ? s.dstPort : isIcmp(proto) ? s.dstPort >>> 8 : 0;
    const n = s.addrLen >>> 2;
    dk[0] = ((s.family << 24) | (proto << 16) | port) >>> 0;
    for (let w = 0; w < 4; w++) dk[w + 1] = w < n && s.dstAt >= 0 ? s.buf.readUInt32BE(s.dstAt + 4 * w) : 0;
  }

  updated(row: number, s: FlowSummary): void {
    // Events omit a zero mark: absent is 0.
    const mark = Math.max(s.mark, 0);
    const old = this.markOf[row]!;
    if (old !== NO_KEY && this.marks.word(old, 0) === mark) return;
    this.marks.scratch[0] = mark;
    // A flow already unattributed tries again (an id may be free now) but is counted once.
    const id = old === NO_KEY ? this.marks.acquire() : this.intern(this.marks, 'mark');
    this.markOf[row] = id;
    if (old !== NO_KEY) this.marks.release(old);
  }

  removed(row: number): void {
    const src = this.srcOf[row]!;
    if (src !== NO_KEY) {
      this.sourceFlows[src]!--;
      this.sources.release(src);
    }
    releaseKey(this.destinations, this.dstOf[row]!);
    releaseKey(this.zones, this.zoneOf[row]!);
    releaseKey(this.marks, this.markOf[row]!);
    this.live--;
    // A flush frees every key: the per-key arrays shrink with the interner.
    if (this.sources.capacity !== this.sourceFlows.length) this.fitSourceArrays();
  }

  moved(from: number, to: number): void {
    this.srcOf[to] = this.srcOf[from]!;
    this.dstOf[to] = this.dstOf[from]!;
    this.zoneOf[to] = this.zoneOf[from]!;
    this.markOf[to] = this.markOf[from]!;
  }

  // Rankings, at scrape time.

  topSources(): Ranked<SourceLabels> {
    const flows = this.sourceFlows;
    const heap = this.heap;
    for (let id = 0, end = this.sources.end; id < end; id++) {
      const f = flows[id]!;
      if (f !== 0) heap.offer(id, f);
    }
    return this.ranked(this.live, (id) => this.sourceLabels(id));
  }

  topDestinations(): Ranked<DestinationLabels> {
    return this.rank(this.destinations, (id) => this.destinationLabels(id));
  }

  topZones(): Ranked<{ zone: string }> {
    return this.rank(this.zones, (id) => ({ zone: String(this.zones.word(id, 0)) }));
  }

  topMarks(): Ranked<{ mark: string }> {
    return this.rank(this.marks, (id) => ({ mark: String(this.marks.word(id, 0)) }));
  }

  /** New flows per second over the last minute, by source prefix. */
  topCreators(): Ranked<SourceLabels> {
    const { total, span } = this.creators.offer(this.heap);
    // Rotating the windows may have released every source: the interner shrinks, so do we.
    if (this.sources.capacity !== this.sourceFlows.length) this.fitSourceArrays();
    const ranked = this.ranked(total, (id) => this.sourceLabels(id));
    for (const t of ranked.top) t.value /= span;
    ranked.other /= span;
    return ranked;
  }

  private rank<L>(keys: KeyInterner, labels: (id: number) => L): Ranked<L> {
    const heap = this.heap;
    for (let id = 0, end = keys.end; id < end; id++) {
      const r = keys.refsOf(id);
      if (r !== 0) heap.offer(id, r);
    }
    return this.ranked(this.live, labels);
  }

  private ranked<L>(total: number, labels: (id: number) => L): Ranked<L> {
    const { ids, values } = this.heap.drain();
    let sum = 0;
    const top = ids.map((id, i) => {
      sum += values[i]!;
      return { labels: labels(id), value: values[i]! };
    });
    // Rounding of the creators' weighted counts must not make the remainder negative.
    return { top, other: Math.max(0, total - sum) };
  }

  /** The id of the key in `keys.scratch`; NO_KEY, counted, when the budget refused it. */
  private intern(keys: KeyInterner, dimension: Dimension): number {
    const id = keys.acquire();
    if (id === NO_KEY) this.unattributed[dimension]++;
    return id;
  }

  private fitSourceArrays(): void {
    const n = this.sources.capacity;
    this.sourceFlows = resized(this.sourceFlows, n, (k) => new Uint32Array(k));
    this.creators.fit(n);
  }

  private address(keys: KeyInterner, id: number, family: number): string {
    for (let w = 0; w < 4; w++) this.addr.writeUInt32BE(keys.word(id, w + 1), 4 * w);
    return family === AF_INET6 ? formatIPv6(this.addr, 0) : formatIPv4(this.addr, 0);
  }

  private sourceLabels(id: number): SourceLabels {
    const family = this.sources.word(id, 0);
    const full = family === AF_INET6 ? 128 : 32;
    const prefix = family === AF_INET6 ? this.sourcePrefixV6 : this.sourcePrefixV4;
    const address = this.address(this.sources, id, family);
    return { family: familyName(family), source: prefix < full ? `${address}/${prefix}` : address };
  }

  private destinationLabels(id: number): DestinationLabels {
    const head = this.destinations.word(id, 0);
    const family = head >>> 24;
    const proto = (head >>> 16) & 0xff;
    const labels: DestinationLabels = {
      family: familyName(family),
      protocol: protocolName(proto),
      destination: this.address(this.destinations, id, family),
    };
    if (hasPorts(proto) || isIcmp(proto)) labels.port = String(head & 0xffff);
    return labels;
  }
}
