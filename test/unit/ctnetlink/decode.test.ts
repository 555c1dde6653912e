/**
 * The decoders on bytes captured from the kernel, compared with what conntrack-tools printed for
 * the same entries at capture time (see scripts/capture-fixtures.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { eventType } from '../../../src/ctnetlink/event.js';
import { decodeFlow } from '../../../src/ctnetlink/flow.js';
import { decodeCpuStats, decodeGlobalStats } from '../../../src/ctnetlink/stats.js';
import { IPS_ASSURED, IPS_CONFIRMED, IPS_SEEN_REPLY } from '../../../src/ctnetlink/status.js';
import { readU16h } from '../../../src/netlink/nlmsg.js';
import { familyName, protocolName, stateOf } from '../../../src/table/classify.js';
import { parseListLine, type ToolFlow } from '../../integration/harness/conntrack-tool.js';
import { capture, ofKind } from '../helpers/fixtures.js';

const decode = (buf: Buffer) => decodeFlow(buf, 0, buf.length);
const typeOf = (buf: Buffer) => eventType(readU16h(buf, 4), readU16h(buf, 6));
const listed = new Map<number, ToolFlow>(
  capture.conntrackList.flatMap((l) => {
    const f = parseListLine(l);
    return f ? [[f.id, f] as const] : [];
  }),
);

describe(`decoders on messages captured from Linux ${capture.captured.kernel}`, () => {
  const dump = ofKind('dump');
  const events = ofKind('event');

  it('the capture covers TCP, UDP, ICMP, ICMPv6 and IPv6 TCP, with counters, timestamps, mark and zone', () => {
    const kinds = new Set(
      dump.map(decode).map((f) => `${familyName(f.family)}/${protocolName(f.orig!.proto)}`),
    );
    for (const k of ['ipv4/tcp', 'ipv6/tcp', 'ipv4/udp', 'ipv4/icmp', 'ipv6/icmpv6'])
      assert.ok(kinds.has(k), k);
    assert.ok(events.length >= 15);
  });

  for (const [i, buf] of dump.entries()) {
    it(`dump message ${i} equals conntrack -L`, (t) => {
      const f = decode(buf);
      const tool = listed.get(f.id!);
      if (!tool) {
        // deleted by the capture script after the dump: its DESTROY event must be there instead
        assert.ok(
          events.some((e) => typeOf(e) === 'destroy' && decode(e).id === f.id),
          `flow ${f.id} is neither listed nor destroyed`,
        );
        t.diagnostic('deleted after the dump; DESTROY found');
        return;
      }
      const proto = f.orig!.proto;
      assert.deepEqual(
        {
          family: familyName(f.family),
          protocol: protocolName(proto),
          state: stateOf(f, proto),
          src: f.orig!.src,
          dst: f.orig!.dst,
          sport: f.orig!.srcPort,
          dport: f.orig!.dstPort,
          mark: f.mark,
          zone: f.zone,
          packets: [Number(f.countersOrig!.packets), Number(f.countersReply!.packets)],
          bytes: [Number(f.countersOrig!.bytes), Number(f.countersReply!.bytes)],
          assured: (f.status! & IPS_ASSURED) !== 0,
          unreplied: (f.status! & IPS_SEEN_REPLY) === 0,
        },
        {
          family: tool.family,
          protocol: tool.protocol,
          state: tool.state,
          src: tool.src,
          dst: tool.dst,
          sport: tool.sport,
          dport: tool.dport,
          mark: tool.mark,
          zone: tool.zone,
          packets: tool.packets,
          bytes: tool.bytes,
          assured: tool.assured,
          unreplied: tool.unreplied,
        },
      );
      // reply tuple mirrors the original on loopback without NAT
      assert.equal(f.reply!.src, f.orig!.dst);
      assert.equal(f.reply!.srcPort, f.orig!.dstPort);
      assert.equal(f.status! & IPS_CONFIRMED, IPS_CONFIRMED);
      assert.ok(f.timestampStart! > 1_600_000_000n * 1_000_000_000n, 'start timestamp in ns since 1970');
      assert.equal(f.use, 1);
      assert.equal(f.unknownAttrs, 0);
    });
  }

  it('ICMP tuples carry type, code and id; ICMPv6 its own', () => {
    const icmp = dump.map(decode).filter((f) => f.orig!.proto === 1 || f.orig!.proto === 58);
    assert.equal(icmp.length, 2);
    for (const f of icmp) {
      const v6 = f.orig!.proto === 58;
      assert.equal(f.orig!.icmpType, v6 ? 128 : 8);
      assert.equal(f.reply!.icmpType, v6 ? 129 : 0);
      assert.equal(f.orig!.icmpCode, 0);
      assert.equal(f.orig!.icmpId, f.reply!.icmpId);
      assert.equal(f.orig!.srcPort, undefined);
    }
  });

  it('events: NEW first with CREATE|EXCL, TCP walks SYN_SENT..TIME_WAIT, DESTROY carries the stop stamp', () => {
    const decoded = events.map((e) => ({ type: typeOf(e), flow: decode(e) }));
    const tcp4 = dump.map(decode).find((f) => f.orig!.proto === 6 && f.family === 2 && f.tcp!.state === 7)!;
    const seq = decoded.filter((e) => e.flow.id === tcp4.id);
    assert.equal(seq[0]!.type, 'new');
    assert.deepEqual(
      seq.map((e) => stateOf(e.flow, 6)),
      ['SYN_SENT', 'SYN_RECV', 'ESTABLISHED', 'FIN_WAIT', 'LAST_ACK', 'TIME_WAIT'],
    );
    assert.ok(seq.slice(1).every((e) => e.type === 'update'));
    const destroy = decoded.find((e) => e.type === 'destroy')!;
    assert.ok(destroy.flow.timestampStop! >= destroy.flow.timestampStart!);
    assert.ok(destroy.flow.countersOrig!.packets >= 1n);
    // events omit CTA_USE and, when the mark is 0, CTA_MARK; dumps always carry them
    assert.ok(decoded.every((e) => e.flow.use === undefined));
    // every event of this kernel is stamped (CTA_TIMESTAMP_EVENT, newer than the uapi header);
    // start/stop stamps and counters come with DESTROY only, not with NEW or UPDATE
    assert.ok(decoded.every((e) => e.flow.timestampEvent !== undefined));
    assert.ok(destroy.flow.timestampEvent! >= destroy.flow.timestampStop!);
    assert.ok(decoded.filter((e) => e.type !== 'destroy').every((e) => e.flow.timestampStart === undefined));
    assert.ok(decoded.every((e) => e.flow.unknownAttrs === 0));
  });

  it('per-CPU statistics equal conntrack -S; global statistics count the dumped entries', () => {
    const cpus = ofKind('cpu-stats').map((b) => decodeCpuStats(b, 0, b.length));
    assert.equal(cpus.length, capture.conntrackStats.length);
    for (const line of capture.conntrackStats) {
      const m = /^cpu=(\d+)\s+(.*)$/.exec(line.trim())!;
      const tool = Object.fromEntries(
        m[2]!
          .trim()
          .split(/\s+/)
          .map((kv) => kv.split('='))
          .map(([k, v]) => [k === 'chaintoolong' ? 'chain_toolong' : k!, Number(v)]),
      );
      assert.deepEqual(cpus.find((c) => c.cpu === Number(m[1]))?.values, tool);
    }
    const [g] = ofKind('global-stats');
    const global = decodeGlobalStats(g!, 0, g!.length);
    assert.equal(global.entries, dump.length);
    assert.ok(global.maxEntries! > 0);
  });
});
