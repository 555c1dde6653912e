import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clientKey } from '../../../src/http/client-address.js';

describe('clientKey: the unit client limits count by', () => {
  it('an IPv4 address; IPv4-mapped IPv6 is the same client', () => {
    assert.equal(clientKey('127.0.0.2'), '127.0.0.2');
    assert.equal(clientKey('::ffff:127.0.0.2'), '127.0.0.2');
  });

  it('an IPv6 /64: one host can use any address in it', () => {
    assert.equal(clientKey('2001:db8::1'), clientKey('2001:db8::ffff:1'));
    assert.notEqual(clientKey('2001:db8::1'), clientKey('2001:db8:0:1::1'));
    assert.equal(clientKey('::1'), '0000000000000000::/64');
  });

  it('no address is one client, not none', () => {
    assert.equal(clientKey(undefined), 'unknown');
    assert.equal(clientKey(''), 'unknown');
  });
});
