import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { certificateSans, hasAllowedSan, splitAltNames } from '../../../src/http/client-sans.js';
import { Pki } from '../helpers/pki.js';

describe('client_allowed_sans matching', () => {
  let pki: Pki;
  let cert: X509Certificate;
  before(() => {
    pki = new Pki();
    pki.issue('many', 'ca', [
      'subjectAltName=DNS:Prometheus.example,email:ops@example.org,IP:10.0.0.1,IP:2001:db8:0:0:1:0:0:1,IP:::ffff:192.0.2.7,URI:spiffe://cluster.local/ns/monitoring/sa/prometheus',
    ]);
    cert = new X509Certificate(readFileSync(pki.path('many.crt')));
  });
  after(() => pki?.remove());

  it("lists the SANs Go's exporter-toolkit compares, in Go's spelling", () => {
    assert.deepEqual(certificateSans(cert), [
      'Prometheus.example',
      'ops@example.org',
      '10.0.0.1',
      // Go's net.IP.String: compressed, lower case; an IPv4-mapped address as IPv4.
      '2001:db8::1:0:0:1',
      '192.0.2.7',
      'spiffe://cluster.local/ns/monitoring/sa/prometheus',
    ]);
  });

  it('compares exact strings, as Go does', () => {
    assert.equal(hasAllowedSan(cert, ['2001:db8::1:0:0:1']), true);
    assert.equal(hasAllowedSan(cert, ['spiffe://cluster.local/ns/monitoring/sa/prometheus']), true);
    assert.equal(hasAllowedSan(cert, ['prometheus.example']), false, 'case matters');
    assert.equal(hasAllowedSan(cert, ['2001:DB8:0:0:1:0:0:1']), false, 'not as OpenSSL prints it');
    assert.equal(hasAllowedSan(cert, ['spiffe://cluster.local']), false, 'no prefix match');
    assert.equal(hasAllowedSan(undefined, ['10.0.0.1']), false, 'no certificate');
    const bare = new X509Certificate(readFileSync(pki.path('client.crt')));
    const cn = bare.subject.replace(/^CN=/, '');
    assert.match(cn, /^client-\d+$/);
    assert.equal(hasAllowedSan(bare, [cn]), false, 'the subject CN is not a SAN');
  });

  it("splits Node's subjectAltName text, JSON-quoted values included", () => {
    assert.deepEqual(splitAltNames('DNS:a, IP Address:1.2.3.4, URI:"x\\u002c y", DNS:b'), [
      ['DNS', 'a'],
      ['IP Address', '1.2.3.4'],
      ['URI', 'x, y'],
      ['DNS', 'b'],
    ]);
    assert.deepEqual(splitAltNames(''), []);
  });
});
