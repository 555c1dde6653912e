/** encodeFlow is decodeFlow's inverse: for kernel-captured flows and for every optional field. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { align4, readU16h, readU32h } from '../../../src/netlink/nlmsg.js';
import { decodeEvent } from '../../support/codec/event.js';
import { decodeFlow, emptyFlow, encodeFlow, type Flow } from '../../support/codec/flow.js';
import { bytes, dumpFixtures, flowFixtures } from '../helpers/fixtures.js';

const decode = (buf: Buffer) => decodeFlow(buf, 0, buf.length);

/** The message's top-level attributes as hex (padding included), sorted. */
function topLevelAttributes(buf: Buffer): string[] {
  const out: string[] = [];
  for (let off = 20; off + 4 <= buf.length; ) {
    const len = readU16h(buf, off);
    out.push(buf.subarray(off, off + align4(len)).toString('hex'));
    off += align4(len);
  }
  return out.sort();
}

/** Every field the decoder knows, with values that catch byte-order and width mistakes. */
function everything(): Flow {
  const f = emptyFlow(10);
  const tuple = (src: string, dst: string) => ({
    family: 10,
    src,
    dst,
    proto: 6,
    srcPort: 0xfedc,
    dstPort: 443,
    icmpId: undefined,
    icmpType: undefined,
    icmpCode: undefined,
    zone: 0x1234,
  });
  return {
    ...f,
    id: 0xfedcba98,
    orig: tuple('2001:db8::1', 'fe80::a:b:c:d'),
    reply: tuple('fe80::a:b:c:d', '2001:db8::1'),
    master: tuple('2001:db8::2', '2001:db8::3'),
    status: 0x1fffe,
    timeout: 431999,
    mark: 0xdeadbeef,
    zone: 7,
    use: 3,
    tcp: {
      state: 3,
      wscaleOrig: 7,
      wscaleReply: 14,
      flagsOrig: 0x23,
      flagsOrigMask: 0x23,
      flagsReply: 0x01,
      flagsReplyMask: 0x3f,
    },
    sctp: { state: 3, vtagOrig: 0x80000001, vtagReply: 2 },
    dccp: { state: 4, role: 1, handshakeSeq: 0xffff_ffff_ffffn },
    // above 2^53: precision would be lost in a double
    countersOrig: { packets: 2n ** 53n + 1n, bytes: 2n ** 64n - 1n },
    countersReply: { packets: 0n, bytes: 1n },
    timestampStart: 1_790_000_000_123_456_789n,
    timestampStop: 1_790_000_100_987_654_321n,
    timestampEvent: 1_790_000_100_987_654_322n,
    helper: 'ftp',
    natSrc: { minIp: '10.0.0.1', maxIp: '10.0.0.9', minPort: 1024, maxPort: 65535 },
    natDst: { minIp: '2001:db8::8', maxIp: '2001:db8::9', minPort: undefined, maxPort: undefined },
    seqAdjOrig: { correctionPos: 1, offsetBefore: 0xffffffff, offsetAfter: 3 },
    seqAdjReply: { correctionPos: 4, offsetBefore: 5, offsetAfter: 6 },
    secmark: 9,
    secctx: 'system_u:object_r:ssh_t:s0',
    labels: Buffer.from('0102030405060708090a0b0c0d0e0f10', 'hex'),
    synproxy: { isn: 1, its: 0xffffffff, tsoff: 3 },
  };
}

describe('encode/decode round trip', () => {
  it('keeps every field, 64-bit counters and timestamps exactly', () => {
    const f = everything();
    assert.deepEqual(decode(encodeFlow(f)), f);
  });

  it('ICMP and ICMPv6 tuples use their own attributes', () => {
    for (const [family, proto, src] of [
      [2, 1, '192.0.2.1'],
      [10, 58, '2001:db8::1'],
    ] as const) {
      const f = emptyFlow(family);
      f.id = 1;
      f.orig = {
        family,
        src,
        dst: src,
        proto,
        srcPort: undefined,
        dstPort: undefined,
        icmpId: 0xbeef,
        icmpType: 8,
        icmpCode: 0,
        zone: undefined,
      };
      assert.deepEqual(decode(encodeFlow(f)), f);
    }
  });

  for (const fx of flowFixtures) {
    it(`kernel-captured ${fx.name}: decode(encode(decode(bytes))) equals decode(bytes)`, () => {
      const f = decode(bytes(fx));
      const again = encodeFlow(f);
      assert.deepEqual(decode(again), f);
      // and once more, from our own bytes: the encoder is stable
      assert.deepEqual(encodeFlow(decode(again)), again);
    });
  }

  it("a dump part re-encodes to the kernel's own attributes, byte for byte", () => {
    // The order differs: 6.18 sends status, mark, id, use, timeout, then counters and timestamps;
    // order carries no meaning in netlink, the bytes of each attribute do.
    for (const fx of dumpFixtures) {
      const buf = bytes(fx);
      const ours = encodeFlow(decode(buf), { seq: readU32h(buf, 8) });
      assert.equal(ours.subarray(0, 12).toString('hex'), buf.subarray(0, 12).toString('hex'), 'header');
      assert.deepEqual(topLevelAttributes(ours), topLevelAttributes(buf), fx.name);
    }
  });

  it('hand-built IPv4 flow with only the mandatory attributes', () => {
    const f = emptyFlow(2);
    f.orig = {
      family: 2,
      src: '0.0.0.0',
      dst: '255.255.255.255',
      proto: 17,
      srcPort: 0,
      dstPort: 65535,
      icmpId: undefined,
      icmpType: undefined,
      icmpCode: undefined,
      zone: undefined,
    };
    f.reply = { ...f.orig, src: f.orig.dst, dst: f.orig.src, srcPort: 65535, dstPort: 0 };
    assert.deepEqual(decode(encodeFlow(f)), f);
  });

  it('64-bit values at the edges survive: 2^53 + 1, 2^63, 2^64 - 1', () => {
    for (const v of [2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n, 0n]) {
      const f = everything();
      f.countersOrig = { packets: v, bytes: v };
      f.countersReply = { packets: v, bytes: 2n ** 64n - 1n - v };
      f.timestampStart = v;
      f.timestampStop = v;
      f.timestampEvent = v;
      f.dccp = { state: 1, role: 0, handshakeSeq: v };
      const back = decode(encodeFlow(f));
      assert.equal(back.countersOrig?.packets, v);
      assert.equal(back.countersReply?.bytes, 2n ** 64n - 1n - v);
      assert.deepEqual(back, f);
    }
  });

  it('the event type survives the header: new, update, destroy', () => {
    const f = decode(bytes(dumpFixtures[0]!));
    for (const type of ['new', 'update', 'destroy'] as const) {
      const buf = encodeFlow(f, { type });
      const ev = decodeEvent(buf, readU16h(buf, 4), readU16h(buf, 6), 0, buf.length);
      assert.equal(ev.type, type);
    }
  });
});
