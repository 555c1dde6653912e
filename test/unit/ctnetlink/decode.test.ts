/**
 * The decoders on messages captured from the kernel (scripts/capture-fixtures.ts), table-driven:
 * each fixture's `expect` is what conntrack-tools printed for the same entry at capture time.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { eventType } from '../../../src/ctnetlink/event.js';
import { stateName, TCP_STATES } from '../../../src/ctnetlink/states.js';
import {
  decodeCpuStats,
  decodeExpectationCpuStats,
  decodeGlobalStats,
} from '../../../src/ctnetlink/stats.js';
import { AF_INET, AF_INET6 } from '../../../src/netlink/nfnetlink.js';
import { NLM_F_MULTI, readU16h } from '../../../src/netlink/nlmsg.js';
import { decodeEvent } from '../../support/codec/event.js';
import { decodeFlow, type Flow } from '../../support/codec/flow.js';
import type { Counters } from '../../support/codec/flow-parts.js';
import { Status } from '../../support/codec/status.js';
import type { Tuple } from '../../support/codec/tuple.js';
import {
  bytes,
  dumpFixtures,
  eventFixtures,
  type FlowExpect,
  flowFixtures,
  statsFixtures,
  type TupleExpect,
} from '../helpers/fixtures.js';

const NS_PER_S = 1_000_000_000n;
const FAMILY: Record<number, FlowExpect['family']> = { [AF_INET]: 'ipv4', [AF_INET6]: 'ipv6' };

function tupleView(t: Tuple | undefined): TupleExpect | undefined {
  if (t === undefined) return undefined;
  const v: TupleExpect = { src: t.src, dst: t.dst, proto: t.proto };
  if (t.srcPort !== undefined) v.srcPort = t.srcPort;
  if (t.dstPort !== undefined) v.dstPort = t.dstPort;
  if (t.icmpId !== undefined) v.icmpId = t.icmpId;
  if (t.icmpType !== undefined) v.icmpType = t.icmpType;
  if (t.icmpCode !== undefined) v.icmpCode = t.icmpCode;
  return v;
}

/**
 * CTA_LABELS is the kernel's label bitmap as it lies in memory: unsigned longs in host order. The
 * fixtures come from a little-endian machine, where bit n is bit n%8 of byte n/8.
 */
function labelBits(labels: Buffer): number[] {
  const bits: number[] = [];
  for (let i = 0; i < labels.length * 8; i++) if (labels[i >> 3]! & (1 << (i & 7))) bits.push(i);
  return bits;
}

/** The decoded flow in the fixtures' terms; keys of attributes the kernel did not send are absent. */
function flowView(f: Flow, event: FlowExpect['event'], receivedAt: string | undefined): FlowExpect {
  const v: FlowExpect = {
    family: FAMILY[f.family] ?? (`family ${f.family}` as FlowExpect['family']),
    id: f.id ?? -1,
    orig: tupleView(f.orig) ?? { src: '', dst: '', proto: -1 },
    reply: tupleView(f.reply) ?? { src: '', dst: '', proto: -1 },
    status: f.status === undefined ? ['(no CTA_STATUS)'] : Status.names(f.status),
  };
  if (event !== undefined) v.event = event;
  const master = tupleView(f.master);
  if (master) v.master = master;
  if (f.tcp) v.tcpState = stateName(TCP_STATES, f.tcp.state);
  if (f.timeout !== undefined) v.timeout = f.timeout;
  if (f.mark !== undefined) v.mark = f.mark;
  if (f.zone !== undefined) v.zone = f.zone;
  if (f.use !== undefined) v.use = f.use;
  accountingView(f, v);
  // Not in the message: the tool's receive time, checked against CTA_TIMESTAMP_EVENT separately.
  if (receivedAt !== undefined) v.eventReceivedAt = receivedAt;
  if (f.helper !== undefined) v.helper = f.helper;
  if (f.labels !== undefined) v.labels = labelBits(f.labels);
  return v;
}

/** What nf_conntrack_acct and nf_conntrack_timestamp add, in the fixtures' terms. */
function accountingView(f: Flow, v: FlowExpect): void {
  if (f.countersOrig) v.countersOrig = countersView(f.countersOrig);
  if (f.countersReply) v.countersReply = countersView(f.countersReply);
  if (f.timestampStart !== undefined) v.timestampStartSec = Number(f.timestampStart / NS_PER_S);
  if (f.timestampStop !== undefined) v.timestampStopSec = Number(f.timestampStop / NS_PER_S);
}

function countersView(c: Counters): { packets: string; bytes: string } {
  return { packets: `${c.packets}`, bytes: `${c.bytes}` };
}

/** "1795576096.382327" -> nanoseconds */
function microsToNs(text: string): bigint {
  const [s = '0', us = '0'] = text.split('.');
  return BigInt(s) * NS_PER_S + BigInt(us.padEnd(6, '0')) * 1000n;
}

const captured = flowFixtures[0]?.captured;

describe(`decoders on messages captured from Linux ${captured?.kernel} (${captured?.date})`, () => {
  describe('events: decodeEvent equals conntrack -E', () => {
    for (const fx of eventFixtures) {
      it(fx.name, () => {
        const buf = bytes(fx);
        const type = readU16h(buf, 4);
        const flags = readU16h(buf, 6);
        assert.equal(eventType(type, flags), fx.expect.event);
        const ev = decodeEvent(buf, type, flags, 0, buf.length);
        assert.deepEqual(flowView(ev.flow, ev.type, fx.expect.eventReceivedAt), fx.expect);
        assert.equal(ev.flow.orig?.family, ev.flow.family, 'tuple family is the message family');
        // CTA_TIMESTAMP_EVENT: stamped by the kernel shortly before conntrack -E read the event.
        const stamp = ev.flow.timestampEvent;
        assert.equal(typeof stamp, 'bigint', 'CTA_TIMESTAMP_EVENT present');
        const lag = microsToNs(fx.expect.eventReceivedAt!) - stamp!;
        assert.ok(lag >= 0n && lag < NS_PER_S, `event stamped ${lag} ns before the tool received it`);
        if (ev.flow.timestampStop !== undefined) assert.ok(stamp! >= ev.flow.timestampStop);
      });
    }
  });

  describe('dump: decodeFlow equals conntrack -L', () => {
    for (const fx of dumpFixtures) {
      it(fx.name, () => {
        const buf = bytes(fx);
        assert.equal(readU16h(buf, 6) & NLM_F_MULTI, NLM_F_MULTI, 'a dump part is NLM_F_MULTI');
        const f = decodeFlow(buf, 0, buf.length);
        assert.deepEqual(flowView(f, undefined, undefined), fx.expect);
        assert.equal(f.timestampEvent, undefined, 'dumps carry no event stamp');
      });
    }
  });

  describe('statistics: decodeCpuStats equals conntrack -S, decodeGlobalStats conntrack -C', () => {
    for (const fx of statsFixtures) {
      it(fx.name, () => {
        const buf = bytes(fx);
        if (fx.expect.cpu !== undefined) {
          const s = decodeCpuStats(buf, 0, buf.length);
          assert.deepEqual(s, { cpu: fx.expect.cpu, values: fx.expect.values });
        } else {
          const g = decodeGlobalStats(buf, 0, buf.length);
          assert.deepEqual(g, { entries: fx.expect.entries, maxEntries: fx.expect.maxEntries });
        }
      });
    }
  });

  it('expectation statistics: one CPU of IPCTNL_MSG_EXP_GET_STATS_CPU', () => {
    const buf = Buffer.from(
      [
        '34000000', // nlmsg_len 52: header, nfgenmsg, four attributes
        '0301', // type: NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_EXP_GET_STATS_CPU (the kernel's subsystem, not _EXP)
        '0200', // flags: NLM_F_MULTI
        '01000000', // seq
        '00000000', // port id
        '00', // nfgen_family AF_UNSPEC
        '00', // version
        '0001', // res_id: cpu 1, big-endian
        '08000100', // CTA_STATS_EXP_NEW
        '00000002',
        '08000200', // CTA_STATS_EXP_CREATE
        '00000005',
        '08000300', // CTA_STATS_EXP_DELETE
        '00000004',
        '08000400', // an attribute a newer kernel might add: skipped
        '00000009',
        '08000100', // nothing after the end of the message is read
        '000000ff',
      ].join(''),
      'hex',
    );
    assert.deepEqual(decodeExpectationCpuStats(buf, 0, 52), {
      cpu: 1,
      values: { expect_new: 2, expect_create: 5, expect_delete: 4 },
    });
  });

  it('counters and timestamps are bigint, not doubles', () => {
    for (const fx of flowFixtures) {
      const f = decodeFlow(bytes(fx), 0, bytes(fx).length);
      for (const v of [f.countersOrig?.packets, f.countersOrig?.bytes, f.timestampStart, f.timestampEvent]) {
        if (v !== undefined) assert.equal(typeof v, 'bigint', fx.name);
      }
    }
  });

  it('the fixtures cover what they claim', () => {
    const all = flowFixtures.map((f) => f.expect);
    const some = (what: string, p: (e: FlowExpect) => boolean) => assert.ok(all.some(p), what);
    some('ipv4 tcp', (e) => e.family === 'ipv4' && e.orig.proto === 6);
    some('ipv6 tcp', (e) => e.family === 'ipv6' && e.orig.proto === 6);
    some('ipv4 udp replied', (e) => e.orig.proto === 17 && e.status.includes('SEEN_REPLY'));
    some(
      'ipv6 udp unreplied',
      (e) => e.family === 'ipv6' && e.orig.proto === 17 && !e.status.includes('SEEN_REPLY'),
    );
    some('icmp', (e) => e.orig.proto === 1 && e.orig.icmpType === 8);
    some('icmpv6', (e) => e.orig.proto === 58 && e.orig.icmpType === 128);
    some('mark', (e) => (e.mark ?? 0) !== 0);
    some('zone', (e) => e.zone !== undefined);
    some('labels', (e) => (e.labels?.length ?? 0) > 0);
    some('helper', (e) => e.helper !== undefined);
    some('master tuple', (e) => e.master !== undefined && e.status.includes('EXPECTED'));
    some('SNAT', (e) => e.status.includes('SRC_NAT') && e.reply.dst !== e.orig.src);
    some('DNAT', (e) => e.status.includes('DST_NAT') && e.reply.srcPort !== e.orig.dstPort);
    some(
      'destroy with counters and start/stop',
      (e) => e.event === 'destroy' && e.timestampStopSec !== undefined,
    );
    for (const state of [
      'SYN_SENT',
      'SYN_RECV',
      'ESTABLISHED',
      'FIN_WAIT',
      'LAST_ACK',
      'TIME_WAIT',
      'CLOSE',
    ]) {
      some(`TCP ${state}`, (e) => e.tcpState === state);
    }
    for (const ev of ['new', 'update', 'destroy'] as const) some(ev, (e) => e.event === ev);
    assert.ok(statsFixtures.filter((s) => s.expect.cpu !== undefined).length >= 1);
    assert.ok(statsFixtures.some((s) => s.expect.entries !== undefined));
  });
});
