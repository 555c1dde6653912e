/**
 * The lean decoder against what conntrack-tools printed for the same kernel messages (the
 * fixtures' expectations), and against the strict decoder on the fields both read.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatIPv4, formatIPv6 } from '../../../src/ctnetlink/address.js';
import { CTA_PROTO_NUM, CTA_TUPLE_ORIG, CTA_TUPLE_PROTO } from '../../../src/ctnetlink/constants.js';
import { TCP_STATES } from '../../../src/ctnetlink/states.js';
import { FlowSummary, summarizeFlow } from '../../../src/ctnetlink/summary.js';
import { ConntrackError } from '../../../src/errors.js';
import { AttributeCursor } from '../../../src/netlink/attributes.js';
import { AF_INET6, NFGENMSG_LEN } from '../../../src/netlink/nfnetlink.js';
import { NLMSG_HDRLEN, writeU16h } from '../../../src/netlink/nlmsg.js';
import { decodeFlow, encodeFlow, type Flow } from '../../support/codec/flow.js';
import { bytes, type FlowExpect, flowFixtures } from '../helpers/fixtures.js';
import { tcp } from '../helpers/flows.js';

function address(s: FlowSummary, at: number): string {
  return s.addrLen === 16 ? formatIPv6(s.buf, at) : formatIPv4(s.buf, at);
}

/** The summary against what conntrack-tools printed for the same message. */
function assertMatchesTool(s: FlowSummary, e: FlowExpect): void {
  assert.equal(s.family === AF_INET6 ? 'ipv6' : 'ipv4', e.family);
  assert.equal(s.id, e.id);
  assert.equal(s.proto, e.orig.proto);
  assert.equal(address(s, s.srcAt), e.orig.src);
  assert.equal(address(s, s.dstAt), e.orig.dst);
  if (e.orig.srcPort !== undefined) assert.equal(s.srcPort, e.orig.srcPort);
  if (e.orig.dstPort !== undefined) assert.equal(s.dstPort, e.orig.dstPort);
  if (e.orig.icmpId !== undefined) assert.equal(s.srcPort, e.orig.icmpId);
  if (e.orig.icmpType !== undefined) assert.equal(s.dstPort, (e.orig.icmpType << 8) | (e.orig.icmpCode ?? 0));
  if (e.tcpState !== undefined) assert.equal(TCP_STATES[s.protoState], e.tcpState);
  if (e.mark !== undefined) assert.equal(s.mark, e.mark);
  assert.equal(s.zone, e.zone ?? 0);
  if (e.timestampStartSec !== undefined) assert.equal(Math.floor(s.start), e.timestampStartSec);
  else assert.ok(Number.isNaN(s.start));
  if (e.timestampStopSec !== undefined) assert.equal(Math.floor(s.stop), e.timestampStopSec);
}

/** The summary against the strict decoder, on everything both read. */
function assertMatchesStrict(s: FlowSummary, f: Flow): void {
  assert.equal(s.status, f.status ?? -1);
  assert.equal(s.mark, f.mark ?? -1);
  assert.equal(s.protoState, f.tcp?.state ?? f.sctp?.state ?? f.dccp?.state ?? -1);
  assert.equal(s.start, f.timestampStart === undefined ? Number.NaN : Number(f.timestampStart) / 1e9);
  assert.equal(s.eventTime, f.timestampEvent === undefined ? Number.NaN : Number(f.timestampEvent) / 1e9);
}

describe('summarizeFlow', () => {
  for (const fx of flowFixtures) {
    it(`reads what the table needs of ${fx.name}`, () => {
      const buf = bytes(fx);
      const s = new FlowSummary();
      summarizeFlow(buf, 0, buf.length, s);
      assertMatchesTool(s, fx.expect);
      assertMatchesStrict(s, decodeFlow(buf, 0, buf.length));
      if (fx.expect.eventReceivedAt !== undefined) {
        // the kernel stamps the event just before conntrack -E received it
        const lag = Number(fx.expect.eventReceivedAt) - s.eventTime;
        assert.ok(lag >= 0 && lag < 1, `event stamped ${lag} s before it was received`);
      }
    });
  }

  it('hashes the original tuple: equal tuples equal, any field changed differs', () => {
    const hashes = new Set<number>();
    const s = new FlowSummary();
    for (const fx of flowFixtures) {
      const buf = bytes(fx);
      summarizeFlow(buf, 0, buf.length, s);
      hashes.add(s.tupleHash);
    }
    // Events and dump entries of one flow share a tuple; distinct tuples (by conntrack-tools'
    // text) must not share a hash.
    const tuples = new Set(
      flowFixtures.map((fx) => JSON.stringify({ ...fx.expect.orig, zone: fx.expect.zone })),
    );
    assert.equal(hashes.size, tuples.size);
  });

  it('resets every field between messages', () => {
    const [withTs] = flowFixtures.filter((fx) => fx.expect.timestampStartSec !== undefined);
    const [withoutTs] = flowFixtures.filter((fx) => fx.expect.timestampStartSec === undefined);
    assert.ok(withTs && withoutTs);
    const s = new FlowSummary();
    const a = bytes(withTs);
    summarizeFlow(a, 0, a.length, s);
    const b = bytes(withoutTs);
    summarizeFlow(b, 0, b.length, s);
    assert.ok(Number.isNaN(s.start));
  });

  it('throws ConntrackError on a truncated message', () => {
    const [fx] = flowFixtures;
    const buf = bytes(fx!).subarray(0, 30);
    assert.throws(
      () => summarizeFlow(buf, 0, buf.length, new FlowSummary()),
      (e: unknown) => e instanceof ConntrackError && e.code === 'CT_ERR_TRUNCATED',
    );
  });

  it('refuses a flow without CTA_ID or original tuple: the table could not key it', () => {
    const noId = tcp(1, 'SYN_SENT');
    noId.id = undefined;
    const noTuple = tcp(2, 'SYN_SENT');
    noTuple.orig = undefined;
    for (const f of [noId, noTuple]) {
      const buf = encodeFlow(f);
      assert.throws(
        () => summarizeFlow(buf, 0, buf.length, new FlowSummary()),
        (e: unknown) => e instanceof ConntrackError && e.code === 'CT_ERR_MISSING_ATTR' && e.offset === 0,
      );
    }
  });

  it('refuses an original tuple without CTA_PROTO_NUM as a missing attribute, not a truncation', () => {
    const buf = encodeFlow(tcp(3, 'SYN_SENT'));
    const c = new AttributeCursor('big-endian').reset(buf, NLMSG_HDRLEN + NFGENMSG_LEN, buf.length, 'flow');
    while (c.next() && c.type !== CTA_TUPLE_ORIG);
    const t = c.enter('CTA_TUPLE_ORIG');
    while (t.next() && t.type !== CTA_TUPLE_PROTO);
    const p = t.enter('CTA_TUPLE_PROTO');
    while (p.next() && p.type !== CTA_PROTO_NUM);
    writeU16h(buf, 0x7f, p.start - 2); // an attribute type no kernel sends: skipped unread
    assert.throws(
      () => summarizeFlow(buf, 0, buf.length, new FlowSummary()),
      (e: unknown) => e instanceof ConntrackError && e.code === 'CT_ERR_MISSING_ATTR',
    );
  });
});
