/**
 * Event-path benchmark (`npm run bench`): decoder throughput, the whole datagram -> shadow table
 * path with attribution off and on, scrape cost with a large table, and memory per tracked flow;
 * then the same for translated (NAT) flows beside untranslated ones.
 * The messages are real kernel bytes (captured in a namespace); only their CTA_ID (and, for the
 * attribution sections, their addresses) is rewritten to make flows distinct. The translated ones
 * are those messages with a source-NATed reply tuple and IPS_SRC_NAT, re-encoded by the test codec
 * (which writes attributes in the kernel's order).
 */
import { performance } from 'node:perf_hooks';
import { gzipSync } from 'node:zlib';
import { type Attribution, attributionFor } from '../src/attribution/attribution.js';
import { NatTracking } from '../src/attribution/nat.js';
import { parseConfig } from '../src/config.js';
import { CTA_ID } from '../src/ctnetlink/constants.js';
import { IPS_SRC_NAT } from '../src/ctnetlink/status.js';
import { FlowSummary, summarizeFlow } from '../src/ctnetlink/summary.js';
import type { KernelSnapshot } from '../src/kernel/stats.js';
import type { ExpositionFormat } from '../src/metrics/exposition/formats.js';
import { DURATION_BUCKETS, FlowMetrics } from '../src/metrics/flows.js';
import { BucketCounts } from '../src/metrics/histogram.js';
import { ExporterMetrics } from '../src/metrics/metrics.js';
import { AttributeCursor } from '../src/netlink/attributes.js';
import { NFGENMSG_LEN } from '../src/netlink/nfnetlink.js';
import { NLMSG_HDRLEN } from '../src/netlink/nlmsg.js';
import { Collector, type Log } from '../src/sync/collector.js';
import { joinExtensions } from '../src/table/extensions.js';
import { ShadowTable } from '../src/table/table.js';
import { decodeFlow, encodeFlow } from '../test/support/codec/flow.js';
import { FakeNamespace, FakeScope } from '../test/unit/helpers/scope.js';

/** What a scrape reads of a kernel holding `entries` flows: the bench's table, nothing else. */
function kernelSnapshot(entries: number): KernelSnapshot {
  return {
    entries,
    limit: 2_000_000,
    buckets: 65536,
    perCpu: [],
    expectations: 0,
    expectLimit: 4096,
    timeouts: [],
    slab: undefined,
    eventsMode: 2,
    timestamps: 0,
    accounting: 0,
    errors: 0,
  };
}

// Captured from the kernel: a TCP NEW (SYN_SENT), a TCP UPDATE (ESTABLISHED), a UDP NEW, an
// ICMPv6 NEW, and a TCP DESTROY derived from the UPDATE by its message type.
const TCP_NEW =
  'c4000000000100060000000000000000020000003400018014000180080001007f000001080002007f0000011c00028005000100060000000600020093da000006000300138800003400028014000180080001007f000001080002007f0000011c000280050001000600000006000200138800000600030093da000008000c001162299208000300000000080800070000000078300004802c0001800500010001000000050002000a000000050003000000000006000400030000000600050000000000';
const TCP_UPDATE =
  'c4000000000100000000000000000000020000003400018014000180080001007f000001080002007f0000011c00028005000100060000000600020093da000006000300138800003400028014000180080001007f000001080002007f0000011c000280050001000600000006000200138800000600030093da000008000c0011622992080003000000000e0800070000069780300004802c0001800500010003000000050002000a000000050003000a00000006000400230000000600050023000000';
const UDP_NEW =
  '94000000000100060000000000000000020000003400018014000180080001007f000001080002007f0000011c000280050001001100000006000200bcd0000006000300138900003400028014000180080001007f000001080002007f0000011c0002800500010011000000060002001389000006000300bcd0000008000c00199ef61f0800030000000008080007000000001e';
const ICMP6_NEW =
  'd40000000001000600000000000000000a000000540001802c0001801400030000000000000000000000000000000001140004000000000000000000000000000000000124000280050001003a000000060007000b65000005000800800000000500090000000000540002802c0001801400030000000000000000000000000000000001140004000000000000000000000000000000000124000280050001003a000000060007000b6500000500080081000000050009000000000008000c008206526a0800030000000008080007000000001e';

interface Message {
  buf: Buffer;
  idAt: number;
  /** Offsets of the original source and destination address, and their length. */
  srcAt: number;
  dstAt: number;
  addrLen: number;
}

function message(hex: string): Message {
  const buf = Buffer.from(hex, 'hex');
  const s = new FlowSummary();
  summarizeFlow(buf, 0, buf.length, s);
  const c = new AttributeCursor('big-endian').reset(buf, NLMSG_HDRLEN + NFGENMSG_LEN, buf.length, 'bench');
  while (c.next()) {
    if (c.type === CTA_ID) return { buf, idAt: c.start, srcAt: s.srcAt, dstAt: s.dstAt, addrLen: s.addrLen };
  }
  throw new Error('no CTA_ID in fixture');
}

function asDestroy(m: Message): Message {
  const buf = Buffer.from(m.buf);
  buf.writeUInt16LE(0x0102, 4); // IPCTNL_MSG_CT_DELETE
  buf.writeUInt16LE(0, 6);
  return { ...m, buf };
}

/**
 * Gives flow `n` its own address: IPv4 the whole address, IPv6 inside the first 64 bits (so the
 * default /64 source prefix keeps them apart).
 */
function setAddress(m: Message, at: number, n: number): void {
  m.buf.writeUInt32BE(n, m.addrLen === 4 ? at : at + 4);
}

function rate(n: number, ms: number): string {
  return `${Math.round((n / ms) * 1000).toLocaleString('en-US')}/s`;
}

const quiet: Log = { debug() {}, info() {}, warn() {}, error() {} };
const mix = [message(TCP_NEW), message(TCP_UPDATE), message(UDP_NEW), message(ICMP6_NEW)];

// 1. Decoders alone: the strict one (tests, tools) is the reference for the lean one (event and
//    dump paths), side by side in the same run.
{
  const N = 1_000_000;
  const out = new FlowSummary();
  const strict = (m: { buf: Buffer }): number => decodeFlow(m.buf, 0, m.buf.length).id ?? 0;
  const lean = (m: { buf: Buffer }): number => {
    summarizeFlow(m.buf, 0, m.buf.length, out);
    return out.id;
  };
  const time = (decode: (m: { buf: Buffer }) => number): number => {
    for (let i = 0; i < 50_000; i++) decode(mix[i & 3]!); // warm-up
    const t0 = performance.now();
    let sink = 0;
    for (let i = 0; i < N; i++) sink += decode(mix[i & 3]!);
    if (sink === 42) console.log('');
    return performance.now() - t0;
  };
  const strictMs = time(strict);
  const leanMs = time(lean);
  for (const [name, ms] of [
    ['decodeFlow (strict)', strictMs],
    ['summarizeFlow (lean)', leanMs],
  ] as const) {
    console.log(
      `${name.padEnd(22)}${N.toLocaleString('en-US')} messages in ${ms.toFixed(0)} ms = ${rate(N, ms)} (${((ms * 1e6) / N).toFixed(0)} ns/msg)`,
    );
  }
  console.log(`lean / strict          ${(leanMs / strictMs).toFixed(2)}x the time`);
}

// 2. Datagram -> decode -> shadow table -> observations, with distinct flows:
//    NEW, UPDATE, DESTROY per TCP flow (the kernel's minimum for a short connection), each flow
//    from its own source; attribution off (--top.k=0) and on (the default), side by side.
for (const topK of ['0', '10']) {
  const attribution = attributionFor(parseConfig([`--top.k=${topK}`]));
  const table = new ShadowTable(new FlowMetrics(false), undefined, attribution);
  const collector = new Collector({
    table,
    dumper: { dumpTable: async () => ({ flows: 0, attempts: 1 }) },
    log: quiet,
  });
  const seq = [message(TCP_NEW), message(TCP_UPDATE), asDestroy(message(TCP_UPDATE))];
  const FLOWS = 300_000;
  const t0 = performance.now();
  for (let id = 1; id <= FLOWS; id++) {
    for (const m of seq) {
      m.buf.writeUInt32BE(id, m.idAt);
      setAddress(m, m.srcAt, id);
      collector.onDatagram(m.buf);
    }
  }
  const ms = performance.now() - t0;
  const n = FLOWS * seq.length;
  console.log(
    `event path, top.k=${topK.padEnd(3)}${n.toLocaleString('en-US')} events in ${ms.toFixed(0)} ms = ${rate(n, ms)} (decode errors: ${collector.counters.decodeErrors}, table left: ${table.size})`,
  );
}

/** BucketCounts as it was before native buckets (main at b834a4a), the reference of section 2b. */
class ClassicBucketCounts {
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

// 2b. One histogram observation, as the event path makes about one per event (UPDATE: the state
//     left; DESTROY: the state left and the lifetime): the classic buckets alone (the reference:
//     observe() before native buckets) and classic plus native, interleaved, on log-uniform
//     durations from 10 us to 10 days, in random order and sorted (similar durations in a row).
{
  const N = 2_000_000;
  const random = new Float64Array(N);
  let x = 7;
  for (let i = 0; i < N; i++) {
    x = (x * 48271) % 2147483647;
    random[i] = 1e-5 * 10 ** ((x / 2147483647) * 11);
  }
  const sorted = Float64Array.from(random).sort();
  for (const [order, values] of [
    ['random order', random],
    ['sorted', sorted],
  ] as const) {
    const classic = new ClassicBucketCounts(DURATION_BUCKETS);
    const both = new BucketCounts(DURATION_BUCKETS);
    // One loop per class, so each call site sees one class (as the event path does).
    const timeClassic = (): number => {
      const t0 = performance.now();
      for (let i = 0; i < N; i++) classic.observe(values[i]!);
      return performance.now() - t0;
    };
    const timeBoth = (): number => {
      const t0 = performance.now();
      for (let i = 0; i < N; i++) both.observe(values[i]!);
      return performance.now() - t0;
    };
    let a = Number.POSITIVE_INFINITY;
    let b = Number.POSITIVE_INFINITY;
    for (let round = 0; round < 9; round++) {
      a = Math.min(a, timeClassic());
      b = Math.min(b, timeBoth());
    }
    if (classic.count !== both.count) throw new Error('not the same observations');
    const ns = (ms: number): number => (ms * 1e6) / N;
    console.log(
      `histogram observe, ${order.padEnd(13)}classic alone ${ns(a).toFixed(1)} ns, classic + native ${ns(b).toFixed(1)} ns (${(b / a).toFixed(2)}x; best of 9 rounds of ${N.toLocaleString('en-US')})`,
    );
  }
}

// 3. A large table: memory per flow and the cost and size of one scrape in each format, without attribution, then with
//    it at 1,000,000 distinct sources (and then also 1,000,000 distinct destinations, the worst
//    case: every key is its own row).
for (const variant of ['off', 'distinct sources', 'distinct sources and destinations'] as const) {
  const flows = new FlowMetrics(false);
  const attribution = variant === 'off' ? undefined : attributionFor(parseConfig([]));
  const table = new ShadowTable(flows, undefined, attribution);
  const collector = new Collector({
    table,
    dumper: { dumpTable: async () => ({ flows: 0, attempts: 1 }) },
    log: quiet,
  });
  const FLOWS = 1_000_000;
  const msgs = [message(TCP_NEW), message(TCP_UPDATE), message(UDP_NEW), message(ICMP6_NEW)];
  // The table lives in typed arrays, outside the JS heap: count both.
  const used = () => {
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  await settle();
  const before = used();
  for (let id = 1; id <= FLOWS; id++) {
    const m = msgs[id & 3]!;
    m.buf.writeUInt32BE(id, m.idAt);
    setAddress(m, m.srcAt, id);
    if (variant === 'distinct sources and destinations') setAddress(m, m.dstAt, id);
    collector.onDatagram(m.buf);
  }
  await settle();
  const perFlow = (used() - before) / table.size;
  const scope = new FakeScope();
  const ns = new FakeNamespace({}, table, async () => kernelSnapshot(table.size), attribution);
  Object.assign(ns.counters, collector.counters);
  scope.namespaces.push(ns);
  const metrics = new ExporterMetrics({ version: 'bench', scope, flows, processMetrics: false, attribution });
  spreadDurations(flows, table);
  const own = attribution ? ` (attribution's arrays: ${(attribution.bytes / table.size).toFixed(0)})` : '';
  const sources = attribution ? `, ${attribution.topSources().top.length} top sources shown` : '';
  console.log(
    `table of ${table.size.toLocaleString('en-US')} flows, attribution ${variant}: ${perFlow.toFixed(0)} bytes/flow (heap and array buffers; the table's arrays: ${(table.bytes / table.size).toFixed(0)}${own})${globalThis.gc ? '' : ' (run with --expose-gc for a precise figure)'}${sources}`,
  );
  for (const format of ['text', 'openmetrics', 'protobuf'] as const) await timeScrape(metrics, format);
  if (attribution) timeRankings(attribution);
}

/**
 * Durations for every state group of the table, log-uniform from 10 us to 10 days, so the
 * histograms fill about as many native buckets as they can (the largest protobuf scrape).
 */
function spreadDurations(flows: FlowMetrics, table: ShadowTable): void {
  let x = 1;
  for (const g of table.groups()) {
    for (let i = 0; i < 10_000; i++) {
      x = (x * 48271) % 2147483647;
      const seconds = 1e-5 * 10 ** ((x / 2147483647) * 11);
      flows.stateLeft(g, seconds);
      flows.flowEnded(g, seconds);
    }
  }
}

/** One scrape in `format`: its time (mean and slowest of 20), its size, gzipped as served. */
async function timeScrape(metrics: ExporterMetrics, format: ExpositionFormat): Promise<void> {
  const body = await metrics.render(format);
  const R = 20;
  let worst = 0;
  const t0 = performance.now();
  for (let i = 0; i < R; i++) {
    const t = performance.now();
    await metrics.render(format);
    worst = Math.max(worst, performance.now() - t);
  }
  const ms = (performance.now() - t0) / R;
  const bytes = typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
  console.log(
    `  scrape as ${format.padEnd(12)}${ms.toFixed(2)} ms, slowest ${worst.toFixed(2)} ms; ${bytes.toLocaleString('en-US')} bytes, gzipped ${gzipSync(body).byteLength.toLocaleString('en-US')}`,
  );
}

/** Collects garbage, and lets the freed array buffers' memory go too (it is released after a tick). */
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    globalThis.gc?.();
    await new Promise((r) => setImmediate(r));
  }
}

/** The attribution part of a scrape alone: the five rankings. */
function timeRankings(a: Attribution): void {
  const t0 = performance.now();
  const R = 20;
  for (let i = 0; i < R; i++) {
    a.topSources();
    a.topDestinations();
    a.topZones();
    a.topMarks();
    a.topCreators();
  }
  console.log(`  of which the five rankings: ${((performance.now() - t0) / R).toFixed(2)} ms`);
}

// 4. NAT: translated flows against untranslated ones, in the same run.
interface NatMessage extends Message {
  /** Offsets of the reply tuple's source (the destination after NAT) and destination (the NAT address). */
  replySrcAt: number;
}

/** `hex` source-NATed to 10.77.0.1:40000 (reply destination), as the kernel would send it. */
function natMessage(hex: string): NatMessage {
  const f = decodeFlow(Buffer.from(hex, 'hex'), 0, hex.length / 2);
  const o = f.orig!;
  f.reply = { ...f.reply!, dst: '10.77.0.1', dstPort: o.srcPort === undefined ? undefined : 40000 };
  f.status = (f.status ?? 0) | IPS_SRC_NAT;
  const type = hex === TCP_NEW || hex === UDP_NEW ? 'new' : 'update';
  const m = message(encodeFlow(f, { type }).toString('hex'));
  const s = new FlowSummary();
  summarizeFlow(m.buf, 0, m.buf.length, s);
  if (s.replySrcAt < 0) throw new Error('the translated fixture has no reply tuple');
  return { ...m, replySrcAt: s.replySrcAt };
}

{
  // 4a. The decoder alone: a TCP NEW untranslated and translated.
  const N = 1_000_000;
  const out = new FlowSummary();
  const plain = message(TCP_NEW);
  const nat = natMessage(TCP_NEW);
  const time = (m: Message): number => {
    for (let i = 0; i < 50_000; i++) summarizeFlow(m.buf, 0, m.buf.length, out);
    const t0 = performance.now();
    for (let i = 0; i < N; i++) summarizeFlow(m.buf, 0, m.buf.length, out);
    return performance.now() - t0;
  };
  // Alternate, twice each, and keep the faster run of each (the machine is shared).
  const plainMs = Math.min(time(plain), time(plain));
  const natMs = Math.min(time(nat), time(nat));
  console.log(
    `summarizeFlow TCP NEW  untranslated ${((plainMs * 1e6) / N).toFixed(0)} ns/msg, translated ${((natMs * 1e6) / N).toFixed(0)} ns/msg: ${(natMs / plainMs).toFixed(2)}x`,
  );
}

{
  // 4b. The event path (NEW, UPDATE, DESTROY per flow, each from its own source; top.k=10 as the
  //     exporter runs it: attribution and NAT tracking beside the table). The reference: the same
  //     untranslated flows without NAT tracking (attribution alone, as before NAT tracking). Then
  //     untranslated flows with it, and translated ones: one mapping (the exhaustion case), or
  //     each flow its own destination (every flow its own mapping, the worst case). Four rounds,
  //     interleaved, the fastest of each kept: the machine is shared.
  const variants = [
    'reference (no NAT tracking)',
    'untranslated',
    'translated, one mapping',
    'translated, distinct mappings',
  ] as const;
  const FLOWS = 300_000;
  const best = new Map<string, number>();
  const run = (variant: (typeof variants)[number]): number => {
    const config = parseConfig([]);
    const nat = variant.startsWith('reference')
      ? undefined
      : new NatTracking({ k: 10, portRange: config.natPortRange });
    const table = new ShadowTable(
      new FlowMetrics(false),
      undefined,
      joinExtensions(attributionFor(config), nat),
    );
    const collector = new Collector({
      table,
      dumper: { dumpTable: async () => ({ flows: 0, attempts: 1 }) },
      log: quiet,
    });
    const seq: NatMessage[] = variant.startsWith('translated')
      ? [natMessage(TCP_NEW), natMessage(TCP_UPDATE)]
      : [message(TCP_NEW), message(TCP_UPDATE)].map((m) => ({ ...m, replySrcAt: -1 }));
    seq.push({ ...asDestroy(seq[1]!), replySrcAt: seq[1]!.replySrcAt });
    const t0 = performance.now();
    for (let id = 1; id <= FLOWS; id++) {
      for (const m of seq) {
        m.buf.writeUInt32BE(id, m.idAt);
        setAddress(m, m.srcAt, id);
        if (variant === 'translated, distinct mappings') setAddress(m, m.replySrcAt, id);
        collector.onDatagram(m.buf);
      }
    }
    const ms = performance.now() - t0;
    if (collector.counters.decodeErrors !== 0 || table.size !== 0)
      throw new Error(`${variant}: the table did not empty`);
    return ms;
  };
  // Each round starts with another variant, so no variant always runs first (or after another).
  for (let round = 0; round < variants.length; round++) {
    for (let i = 0; i < variants.length; i++) {
      const v = variants[(round + i) % variants.length]!;
      best.set(v, Math.min(best.get(v) ?? Number.POSITIVE_INFINITY, run(v)));
    }
  }
  const n = FLOWS * 3;
  const reference = best.get(variants[0])!;
  for (const v of variants) {
    const ms = best.get(v)!;
    console.log(
      `event path, ${v.padEnd(30)}${n.toLocaleString('en-US')} events in ${ms.toFixed(0)} ms = ${rate(n, ms)} (${((ms * 1e6) / n).toFixed(0)} ns/event): ${(ms / reference).toFixed(2)}x the reference`,
    );
  }
}

{
  // 4c. 1,000,000 translated flows in the table: memory per flow against untranslated ones, and
  //     one scrape (every metric group, NAT's included). A synthetic fill of the table through the
  //     event path (no kernel holds a million translated flows on this machine). Memory is what
  //     the typed arrays hold (exact); the heap figure of section 3 is not comparable between
  //     variants of one process (buffers of the variant before are freed during the next fill).
  for (const variant of [
    'untranslated',
    'translated, 1,000 mappings',
    'translated, distinct mappings',
  ] as const) {
    const flows = new FlowMetrics(false);
    const config = parseConfig([]);
    const attribution = attributionFor(config);
    const nat = new NatTracking({ k: 10, portRange: config.natPortRange });
    const table = new ShadowTable(flows, undefined, joinExtensions(attribution, nat));
    const collector = new Collector({
      table,
      dumper: { dumpTable: async () => ({ flows: 0, attempts: 1 }) },
      log: quiet,
    });
    const FLOWS = 1_000_000;
    const m: NatMessage =
      variant === 'untranslated' ? { ...message(TCP_NEW), replySrcAt: -1 } : natMessage(TCP_NEW);
    for (let id = 1; id <= FLOWS; id++) {
      m.buf.writeUInt32BE(id, m.idAt);
      setAddress(m, m.srcAt, id);
      if (variant === 'translated, 1,000 mappings') setAddress(m, m.replySrcAt, id % 1000);
      if (variant === 'translated, distinct mappings') setAddress(m, m.replySrcAt, id);
      collector.onDatagram(m.buf);
    }
    const perFlow = (b: number) => (b / table.size).toFixed(1);
    const scope = new FakeScope();
    const ns = new FakeNamespace({}, table, async () => kernelSnapshot(table.size), attribution, nat);
    scope.namespaces.push(ns);
    const metrics = new ExporterMetrics({
      version: 'bench',
      scope,
      flows,
      processMetrics: false,
      attribution: { k: 10, sourcePrefixV4: 32, sourcePrefixV6: 64 },
      nat: { k: 10, portRange: config.natPortRange },
    });
    await metrics.render();
    const R = 10;
    let worst = 0;
    const t0 = performance.now();
    for (let i = 0; i < R; i++) {
      const t = performance.now();
      await metrics.render();
      worst = Math.max(worst, performance.now() - t);
    }
    const ms = (performance.now() - t0) / R;
    const t1 = performance.now();
    for (let i = 0; i < R; i++) {
      nat.topSnatMappings();
      nat.topSnatMappings();
      nat.topDnat();
      nat.maxMappingFlows();
    }
    const natMs = (performance.now() - t1) / R;
    console.log(
      `table of ${table.size.toLocaleString('en-US')} flows, ${variant}: arrays per flow: table ${perFlow(table.bytes)}, attribution ${perFlow(attribution?.bytes ?? 0)}, NAT ${perFlow(nat.bytes)} bytes (${nat.mappingCount.toLocaleString('en-US')} mappings); one scrape ${ms.toFixed(2)} ms, slowest ${worst.toFixed(2)} ms, of which NAT's rankings ${natMs.toFixed(2)} ms`,
    );
  }
}
