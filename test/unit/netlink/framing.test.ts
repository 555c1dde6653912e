/**
 * Framing without a kernel: batches laid out as the addon lays them out, datagrams of several
 * messages as the kernel packs them (the last one unpadded), and the ways a datagram can be cut.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConntrackError } from '../../../src/errors.js';
import { DatagramCursor, forEachDatagram, MessageCursor } from '../../../src/netlink/framing.js';
import { encodeMessage, NLM_F_MULTI, NLMSG_DONE, writeU32h } from '../../../src/netlink/nlmsg.js';
import { batchOf } from '../../support/fake-transport.js';

const msg = (type: number, seq: number, payload = 4) =>
  encodeMessage(type, NLM_F_MULTI, seq, Buffer.alloc(payload));
const truncatedAt = (offset: number) => (e: unknown) =>
  e instanceof ConntrackError && e.code === 'CT_ERR_TRUNCATED' && e.offset === offset;

describe('DatagramCursor', () => {
  it('yields whole datagrams with their bounds and namespace ids', () => {
    const a = Buffer.alloc(20, 1);
    const b = Buffer.alloc(36, 2);
    const d = new DatagramCursor().reset(batchOf([a, b], { nsids: [-1, 7] }));
    const seen: [number, number, number][] = [];
    while (d.next()) seen.push([d.buf[d.start]!, d.end - d.start, d.nsid]);
    assert.deepEqual(seen, [
      [1, 20, -1],
      [2, 36, 7],
    ]);
    assert.equal(d.truncated, 0);
  });

  it('steps over a truncated datagram and counts it before yielding the next', () => {
    const d = new DatagramCursor().reset(batchOf([Buffer.alloc(20), Buffer.alloc(24)], { truncated: 0 }));
    assert.equal(d.next(), true);
    assert.equal(d.truncated, 1, 'counted by the time the datagram after it is seen');
    assert.equal(d.end - d.start, 24);
    assert.equal(d.next(), false);
    assert.equal(d.truncation('reply').code, 'CT_ERR_TRUNCATED');
  });

  it('starts afresh at reset, and forEachDatagram reports the truncated count', () => {
    const batch = batchOf([Buffer.alloc(20), Buffer.alloc(24)], { truncated: 1 });
    const d = new DatagramCursor().reset(batch);
    while (d.next());
    assert.equal(d.reset(batch).truncated, 0);
    const lengths: number[] = [];
    assert.equal(
      forEachDatagram(batch, (_b, start, end) => lengths.push(end - start)),
      1,
    );
    assert.deepEqual(lengths, [20]);
  });
});

describe('MessageCursor', () => {
  it('walks the messages of a datagram, the last one unpadded', () => {
    const last = msg(NLMSG_DONE, 2, 5); // 21 bytes: no padding after it
    const datagram = Buffer.concat([msg(0x100, 1), msg(0x100, 1), last.subarray(0, 21)]);
    const m = new MessageCursor().reset(datagram);
    const seen: [number, number, number][] = [];
    while (m.next()) seen.push([m.type, m.seq, m.end - m.start]);
    assert.deepEqual(seen, [
      [0x100, 1, 20],
      [0x100, 1, 20],
      [NLMSG_DONE, 2, 21],
    ]);
  });

  it('walks only its datagram of a larger buffer, with offsets relative to it', () => {
    const buf = Buffer.concat([Buffer.alloc(8, 0xff), msg(0x100, 3), Buffer.alloc(8, 0xff)]);
    const m = new MessageCursor().reset(buf, 8, 28);
    assert.equal(m.next(), true);
    assert.deepEqual([m.start, m.end, m.flags], [8, 28, NLM_F_MULTI]);
    assert.equal(m.next(), false);
    const bad = Buffer.from(buf);
    writeU32h(bad, 64, 8);
    assert.throws(() => new MessageCursor().reset(bad, 8, 28).next(), truncatedAt(0));
  });

  it('throws CT_ERR_TRUNCATED at an overrunning or too short message and at trailing bytes', () => {
    const long = msg(0x100, 1);
    writeU32h(long, 21, 0);
    assert.throws(() => new MessageCursor().reset(long).next(), truncatedAt(0));
    const short = msg(0x100, 1);
    writeU32h(short, 15, 0);
    assert.throws(() => new MessageCursor().reset(short).next(), truncatedAt(0));
    const trailing = new MessageCursor().reset(Buffer.concat([msg(0x100, 1), Buffer.alloc(8)]));
    assert.equal(trailing.next(), true, 'the message before the damage is seen');
    assert.throws(() => trailing.next(), truncatedAt(20));
  });
});
