/**
 * Addresses print as inet_ntop(3) prints them, which is what conntrack -L shows. Node's
 * net.SocketAddress canonicalises through libuv's inet_ntop, a copy of the same ISC code as glibc's
 * (embedded IPv4 forms included), so it serves as the oracle; the WHATWG URL serializer agrees
 * wherever no embedded IPv4 form applies.
 */
import assert from 'node:assert/strict';
import { isIPv6, SocketAddress } from 'node:net';
import { describe, it } from 'node:test';
import { formatIPv4, formatIPv6, parseAddress } from '../../../src/ctnetlink/address.js';
import { mulberry32 } from '../helpers/fixtures.js';

function hex(h: string): Buffer {
  return Buffer.from(h.replace(/\s/g, ''), 'hex');
}

function groups(b: Buffer): string {
  return Array.from({ length: 8 }, (_, i) => b.readUInt16BE(2 * i).toString(16)).join(':');
}

/** inet_ntop by way of libuv. */
function ntop(b: Buffer): string {
  return new SocketAddress({ address: groups(b), family: 'ipv6' }).address;
}

describe('addresses', () => {
  it('IPv4 dotted quad, at any offset', () => {
    assert.equal(formatIPv4(hex('ff 00 7f 01'), 0), '255.0.127.1');
    assert.equal(formatIPv4(hex('00 0a 00 00 01 02'), 2), '0.0.1.2');
    assert.deepEqual(parseAddress('255.0.127.1'), hex('ff 00 7f 01'));
  });

  for (const [bytes, text, why] of [
    ['00000000000000000000000000000000', '::', 'all zero'],
    ['00000000000000000000000000000001', '::1', 'loopback'],
    ['20010db8000000000000000000000001', '2001:db8::1', 'documentation prefix'],
    ['20010db8000000010000000000000001', '2001:db8:0:1::1', 'longest zero run'],
    ['20010db8000000010001000000000000', '2001:db8:0:1:1::', 'trailing run'],
    ['20010000000000010000000000000001', '2001:0:0:1::1', 'the longer run, not the first'],
    ['20010000000000010000000000010001', '2001::1:0:0:1:1', 'first of two equal runs'],
    ['20010db8000100010001000100010001', '2001:db8:1:1:1:1:1:1', 'no zero group'],
    ['20010db8000000010001000100010001', '2001:db8:0:1:1:1:1:1', 'one zero group: not compressed'],
    ['00000000000000000000ffff01020304', '::ffff:1.2.3.4', 'IPv4-mapped'],
    ['00000000000000000000ffff00000000', '::ffff:0.0.0.0', 'IPv4-mapped 0.0.0.0'],
    ['00000000000000000000000001020304', '::1.2.3.4', 'IPv4-compatible (deprecated)'],
    ['00000000000000000000000000020003', '::0.2.0.3', 'IPv4-compatible, small'],
    ['fe800000000000000a0b0c0d0e0f1011', 'fe80::a0b:c0d:e0f:1011', 'link-local'],
    ['ffffffffffffffffffffffffffffffff', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'all ones'],
  ] as const) {
    it(`IPv6 ${text} (${why})`, () => {
      const b = hex(bytes);
      assert.equal(formatIPv6(b, 0), text);
      assert.equal(ntop(b), text, 'what inet_ntop prints');
      assert.ok(isIPv6(text));
      assert.deepEqual(parseAddress(text), b);
    });
  }

  it('IPv6 at an offset inside a larger buffer', () => {
    const b = Buffer.concat([hex('aabbcc'), hex('20010db8000000000000000000000001'), hex('dd')]);
    assert.equal(formatIPv6(b, 3), '2001:db8::1');
  });

  it('20,000 sparse random addresses: inet_ntop form, WHATWG form where they agree, and back', () => {
    const rand = mulberry32(0xadd2e55);
    for (let i = 0; i < 20_000; i++) {
      const b = Buffer.alloc(16);
      // mostly zero groups, so that runs of every length and position occur
      for (let g = 0; g < 8; g++) if (rand() < 0.4) b.writeUInt16BE(Math.floor(rand() * 0x10000), 2 * g);
      if (rand() < 0.05) b.writeUInt16BE(0xffff, 10);
      const ours = formatIPv6(b, 0);
      assert.equal(ours, ntop(b), groups(b));
      if (!ours.includes('.'))
        assert.equal(ours, new URL(`http://[${ours}]/`).hostname.slice(1, -1), groups(b));
      assert.deepEqual(parseAddress(ours), b, ours);
    }
  });

  it('parseAddress accepts other spellings of the same address', () => {
    assert.deepEqual(parseAddress('2001:0db8:0000:0000:0000:0000:0000:0001'), parseAddress('2001:db8::1'));
    assert.deepEqual(parseAddress('2001:DB8::1'), parseAddress('2001:db8::1'));
    assert.deepEqual(parseAddress('0:0:0:0:0:ffff:102:304'), parseAddress('::ffff:1.2.3.4'));
  });

  it('parseAddress rejects what is not an address', () => {
    for (const bad of [
      '',
      '1.2.3',
      '1.2.3.256',
      '01.2.3.4x',
      '::1::',
      'example.com',
      '12345::',
      '1:2:3:4:5:6:7:8:9',
    ]) {
      assert.throws(() => parseAddress(bad), TypeError, bad);
    }
  });
});
