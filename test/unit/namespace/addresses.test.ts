/**
 * RTM_GETADDR: the dump request and the decoder of RTM_NEWADDR replies, on messages built as the
 * kernel builds them (linux/if_addr.h; attributes in host byte order), replayed through the fake
 * transport; then the real kernel's answer for the test's own namespace (needs no root).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decodeAddress,
  dumpAddresses,
  encodeGetAddr,
  IFA_ADDRESS,
  IFA_LOCAL,
  MAX_ADDRESSES,
  RTM_NEWADDR,
  readAddresses,
} from '../../../src/namespace/addresses.js';
import { encodeMessage, NLM_F_MULTI, NLMSG_DONE, NLMSG_HDRLEN } from '../../../src/netlink/nlmsg.js';
import { RequestSocket } from '../../../src/netlink/request.js';
import { FakeTransport } from '../../support/fake-transport.js';

const AF_INET = 2;
const AF_INET6 = 10;

/** One RTM_NEWADDR: ifaddrmsg {family, prefixlen, flags, scope, index}, then its attributes. */
function newaddr(family: number, scope: number, attrs: [number, Buffer][], seq = 0): Buffer {
  const head = Buffer.from([family, family === AF_INET ? 32 : 128, 0, scope, 1, 0, 0, 0]);
  const parts = [head];
  for (const [type, value] of attrs) {
    const a = Buffer.alloc(4 + ((value.length + 3) & ~3));
    a.writeUInt16LE(4 + value.length, 0); // nla_len
    a.writeUInt16LE(type, 2); // nla_type
    value.copy(a, 4);
    parts.push(a);
  }
  return encodeMessage(RTM_NEWADDR, NLM_F_MULTI, seq, Buffer.concat(parts));
}

const v4 = (...b: number[]): Buffer => Buffer.from(b);
const v6 = (hex: string): Buffer => Buffer.from(hex, 'hex');

describe('decodeAddress', () => {
  it('IPv4: IFA_LOCAL (the own address; IFA_ADDRESS is the peer on point-to-point)', () => {
    const m = newaddr(AF_INET, 0, [
      [IFA_ADDRESS, v4(10, 0, 0, 2)],
      [IFA_LOCAL, v4(10, 250, 1, 1)],
    ]);
    assert.equal(decodeAddress(m, 0, m.length), '10.250.1.1');
  });

  it('IPv6: IFA_ADDRESS, as inet_ntop writes it', () => {
    const m = newaddr(AF_INET6, 0, [[IFA_ADDRESS, v6('20010db8000000000000000000000001')]]);
    assert.equal(decodeAddress(m, 0, m.length), '2001:db8::1');
  });

  it('leaves out link and host scope (in every namespace at once) and other families', () => {
    for (const [family, scope] of [
      [AF_INET, 254],
      [AF_INET6, 253],
      [17, 0],
    ] as const) {
      const m = newaddr(family, scope, [[IFA_ADDRESS, v4(127, 0, 0, 1)]]);
      assert.equal(decodeAddress(m, 0, m.length), undefined);
    }
  });

  it('throws our error on a wrong length or type', () => {
    const short = newaddr(AF_INET, 0, [[IFA_LOCAL, v4(10, 0, 0)]]);
    assert.throws(() => decodeAddress(short, 0, short.length), { code: 'CT_ERR_ATTR_LENGTH' });
    const other = encodeMessage(21, 0, 0, Buffer.alloc(8));
    assert.throws(() => decodeAddress(other, 0, other.length), { code: 'CT_ERR_MESSAGE_TYPE' });
    assert.throws(() => decodeAddress(other, 0, NLMSG_HDRLEN), { code: 'CT_ERR_MESSAGE_TYPE' });
  });
});

describe('dumpAddresses', () => {
  it('asks for every family and collects the dump until DONE, at most MAX_ADDRESSES, sorted', async () => {
    const t = new FakeTransport();
    const socket = new RequestSocket(t, 1000);
    const result = dumpAddresses(socket);
    await new Promise(setImmediate); // requests are queued: sent a tick later
    const req = t.sent[0]!;
    assert.equal(req.type, 22, 'RTM_GETADDR');
    assert.equal(req.flags & 0x300, 0x300, 'NLM_F_DUMP');
    assert.deepEqual(req.bytes.subarray(NLMSG_HDRLEN), encodeGetAddr());
    const seq = req.seq;
    const msgs: Buffer[] = [];
    for (let i = 0; i < MAX_ADDRESSES + 5; i++)
      msgs.push(newaddr(AF_INET, 0, [[IFA_LOCAL, v4(10, 0, i >> 8, i & 255)]], seq));
    msgs.push(newaddr(AF_INET, 254, [[IFA_LOCAL, v4(127, 0, 0, 1)]], seq));
    msgs.push(encodeMessage(NLMSG_DONE, NLM_F_MULTI, seq, Buffer.alloc(4)));
    const datagrams: Buffer[][] = [];
    for (let i = 0; i < msgs.length; i += 20) datagrams.push(msgs.slice(i, i + 20));
    t.deliver(datagrams);
    const got = await result;
    assert.equal(got.length, MAX_ADDRESSES);
    assert.deepEqual(got, [...got].sort());
    assert.ok(!got.includes('127.0.0.1'));
    socket.close();
  });
});

describe('readAddresses on the real kernel', () => {
  it("reads the test's own namespace: no loopback, each address once", async () => {
    const got = await readAddresses(undefined);
    assert.ok(!got.includes('127.0.0.1') && !got.includes('::1'));
    assert.equal(new Set(got).size, got.length);
  });
});
