/** Addresses print as inet_ntop prints them (and as conntrack -L shows them). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatIPv4, formatIPv6, parseAddress } from '../../../src/ctnetlink/address.js';

function hex(h: string): Buffer {
  return Buffer.from(h.replace(/\s/g, ''), 'hex');
}

describe('addresses', () => {
  it('IPv4 dotted quad', () => {
    assert.equal(formatIPv4(hex('ff 00 7f 01'), 0), '255.0.127.1');
    assert.equal(formatIPv4(hex('00 0a 00 00 01 02'), 2), '0.0.1.2');
  });

  for (const [bytes, text] of [
    ['00000000000000000000000000000000', '::'],
    ['00000000000000000000000000000001', '::1'],
    ['20010db8000000000000000000000001', '2001:db8::1'],
    ['20010db8000000010000000000000001', '2001:db8:0:1::1'], // longest zero run
    ['20010db8000000010001000000000000', '2001:db8:0:1:1::'],
    ['20010000000000010000000000000001', '2001:0:0:1::1'], // the longer run, not the first
    ['20010000000000010000000000010001', '2001::1:0:0:1:1'], // first of two equal runs
    ['20010db8000100010001000100010001', '2001:db8:1:1:1:1:1:1'],
    ['20010db8000000010001000100010001', '2001:db8:0:1:1:1:1:1'], // one zero group: not compressed
    ['00000000000000000000ffff01020304', '::ffff:1.2.3.4'], // IPv4-mapped, as inet_ntop prints it
    ['fe800000000000000a0b0c0d0e0f1011', 'fe80::a0b:c0d:e0f:1011'],
  ] as const) {
    it(`IPv6 ${text}`, () => {
      assert.equal(formatIPv6(hex(bytes), 0), text);
      assert.deepEqual(parseAddress(text), hex(bytes));
    });
  }

  it('agrees with the WHATWG serializer where inet_ntop does (no IPv4-mapped form)', () => {
    for (let i = 0; i < 2000; i++) {
      const b = Buffer.alloc(16);
      // sparse groups make zero runs likely
      for (let g = 0; g < 8; g++)
        if ((i * 7 + g * 13) % 3 === 0) b.writeUInt16BE((i * 2654435761 + g) & 0xffff, g * 2);
      if (b.subarray(0, 12).equals(hex('00000000000000000000ffff'))) continue;
      const ours = formatIPv6(b, 0);
      const url = new URL(`http://[${ours}]/`).hostname.slice(1, -1);
      assert.equal(ours, url, b.toString('hex'));
      assert.deepEqual(parseAddress(ours), b);
    }
  });

  it('parseAddress rejects what is not an address', () => {
    for (const bad of ['1.2.3', '1.2.3.256', '::1::', 'example.com', '12345::']) {
      assert.throws(() => parseAddress(bad), bad);
    }
  });
});
