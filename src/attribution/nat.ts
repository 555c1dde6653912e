/**
 * Network address translation, from the flows of the shadow table (a RowExtension beside
 * attribution): flows by translation (source, destination, both), the source NAT mappings with
 * their flow counts, and the destination NAT pairs. Knows nothing of Prometheus: metrics/nat.ts
 * renders it.
 *
 * A flow is translated when its status carries IPS_SRC_NAT or IPS_DST_NAT: the kernel set up a
 * reply tuple that is not the inverted original. The kernel keeps reply tuples unique, so for
 * source NAT a *mapping* (family, protocol, NAT address = the reply's destination, destination =
 * the reply's source, destination port = the reply's source port) holds at most as many flows as
 * the NAT rule's port range has ports; beyond that the kernel cannot insert (insert_failed, drop).
 * Every mapping is counted (not only the top K), so the highest utilisation is exact: interned
 * keys whose reference count is their flow count (attribution's KeyInterner, within the same
 * memory budget), ranked at scrape time with attribution's TopK.
 *
 * Untranslated flows cost nothing here beyond a call per row event: the per-row columns exist only
 * once a translated flow has been seen, and the decoder reads reply tuples only for translated
 * flows (ctnetlink/summary.ts).
 */
import { formatIPv4, formatIPv6 } from '../ctnetlink/address.js';
import { IPS_DST_NAT, IPS_SRC_NAT } from '../ctnetlink/status.js';
import type { FlowSummary } from '../ctnetlink/summary.js';
import { AF_INET6 } from '../netlink/nfnetlink.js';
import { type Family, familyName, hasPorts, isIcmp, protocolName } from '../table/classify.js';
import type { RowExtension } from '../table/table.js';
import type { Ranked } from './attribution.js';
import { resized } from './creators.js';
import { type GrowthBudget, KeyInterner, NO_KEY } from './interner.js';
import { TopK } from './topk.js';

/** How a flow is translated; `none` is everything else (computed by the metrics from the table). */
export type NatKind = 'snat' | 'dnat' | 'snat_dnat';

/** The first and last port of the source NAT rules' range (--nat.port-range). */
export interface PortRange {
  readonly first: number;
  readonly last: number;
}

/** Ports in a range: the most flows one mapping can hold. */
export function portsIn(range: PortRange): number {
  return range.last - range.first + 1;
}

export interface NatOptions {
  /** Series per ranking, besides the remainder; 0: no rankings (counts and the maximum only). */
  k: number;
  portRange: PortRange;
  /** Memory the per-key arrays may grow into; none: they grow without limit. */
  growth?: GrowthBudget | undefined;
}

export interface NatGroup {
  readonly family: Family;
  readonly protocol: string;
  readonly nat: NatKind;
  /** Translated flows of this kind in the table now. */
  count: number;
}

export interface SnatMappingLabels {
  family: Family;
  protocol: string;
  /** The address flows are translated to (the reply tuple's destination). */
  nat_source: string;
  destination: string;
  port: string;
}

export interface DnatLabels {
  family: Family;
  protocol: string;
  /** The destination the client asked for (the original tuple's). */
  destination: string;
  /** Absent for protocols without ports; ICMP: the type. */
  port?: string;
  /** Where the flow was sent (the reply tuple's source); set after `port`, for the label order. */
  translated_destination?: string;
  translated_port?: string;
}

/** The dimensions whose keys are interned, each with its count of flows left out. */
export type NatDimension = 'snat_mapping' | 'dnat';

// Key layouts (32-bit words).
/** Mapping: [family << 24 | protocol << 16 | destination port, NAT address, destination address]. */
const MAPPING_WORDS = 9;
/** DNAT pair: [family << 24 | protocol << 16 | port, original destination, translated port, translated destination]. */
const PAIR_WORDS = 10;

/** A row without a mapping or pair (untranslated, or the other kind). */
const NONE = -2;
const MIN_ROWS = 1024;

export class NatTracking implements RowExtension {
  readonly k: number;
  readonly portRange: PortRange;
  readonly ports: number;
  /** Flows whose key found no room within the memory budget, ever (they count in the remainder). */
  readonly unattributed: Record<NatDimension, number> = { snat_mapping: 0, dnat: 0 };
  /** Of those, the flows still in the table. */
  private readonly unattributedNow: Record<NatDimension, number> = { snat_mapping: 0, dnat: 0 };

  /** Rows the table numbers below; the columns below are this long once they exist. */
  private capacity = MIN_ROWS;
  /** Per row, allocated at the first translated flow: group index + 1 (0: untranslated). */
  private groupOf: Uint16Array | undefined;
  private mappingOf = new Int32Array(0);
  private pairOf = new Int32Array(0);

  private readonly groupIds = new Map<number, number>();
  private readonly allGroups: NatGroup[] = [];
  private readonly mappings: KeyInterner;
  private readonly pairs: KeyInterner;
  private readonly heap: TopK;
  private readonly addr = Buffer.alloc(16);

  constructor(options: NatOptions) {
    const { first, last } = options.portRange;
    if (!(first >= 1 && first <= last && last <= 65535)) throw new RangeError('a port range within 1..65535');
    this.k = options.k;
    this.portRange = options.portRange;
    this.ports = portsIn(options.portRange);
    this.mappings = new KeyInterner(MAPPING_WORDS, options.growth);
    this.pairs = new KeyInterner(PAIR_WORDS, options.growth);
    this.heap = new TopK(this.k);
  }

  /** Every (family, protocol, translation) seen so far with its count; never shrinks. */
  groups(): readonly NatGroup[] {
    return this.allGroups;
  }

  /** Bytes held by the per-row columns and the per-key arrays. */
  get bytes(): number {
    const rows = this.groupOf
      ? this.groupOf.byteLength + this.mappingOf.byteLength + this.pairOf.byteLength
      : 0;
    return rows + this.mappings.bytes + this.pairs.bytes;
  }

  /** Distinct source NAT mappings now. */
  get mappingCount(): number {
    return this.mappings.size;
  }

  // RowExtension.

  resize(capacity: number): void {
    this.capacity = capacity;
    if (this.groupOf) this.fitRows();
  }

  added(row: number, s: FlowSummary): void {
    const status = s.status;
    const snat = status > 0 && (status & IPS_SRC_NAT) !== 0;
    const dnat = status > 0 && (status & IPS_DST_NAT) !== 0;
    if (!snat && !dnat) {
      if (this.groupOf) this.groupOf[row] = 0;
      return;
    }
    if (!this.groupOf) this.fitRows();
    const g = this.groupId(s.family, s.proto, snat ? (dnat ? 'snat_dnat' : 'snat') : 'dnat');
    this.allGroups[g]!.count++;
    this.groupOf![row] = g + 1;
    const reply = s.replySrcAt >= 0;
    this.mappingOf[row] =
      snat && reply && hasPorts(s.proto) ? this.intern(this.mappingKey(s), 'snat_mapping') : NONE;
    this.pairOf[row] = dnat && reply ? this.intern(this.pairKey(s), 'dnat') : NONE;
  }

  /** Translation is set up before a flow is confirmed: an update cannot change it. */
  updated(): void {}

  removed(row: number): void {
    const g = this.groupOf?.[row] ?? 0;
    if (g === 0) return;
    this.allGroups[g - 1]!.count--;
    this.groupOf![row] = 0;
    const m = this.mappingOf[row]!;
    if (m >= 0) this.mappings.release(m);
    else if (m === NO_KEY) this.unattributedNow.snat_mapping--;
    const p = this.pairOf[row]!;
    if (p >= 0) this.pairs.release(p);
    else if (p === NO_KEY) this.unattributedNow.dnat--;
  }

  moved(from: number, to: number): void {
    const groups = this.groupOf;
    if (!groups) return;
    groups[to] = groups[from]!;
    this.mappingOf[to] = this.mappingOf[from]!;
    this.pairOf[to] = this.pairOf[from]!;
  }

  // At scrape time.

  /** The top K source NAT mappings by flows, and the rest. */
  topSnatMappings(): Ranked<SnatMappingLabels> {
    return this.rank(this.mappings, 'snat_mapping', (id) => this.mappingLabels(id));
  }

  /** The top K destination NAT pairs by flows, and the rest. */
  topDnat(): Ranked<DnatLabels> {
    return this.rank(this.pairs, 'dnat', (id) => this.pairLabels(id));
  }

  /** Flows of the fullest mapping, over every mapping (not only the top K). */
  maxMappingFlows(): number {
    const keys = this.mappings;
    let max = 0;
    for (let id = 0, end = keys.end; id < end; id++) {
      const r = keys.refsOf(id);
      if (r > max) max = r;
    }
    return max;
  }

  private rank<L>(keys: KeyInterner, dimension: NatDimension, labels: (id: number) => L): Ranked<L> {
    const heap = this.heap;
    let total = 0;
    for (let id = 0, end = keys.end; id < end; id++) {
      const r = keys.refsOf(id);
      if (r === 0) continue;
      total += r;
      heap.offer(id, r);
    }
    const { ids, values } = heap.drain();
    let shown = 0;
    const top = ids.map((id, i) => {
      shown += values[i]!;
      return { labels: labels(id), value: values[i]! };
    });
    // Flows whose key found no room (memory budget) are part of the remainder.
    return { top, other: total - shown + this.unattributedNow[dimension] };
  }

  private intern(keys: KeyInterner, dimension: NatDimension): number {
    const id = keys.acquire();
    if (id === NO_KEY) {
      this.unattributed[dimension]++;
      this.unattributedNow[dimension]++;
    }
    return id;
  }

  private fitRows(): void {
    const n = this.capacity;
    const groupOf = new Uint16Array(n);
    if (this.groupOf) groupOf.set(this.groupOf.subarray(0, Math.min(n, this.groupOf.length)));
    this.groupOf = groupOf;
    this.mappingOf = resized(this.mappingOf, n, (k) => new Int32Array(k));
    this.pairOf = resized(this.pairOf, n, (k) => new Int32Array(k));
  }

  private mappingKey(s: FlowSummary): KeyInterner {
    const keys = this.mappings;
    const k = keys.scratch;
    k[0] = ((s.family << 24) | (s.proto << 16) | s.replySrcPort) >>> 0;
    this.address(k, 1, s, s.replyDstAt);
    this.address(k, 5, s, s.replySrcAt);
    return keys;
  }

  private pairKey(s: FlowSummary): KeyInterner {
    const keys = this.pairs;
    const k = keys.scratch;
    const proto = s.proto;
    const ports = hasPorts(proto);
    // ICMP: the type (as attribution's destinations); its id is no port.
    k[0] =
      ((s.family << 24) | (proto << 16) | (ports ? s.dstPort : isIcmp(proto) ? s.dstPort >>> 8 : 0)) >>> 0;
    this.address(k, 1, s, s.dstAt);
    k[5] = ports ? s.replySrcPort : 0;
    this.address(k, 6, s, s.replySrcAt);
    return keys;
  }

  /** The address at `at` (absent: zeros) into words [w, w + 4). */
  private address(k: Uint32Array, w: number, s: FlowSummary, at: number): void {
    const n = s.addrLen >>> 2;
    for (let i = 0; i < 4; i++) k[w + i] = i < n && at >= 0 ? s.buf.readUInt32BE(at + 4 * i) : 0;
  }

  private format(keys: KeyInterner, id: number, w: number, family: number): string {
    for (let i = 0; i < 4; i++) this.addr.writeUInt32BE(keys.word(id, w + i), 4 * i);
    return family === AF_INET6 ? formatIPv6(this.addr, 0) : formatIPv4(this.addr, 0);
  }

  private mappingLabels(id: number): SnatMappingLabels {
    const head = this.mappings.word(id, 0);
    const family = head >>> 24;
    return {
      family: familyName(family),
      protocol: protocolName((head >>> 16) & 0xff),
      nat_source: this.format(this.mappings, id, 1, family),
      destination: this.format(this.mappings, id, 5, family),
      port: String(head & 0xffff),
    };
  }

  private pairLabels(id: number): DnatLabels {
    const head = this.pairs.word(id, 0);
    const family = head >>> 24;
    const proto = (head >>> 16) & 0xff;
    // Label order as printed: what was asked for, then where it went.
    const labels: DnatLabels = {
      family: familyName(family),
      protocol: protocolName(proto),
      destination: this.format(this.pairs, id, 1, family),
    };
    if (hasPorts(proto) || isIcmp(proto)) labels.port = String(head & 0xffff);
    labels.translated_destination = this.format(this.pairs, id, 6, family);
    if (hasPorts(proto)) labels.translated_port = String(this.pairs.word(id, 5));
    return labels;
  }

  private groupId(family: number, proto: number, nat: NatKind): number {
    const key = (family << 16) | (proto << 8) | (nat === 'snat' ? 1 : nat === 'dnat' ? 2 : 3);
    let g = this.groupIds.get(key);
    if (g === undefined) {
      g = this.allGroups.length;
      this.allGroups.push({ family: familyName(family), protocol: protocolName(proto), nat, count: 0 });
      this.groupIds.set(key, g);
    }
    return g;
  }
}
