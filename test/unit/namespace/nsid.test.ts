/**
 * RTM_GETNSID / RTM_NEWNSID encoding and the reply decoding, against bytes captured from the real
 * kernel (6.18: `ip netns set ctx-cap1 5`, then RTM_GETNSID for it), and NsidClient's
 * get-or-assign logic through a fake transport, on a descriptor discovery keeps open.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConntrackError } from '../../../src/errors.js';
import {
  decodeNsidReply,
  encodeNsidRequest,
  NETNSA_FD,
  NETNSA_NSID,
  NsidClient,
  RTM_GETNSID,
  RTM_NEWNSID,
} from '../../../src/namespace/nsid.js';
import {
  NLM_F_ACK,
  NLM_F_REQUEST,
  NLMSG_HDRLEN,
  readU16h,
  readU32h,
  writeU32h,
} from '../../../src/netlink/nlmsg.js';
import { RequestSocket } from '../../../src/netlink/request.js';
import { ack, FakeTransport, type SentMessage } from '../../support/fake-transport.js';

// The kernel's reply to RTM_GETNSID (little-endian host), one datagram.
const REPLY = Buffer.from(
  [
    '1c000000', // nlmsg_len 28
    '5800', // nlmsg_type RTM_NEWNSID (88)
    '0000', // nlmsg_flags
    '07000000', // nlmsg_seq 7
    'a0750000', // nlmsg_pid
    '00000000', // struct rtgenmsg: rtgen_family AF_UNSPEC + 3 bytes of padding
    '0800', // nla_len 8
    '0100', // NETNSA_NSID
    '05000000', // s32 5
  ].join(''),
  'hex',
);

describe('nsid messages', () => {
  it('RTM_GETNSID carries the namespace as NETNSA_FD after a padded rtgenmsg', () => {
    const b = encodeNsidRequest(42);
    assert.equal(b.length, 4 + 8);
    assert.equal(b.readUInt8(0), 0, 'rtgen_family AF_UNSPEC');
    assert.equal(readU16h(b, 4), 8, 'nla_len');
    assert.equal(readU16h(b, 6), NETNSA_FD);
    assert.equal(readU32h(b, 8), 42);
  });

  it('RTM_NEWNSID adds NETNSA_NSID, -1 asking the kernel to choose', () => {
    const b = encodeNsidRequest(7, -1);
    assert.equal(b.length, 4 + 16);
    assert.equal(readU16h(b, 14), NETNSA_NSID);
    assert.equal(readU32h(b, 16) | 0, -1);
  });

  it('decodes the captured reply', () => {
    assert.equal(decodeNsidReply(REPLY, 0, REPLY.length), 5);
  });

  it('decodes NETNSA_NSID_NOT_ASSIGNED as -1', () => {
    const b = Buffer.from(REPLY);
    writeU32h(b, 0xffffffff, 24);
    assert.equal(decodeNsidReply(b, 0, b.length), -1);
  });

  it('rejects other messages, overrunning attributes and a reply without the id', () => {
    const code = (buf: Buffer): string => {
      try {
        decodeNsidReply(buf, 0, buf.length);
      } catch (err) {
        assert.ok(err instanceof ConntrackError);
        return err.code;
      }
      return 'decoded';
    };
    const other = Buffer.from(REPLY);
    other.writeUInt16LE(RTM_GETNSID, 4);
    assert.equal(code(other), 'CT_ERR_MESSAGE_TYPE');
    const long = Buffer.from(REPLY);
    long.writeUInt16LE(12, 20);
    assert.equal(code(long), 'CT_ERR_TRUNCATED');
    const short = Buffer.from(REPLY);
    short.writeUInt16LE(6, 20);
    assert.equal(code(short), 'CT_ERR_ATTR_LENGTH');
    const none = Buffer.from(REPLY);
    none.writeUInt16LE(2, 22); // NETNSA_PID instead
    assert.equal(code(none), 'CT_ERR_MISSING_ATTR');
  });
});

/** A route socket's kernel: answers GETNSID with `ids` in turn and NEWNSID with `newErrno` (0: ACK). */
function fakeRoute(ids: number[], newErrno = 0): FakeTransport {
  return new FakeTransport((req) => {
    if (req.type !== RTM_GETNSID) return [[ack(req.seq, newErrno)]];
    const r = Buffer.from(REPLY);
    writeU32h(r, req.seq, 8);
    writeU32h(r, (ids.shift() ?? -1) >>> 0, 24);
    return [[r, ack(req.seq)]];
  });
}

/** The NETNSA_FD and NETNSA_NSID a request carried (after the netlink header and rtgenmsg). */
const fdOf = (s: SentMessage): number => readU32h(s.bytes, NLMSG_HDRLEN + 8);
const nsidOf = (s: SentMessage): number | undefined =>
  s.bytes.length > NLMSG_HDRLEN + 12 ? readU32h(s.bytes, NLMSG_HDRLEN + 16) | 0 : undefined;

describe('NsidClient', () => {
  // A descriptor number nothing has open: the client must send it as it is, never open or close.
  const fd = 4242;

  it('returns an id the namespace already has, assigning nothing', async () => {
    const t = fakeRoute([3]);
    assert.equal(await new NsidClient(new RequestSocket(t)).ensure(fd), 3);
    assert.deepEqual(
      t.sent.map((s) => [s.type, fdOf(s)]),
      [[RTM_GETNSID, fd]],
    );
    assert.equal(t.sent[0]!.flags & (NLM_F_REQUEST | NLM_F_ACK), NLM_F_REQUEST | NLM_F_ACK);
  });

  it('assigns one (nsid -1) when there is none, for the same descriptor, and reads it back', async () => {
    const t = fakeRoute([-1, 9]);
    assert.equal(await new NsidClient(new RequestSocket(t)).ensure(fd), 9);
    assert.deepEqual(
      t.sent.map((s) => [s.type, nsidOf(s), fdOf(s)]),
      [
        [RTM_GETNSID, undefined, fd],
        [RTM_NEWNSID, -1, fd],
        [RTM_GETNSID, undefined, fd],
      ],
    );
  });

  it('get() only asks', async () => {
    const t = fakeRoute([-1]);
    assert.equal(await new NsidClient(new RequestSocket(t)).get(fd), -1);
    assert.deepEqual(
      t.sent.map((s) => s.type),
      [RTM_GETNSID],
    );
  });

  it('accepts EEXIST: someone assigned an id in between', async () => {
    const t = fakeRoute([-1, 4], 17);
    assert.equal(await new NsidClient(new RequestSocket(t)).ensure(fd), 4);
  });

  it('rejects other kernel errors with their errno', async () => {
    const t = fakeRoute([-1], 1);
    await assert.rejects(new NsidClient(new RequestSocket(t)).ensure(fd), {
      code: 'CT_ERR_KERNEL',
      errno: 1,
    });
  });
});
