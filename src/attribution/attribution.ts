/**
 * Who fills the table: per-flow attribution kept beside the shadow table's rows (a RowExtension),
 * and its top K by source prefix, destination, zone and mark, plus the fastest creators of new
 * flows over the last minute. Knows nothing of Prometheus: metrics/attribution.ts renders it.
 *
 * Per flow it keeps four interned ids (16 bytes a row); per distinct key, its bytes and a live
 * count in typed arrays. Counts move as flows are added, removed or change mark, so a scrape is
 * one pass over the distinct keys of each dimension with a K-entry heap: never a pass over the
 * flows, never a sort of a million entries.
 *
 * Creators: new flows (NEW events) per source prefix in two one-minute windows, the current and
 * the previous; the rate over the last minute is the current window plus the share of the
 * previous one still inside the minute, divided by a minute. A window keeps a reference on each
 * prefix it counts, so a prefix whose flows are all gone is still ranked until its counts age
 * out; at most `maxCreators` distinct prefixes are counted per window (a flood of spoofed
 * sources must not grow memory without bound), new flows of further prefixes count in the total
 * only, which the remainder series shows.
 */

import { formatIPv4, formatIPv6 } from '../ctnetlink/address.js';
import type { FlowSummary } from '../ctnetlink/summary.js';
import { AF_INET6 } from '../netlink/nfnetlink.js';
import { type Family, familyName, hasPorts, isIcmp, protocolName } from '../table/classify.js';
import type { Clock, RowExtension } from '../table/table.js';
import { wallClock } from '../table/table.js';
import { KeyInterner } from './interner.js';
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
}

/**
 * The attribution a configuration asks for; undefined for --top.k=0, so the table gets no
 * extension and attribution costs nothing per flow.
 */
export function attributionFor(config: {
  topK: number;
  topSourcePrefixV4: number;
  topSourcePrefixV6: number;
}): Attribution | undefined {
  if (config.topK === 0) return undefined;
  return new Attribution({
    k: config.topK,
    sourcePrefixV4: config.topSourcePrefixV4,
    sourcePrefixV6: config.topSourcePrefixV6,
  });
}

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

/** The mask of word `w` (0..3) of an address cut to `prefix` bits. */
function wordMask(prefix: number, w: number): number {
  const bits = prefix - 32 * w;
  if (bits >= 32) return 0xffffffff;
  if (bits <= 0) return 0;
  return (0xffffffff << (32 - bits)) >>> 0;
}

/** Grows or shrinks a typed array to `n` entries, keeping what fits. */
function resized<T extends Uint32Array | Int32Array>(a: T, n: number, make: (n: number) => T): T {
  if (a.length === n) return a;
  const b = make(n);
  b.set(a.length <= n ? a : a.subarray(0, n));
  return b;
}

export class Attribution implements RowExtension {
  readonly k: number;
  readonly sourcePrefixV4: number;
  readonly sourcePrefixV6: number;
  private readonly clock: Clock;
  private readonly window: number;
  private readonly maxCreators: number;

  // Per row.
  private srcOf = new Int32Array(MIN_ROWS);
  private dstOf = new Int32Array(MIN_ROWS);
  private zoneOf = new Int32Array(MIN_ROWS);
  private markOf = new Int32Array(MIN_ROWS);
  /** Flows tracked (rows added and not removed). */
  private live = 0;

  // Per key. Destinations, zones and marks count their flows as references; sources also hold
  // a reference per creators window that counts them, so their flows are counted apart.
  private readonly sources = new KeyInterner(SOURCE_WORDS);
  private readonly destinations = new KeyInterner(DEST_WORDS);
  private readonly zones = new KeyInterner(1);
  private readonly marks = new KeyInterner(1);
  private sourceFlows = new Uint32Array(0);
  private cur = new Uint32Array(0);
  private prev = new Uint32Array(0);
  private curList = new Int32Array(64);
  private curLen = 0;
  private prevList = new Int32Array(64);
  private prevLen = 0;
  /** New flows in the window, attributed or not. */
  private curTotal = 0;
  private prevTotal = 0;
  private curStart: number;
  /** A complete previous window exists. */
  private hasPrev = false;

  private readonly heap: TopK;
  private readonly addr = Buffer.alloc(16);
  private readonly v4Masks: Uint32Array;
  private readonly v6Masks: Uint32Array;

  constructor(options: AttributionOptions) {
    if (!(options.k >= 1)) throw new RangeError('attribution needs k >= 1');
    this.k = options.k;
    this.sourcePrefixV4 = options.sourcePrefixV4;
    this.sourcePrefixV6 = options.sourcePrefixV6;
    this.clock = options.clock ?? wallClock;
    this.window = options.windowSeconds ?? DEFAULT_WINDOW_SECONDS;
    this.maxCreators = options.maxCreators ?? DEFAULT_MAX_CREATORS;
    this.curStart = this.clock();
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
      this.sourceFlows.byteLength * 3 +
      this.curList.byteLength +
      this.prevList.byteLength
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
    const v6 = s.family === AF_INET6;
    const buf = s.buf;
    const n = s.addrLen >>> 2;

    const sk = this.sources.scratch;
    const masks = v6 ? this.v6Masks : this.v4Masks;
    sk[0] = s.family;
    for (let w = 0; w < 4; w++) {
      sk[w + 1] = w < n && s.srcAt >= 0 ? (buf.readUInt32BE(s.srcAt + 4 * w) & masks[w]!) >>> 0 : 0;
    }
    const src = this.sources.acquire();
    if (this.sources.capacity !== this.sourceFlows.length) this.fitSourceArrays();
    this.sourceFlows[src]!++;
    this.srcOf[row] = src;

    const dk = this.destinations.scratch;
    const proto = s.proto;
    const port = hasPorts(proto) ? s.dstPort : isIcmp(proto) ? s.dstPort >>> 8 : 0;
    dk[0] = ((s.family << 24) | (proto << 16) | port) >>> 0;
    for (let w = 0; w < 4; w++) dk[w + 1] = w < n && s.dstAt >= 0 ? buf.readUInt32BE(s.dstAt + 4 * w) : 0;
    this.dstOf[row] = this.destinations.acquire();

    this.zones.scratch[0] = s.zone;
    this.zoneOf[row] = this.zones.acquire();
    this.marks.scratch[0] = Math.max(s.mark, 0);
    this.markOf[row] = this.marks.acquire();
    this.live++;

    if (created) this.created(src);
  }

  updated(row: number, s: FlowSummary): void {
    // Events omit a zero mark: absent is 0.
    const mark = Math.max(s.mark, 0);
    const old = this.markOf[row]!;
    if (this.marks.word(old, 0) === mark) return;
    this.marks.scratch[0] = mark;
    this.markOf[row] = this.marks.acquire();
    this.marks.release(old);
  }

  removed(row: number): void {
    const src = this.srcOf[row]!;
    this.sourceFlows[src]!--;
    this.sources.release(src);
    this.destinations.release(this.dstOf[row]!);
    this.zones.release(this.zoneOf[row]!);
    this.marks.release(this.markOf[row]!);
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
    const now = this.clock();
    this.rotate(now);
    const elapsed = Math.max(0, now - this.curStart);
    // The part of the previous window still inside the last minute; before a whole window has
    // passed since start-up, the rate is over the time observed (at least a second).
    const share = this.hasPrev ? Math.max(0, (this.window - elapsed) / this.window) : 0;
    const span = this.hasPrev ? this.window : Math.max(1, elapsed);
    const heap = this.heap;
    for (let i = 0; i < this.curLen; i++) {
      const id = this.curList[i]!;
      heap.offer(id, this.cur[id]! + this.prev[id]! * share);
    }
    if (share > 0) {
      for (let i = 0; i < this.prevLen; i++) {
        const id = this.prevList[i]!;
        if (this.cur[id] === 0) heap.offer(id, this.prev[id]! * share);
      }
    }
    const ranked = this.ranked(this.curTotal + this.prevTotal * share, (id) => this.sourceLabels(id));
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

  /** One NEW flow from source key `src`, counted in the current window. */
  private created(src: number): void {
    this.rotate(this.clock());
    this.curTotal++;
    if (this.cur[src] === 0) {
      if (this.curLen >= this.maxCreators) return;
      if (this.curLen === this.curList.length) {
        const l = new Int32Array(this.curLen * 2);
        l.set(this.curList);
        this.curList = l;
      }
      this.curList[this.curLen++] = src;
      this.sources.retain(src);
    }
    this.cur[src]!++;
  }

  /** Starts new windows for the time that has passed; a window too old to matter is dropped. */
  private rotate(now: number): void {
    while (now - this.curStart >= this.window) {
      // The previous window leaves: its references go.
      for (let i = 0; i < this.prevLen; i++) {
        const id = this.prevList[i]!;
        this.prev[id] = 0;
        this.sources.release(id);
      }
      // The current window becomes the previous one.
      const counts = this.prev;
      this.prev = this.cur;
      this.cur = counts;
      const list = this.prevList;
      this.prevList = this.curList;
      this.prevLen = this.curLen;
      this.curList = list;
      this.curLen = 0;
      this.prevTotal = this.curTotal;
      this.curTotal = 0;
      this.curStart += this.window;
      this.hasPrev = true;
      // After a quiet spell of more than two windows, restart the windows at now.
      if (now - this.curStart >= 2 * this.window) this.curStart = now - this.window;
    }
    if (this.sources.capacity !== this.sourceFlows.length) this.fitSourceArrays();
  }

  private fitSourceArrays(): void {
    const n = this.sources.capacity;
    const make = (k: number) => new Uint32Array(k);
    this.sourceFlows = resized(this.sourceFlows, n, make);
    this.cur = resized(this.cur, n, make);
    this.prev = resized(this.prev, n, make);
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
