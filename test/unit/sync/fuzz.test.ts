/**
 * The event path fuzzed end to end, deterministically (seeded, as test/unit/ctnetlink/fuzz.test.ts):
 * random sequences of NEW, UPDATE and DESTROY messages over a small pool of flows (so that they
 * collide), with forged values (state numbers the kernel never sends, any protocol number, zones,
 * marks, status bits), payload bytes mutated and datagrams cut short, go through EventApplier
 * into a shadow table with attribution. After every step batch the table must equal a plain Map
 * model of the same rules: counts per (family, protocol, state), the flows, and the top K of every
 * attribution dimension (its values; ties may name other keys); nothing is thrown, no internal
 * error is logged, forged state numbers fold into one UNKNOWN per protocol, memory stays bounded.
 * A failure names FUZZ_SEED and the step.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Attribution, type Ranked } from '../../../src/attribution/attribution.js';
import { IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP } from '../../../src/ctnetlink/constants.js';
import { eventType } from '../../../src/ctnetlink/event.js';
import { FlowSummary, summarizeFlow } from '../../../src/ctnetlink/summary.js';
import { AF_INET, AF_INET6 } from '../../../src/netlink/nfnetlink.js';
import { NLMSG_HDRLEN, readU16h } from '../../../src/netlink/nlmsg.js';
import { EventApplier } from '../../../src/sync/applier.js';
import { CollectorCounters } from '../../../src/sync/counters.js';
import { familyName, hasPorts, isIcmp, stateCode, stateLabel } from '../../../src/table/classify.js';
import { ShadowTable } from '../../../src/table/table.js';
import { emptyFlow, encodeFlow, type Flow } from '../../support/codec/flow.js';
import { emptyTcpInfo } from '../../support/codec/protoinfo.js';
import type { Tuple } from '../../support/codec/tuple.js';
import { batchOf } from '../../support/fake-transport.js';
import { mulberry32 } from '../helpers/fixtures.js';
import { FakeClock } from '../helpers/flows.js';
import { RecordingLog } from './scripted.js';

/** FUZZ_SEED=... reproduces a run. */
const SEED = Number(process.env['FUZZ_SEED'] ?? 0x7ab1e) >>> 0;
const SEED_HEX = `0x${SEED.toString(16)}`;
const K = 5;
const STEPS = 6000;
/** Attribute payload starts after the netlink header and nfgenmsg; mutations stay behind it. */
const PAYLOAD_AT = NLMSG_HDRLEN + 4;
const IPPROTO_SCTP = 132;

interface ModelFlow {
  group: string;
  source: string;
  destination: string;
  zone: number;
  mark: number;
}

/** The table's rules, plainly: a flow is keyed by id and original tuple, in the state it was last told. */
class Model {
  readonly flows = new Map<string, ModelFlow>();

  apply(type: 'new' | 'update' | 'destroy', s: FlowSummary): void {
    const key = `${s.id}/${s.tupleHash}`;
    if (type === 'destroy') {
      this.flows.delete(key);
      return;
    }
    const code = stateCode(s);
    const had = this.flows.get(key);
    if (had) {
      if (code >= 0) had.group = groupOf(s, code);
      had.mark = Math.max(s.mark, 0);
    } else if (code >= 0) {
      this.flows.set(key, {
        group: groupOf(s, code),
        source: `${s.family}/${address(s, s.srcAt)}`,
        destination: `${s.family}/${s.proto}/${destinationPort(s)}/${address(s, s.dstAt)}`,
        zone: s.zone,
        mark: Math.max(s.mark, 0),
      });
    }
  }

  counts(of: (f: ModelFlow) => string | number): Map<string | number, number> {
    const out = new Map<string | number, number>();
    for (const f of this.flows.values()) out.set(of(f), (out.get(of(f)) ?? 0) + 1);
    return out;
  }
}

const groupOf = (s: FlowSummary, code: number) =>
  `${familyName(s.family)}/${s.proto}/${stateLabel(s.proto, code)}`;
const address = (s: FlowSummary, at: number) => (at < 0 ? '' : s.buf.toString('hex', at, at + s.addrLen));
const destinationPort = (s: FlowSummary) =>
  hasPorts(s.proto) ? s.dstPort : isIcmp(s.proto) ? s.dstPort >>> 8 : 0;

const V4 = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '192.168.1.9', '172.16.0.1', '10.0.0.4'];
const V6 = ['fd00::1', 'fd00::2', '2001:db8::7'];

type Garbage = 'none' | 'mutated' | 'cut';

/** Seeded choices. */
class Dice {
  readonly rand: () => number;
  constructor(seed: number) {
    this.rand = mulberry32(seed);
  }
  int(n: number): number {
    return Math.floor(this.rand() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  /** `value()` with probability p, else undefined. */
  maybe<T>(p: number, value: () => T): T | undefined {
    return this.rand() < p ? value() : undefined;
  }
}

/** An original tuple from a small pool: ids and tuples repeat, so events collide. */
function tuple(d: Dice, family: number, proto: number): Tuple {
  const addrs = family === AF_INET ? V4 : V6;
  const icmp = isIcmp(proto);
  const ports = hasPorts(proto);
  return {
    family,
    src: d.pick(addrs),
    dst: d.pick(addrs.slice(0, 3)),
    proto,
    srcPort: ports ? 40000 + d.int(3) : undefined,
    dstPort: ports ? d.pick([80, 443, 53]) : undefined,
    icmpId: icmp ? d.int(3) : undefined,
    icmpType: icmp ? d.pick([0, 8, 128]) : undefined,
    icmpCode: icmp ? 0 : undefined,
    zone: d.maybe(0.1, () => d.int(3)),
  };
}

/** A flow of the pool, its values sometimes forged (any protocol, status bits, state number). */
function randomFlow(d: Dice): Flow {
  const family = d.rand() < 0.8 ? AF_INET : AF_INET6;
  const icmp = family === AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6;
  const proto = d.pick([IPPROTO_TCP, IPPROTO_TCP, IPPROTO_UDP, icmp, IPPROTO_SCTP, d.int(256)]);
  const f = emptyFlow(family);
  f.id = d.int(48);
  f.orig = tuple(d, family, proto);
  f.status = d.rand() < 0.05 ? undefined : d.int(1 << 16);
  // TCP state numbers the kernel never sends (10..255) forge UNKNOWN.
  if (proto === IPPROTO_TCP)
    f.tcp = d.maybe(0.9, () => emptyTcpInfo(d.rand() < 0.8 ? d.int(10) : d.int(256)));
  f.mark = d.maybe(0.3, () => d.int(4));
  f.zone = d.maybe(0.1, () => d.int(3));
  return f;
}

/** One event message, or garbage: payload bytes mutated (header kept), or cut short. */
function randomMessage(d: Dice): { bytes: Buffer; garbage: Garbage } {
  const type = d.pick(['new', 'new', 'update', 'update', 'destroy'] as const);
  const f = randomFlow(d);
  if (type === 'destroy' && d.rand() < 0.7) f.tcp = undefined; // as the kernel sends them
  const bytes = encodeFlow(f, { type });
  const r = d.rand();
  if (r < 0.08) {
    for (let n = 1 + d.int(4); n > 0; n--) bytes[PAYLOAD_AT + d.int(bytes.length - PAYLOAD_AT)] = d.int(256);
    return { bytes, garbage: 'mutated' };
  }
  if (r < 0.12) return { bytes: bytes.subarray(0, d.int(bytes.length)), garbage: 'cut' };
  return { bytes, garbage: 'none' };
}

function topValues(r: Ranked<unknown>): number[] {
  return r.top.map((t) => t.value);
}

function expectedTop(counts: Map<string | number, number>): number[] {
  return [...counts.values()].sort((a, b) => b - a).slice(0, K);
}

/** The event path under test beside its model, and what a run saw. */
class EventPathFuzz {
  readonly dice = new Dice(SEED);
  readonly clock = new FakeClock();
  readonly attribution = new Attribution({
    k: K,
    sourcePrefixV4: 32,
    sourcePrefixV6: 128,
    clock: this.clock.read,
  });
  readonly table = new ShadowTable(
    { transition() {}, stateLeft() {}, flowEnded() {} },
    this.clock.read,
    this.attribution,
  );
  readonly counters = new CollectorCounters();
  readonly log = new RecordingLog();
  readonly applier = new EventApplier(this.table, this.counters, this.log, () => this.clock.now * 1000);
  readonly model = new Model();
  readonly tally = { messages: 0, mutated: 0, cut: 0, expectedDecodeErrors: 0, peakFlows: 0, peakBytes: 0 };
  private readonly probe = new FlowSummary();

  /** One datagram, or a batch of several (one maybe flagged truncated by its slot); returns how many. */
  step(step: number): number {
    const d = this.dice;
    const n = d.rand() < 0.2 ? 2 + d.int(6) : 1;
    const msgs = Array.from({ length: n }, () => randomMessage(d));
    const where = `step ${step} (FUZZ_SEED=${SEED_HEX})`;
    if (n === 1) {
      this.expect(msgs[0]!.bytes, msgs[0]!.garbage);
      assert.doesNotThrow(() => this.applier.onDatagram(msgs[0]!.bytes), where);
    } else {
      const truncated = d.maybe(0.3, () => d.int(n));
      msgs.forEach((m, i) => {
        if (i === truncated) this.tally.expectedDecodeErrors++;
        else this.expect(m.bytes, m.garbage);
      });
      const batch = batchOf(
        msgs.map((m) => m.bytes),
        truncated === undefined ? {} : { truncated },
      );
      assert.doesNotThrow(() => this.applier.onBatch(batch), where);
    }
    if (d.rand() < 0.3) this.clock.advance(d.int(5));
    return n;
  }

  /** What the applier should make of one datagram holding `bytes`, applied to the model. */
  private expect(bytes: Buffer, garbage: Garbage): void {
    this.tally.messages++;
    if (garbage === 'cut') {
      this.tally.cut++;
      return; // framing or decoding fails, or a fragment shorter than a header is no message
    }
    if (garbage === 'mutated') this.tally.mutated++;
    const et = eventType(readU16h(bytes, 4), readU16h(bytes, 6));
    try {
      summarizeFlow(bytes, 0, bytes.length, this.probe);
    } catch {
      this.tally.expectedDecodeErrors++;
      return;
    }
    if (et !== undefined) this.model.apply(et, this.probe);
  }

  check(step: number): void {
    const { table, model, attribution, tally } = this;
    const where = `step ${step} (FUZZ_SEED=${SEED_HEX})`;
    assert.equal(this.log.count('error'), 0, `${where}: an internal error was logged`);
    assert.equal(table.size, model.flows.size, `${where}: flows`);
    this.checkGroups(where);
    const dims: [string, Ranked<unknown>, Map<string | number, number>][] = [
      ['sources', attribution.topSources(), model.counts((f) => f.source)],
      ['destinations', attribution.topDestinations(), model.counts((f) => f.destination)],
      ['zones', attribution.topZones(), model.counts((f) => f.zone)],
      ['marks', attribution.topMarks(), model.counts((f) => f.mark)],
    ];
    for (const [name, ranked, counts] of dims) {
      assert.deepEqual(topValues(ranked), expectedTop(counts), `${where}: top ${name}`);
      const top = topValues(ranked).reduce((a, b) => a + b, 0);
      assert.equal(
        top + ranked.other,
        table.size,
        `${where}: top ${name} and the remainder add up to the flows`,
      );
    }
    const creators = attribution.topCreators();
    assert.ok(creators.top.length <= K && creators.other >= 0, `${where}: creators`);
    tally.peakFlows = Math.max(tally.peakFlows, table.size);
    tally.peakBytes = Math.max(tally.peakBytes, table.bytes + attribution.bytes);
  }

  /** Counts per (family, protocol, state) equal the model's; forged states fold into UNKNOWN. */
  private checkGroups(where: string): void {
    const byGroup = this.model.counts((f) => f.group);
    let sum = 0;
    const seen = new Set<string>();
    for (const g of this.table.groups()) {
      const name = `${g.family}/${g.proto}/${g.state}`;
      assert.ok(!seen.has(name), `${where}: group ${name} twice`);
      seen.add(name);
      assert.equal(g.count, byGroup.get(name) ?? 0, `${where}: ${name}`);
      assert.ok(!/^UNKNOWN_/.test(g.state), `${where}: a forged state number has its own label (${g.state})`);
      sum += g.count;
    }
    assert.equal(sum, this.table.size, `${where}: counts per state add up to the flows`);
  }
}

describe(`fuzzing the event path into the table and attribution (FUZZ_SEED=${SEED_HEX})`, () => {
  it(`${STEPS} random NEW/UPDATE/DESTROY messages, forged values and garbage keep the table equal to a Map model`, (t) => {
    const fuzz = new EventPathFuzz();
    for (let step = 0; step < STEPS; ) {
      const n = fuzz.step(step);
      step += n;
      if (step % 97 < n) fuzz.check(step);
    }
    fuzz.check(STEPS);
    const { tally, counters, table } = fuzz;

    // Every garbage input the decoder refused was counted; cut ones are counted or were no message.
    const errors = counters.decodeErrors;
    assert.ok(
      errors >= tally.expectedDecodeErrors && errors <= tally.expectedDecodeErrors + tally.cut,
      `decode errors ${errors}, expected ${tally.expectedDecodeErrors}..${tally.expectedDecodeErrors + tally.cut} (FUZZ_SEED=${SEED_HEX})`,
    );
    // Bounded: at most one group per (family, protocol, state), UNKNOWN included, over 2 families x
    // at most 256 protocols; and the pool's few thousand flows in well under a MiB.
    assert.ok(table.groups().length < 2 * 256 * 12, `groups: ${table.groups().length}`);
    assert.ok(tally.peakBytes < 1 << 20, `peak bytes ${tally.peakBytes}`);
    t.diagnostic(JSON.stringify({ ...tally, decodeErrors: errors, groups: table.groups().length }));
    // The run exercised what it means to: flows came and went, garbage was refused.
    assert.ok(
      tally.peakFlows > 50 && tally.mutated > 100 && tally.cut > 100 && errors > 100,
      JSON.stringify(tally),
    );
  });
});
