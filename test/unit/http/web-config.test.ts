import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import bcrypt from 'bcryptjs';
import {
  loadTlsMaterial,
  loadWebConfig,
  parseWebConfig,
  WebConfigError,
} from '../../../src/http/web-config.js';
import { Pki } from '../helpers/pki.js';

const FILE = '/etc/conntrack-exporter/web.yml';
// Cost 4 (the minimum): hashing in tests stays fast.
const HASH = bcrypt.hashSync('s3cret', 4);
// htpasswd writes $2y$; the algorithm is the same.
const HASH_2Y = HASH.replace(/^\$2b\$/, '$2y$');

function webConfigError(fn: () => unknown): WebConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof WebConfigError, `expected WebConfigError, got ${String(err)}`);
    assert.equal(err.code, 'CT_ERR_CONFIG');
    // What an operator reads: the file and the key, in one line.
    assert.ok(err.message.includes(err.file) && err.message.includes(err.key), err.message);
    return err;
  }
  assert.fail('expected a WebConfigError');
}

describe('parseWebConfig', () => {
  it('an empty file means plain HTTP without authentication', () => {
    for (const text of ['', '# nothing\n', '{}', 'tls_server_config:\nbasic_auth_users:\n']) {
      const c = parseWebConfig(text, FILE);
      assert.equal(c.tls, undefined);
      assert.equal(c.users.size, 0);
      assert.deepEqual(c.headers, {});
    }
  });

  it("reads every supported key, with exporter-toolkit's names", () => {
    const c = parseWebConfig(
      `
tls_server_config:
  cert_file: server.crt
  key_file: /abs/server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.crt
  min_version: TLS13
  max_version: TLS13
  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256]
  prefer_server_cipher_suites: false
  curve_preferences: [X25519, CurveP256]
http_server_config:
  http2: false
  headers:
    X-Frame-Options: deny
    X-Content-Type-Options: nosniff
    Strict-Transport-Security: max-age=31536000
    Content-Security-Policy: ""
basic_auth_users:
  prometheus: ${HASH}
  alice: '${HASH_2Y}'
`,
      FILE,
    );
    assert.deepEqual(c.tls, {
      cert: { file: '/etc/conntrack-exporter/server.crt', key: 'tls_server_config.cert_file' },
      key: { file: '/abs/server.key', key: 'tls_server_config.key_file' },
      clientCa: { file: '/etc/conntrack-exporter/ca.crt', key: 'tls_server_config.client_ca_file' },
      clientAuthType: 'RequireAndVerifyClientCert',
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
      ciphers: 'ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305',
      ecdhCurve: 'X25519:P-256',
      honorCipherOrder: false,
    });
    assert.deepEqual(
      [...c.users],
      [
        ['prometheus', HASH],
        ['alice', HASH_2Y],
      ],
    );
    // A blank value leaves the header unset.
    assert.deepEqual(c.headers, {
      'X-Frame-Options': 'deny',
      'X-Content-Type-Options': 'nosniff',
      'Strict-Transport-Security': 'max-age=31536000',
    });
  });

  it("defaults as exporter-toolkit: TLS 1.2 to 1.3, no client certificate, server's cipher order", () => {
    const c = parseWebConfig('tls_server_config:\n  cert: inline-cert\n  key: inline-key\n', FILE);
    assert.deepEqual(c.tls, {
      cert: { text: 'inline-cert', key: 'tls_server_config.cert' },
      key: { text: 'inline-key', key: 'tls_server_config.key' },
      clientCa: undefined,
      clientAuthType: 'NoClientCert',
      minVersion: 'TLSv1.2',
      maxVersion: 'TLSv1.3',
      ciphers: undefined,
      ecdhCurve: undefined,
      honorCipherOrder: true,
    });
    // The old spelling exporter-toolkit still accepts.
    const old = parseWebConfig(
      'tls_server_config: {cert_file: a, key_file: b, client_auth_type: RequireClientCert}',
      FILE,
    );
    assert.equal(old.tls?.clientAuthType, 'RequireAnyClientCert');
  });

  const TLS = 'tls_server_config:\n  cert_file: s.crt\n  key_file: s.key\n';
  const bad: [string, string][] = [
    ['bogus: 1', 'bogus'],
    ['- a\n- b', '(document)'],
    ['a: [1, 2', 'line'],
    ['basic_auth_users:\n  a: x\n  a: y\n', 'line'],
    [`${TLS}  bogus: 1`, 'tls_server_config.bogus'],
    ['tls_server_config: [1]', 'tls_server_config'],
    ['tls_server_config:\n  cert_file: s.crt', 'tls_server_config.key_file'],
    ['tls_server_config:\n  key_file: s.key', 'tls_server_config.cert_file'],
    ['tls_server_config:\n  client_auth_type: RequireAndVerifyClientCert', 'tls_server_config.cert_file'],
    [`${TLS}  cert: inline`, 'tls_server_config.cert'],
    [`${TLS}  cert_file: 12`, 'line'],
    ['tls_server_config:\n  cert_file: 12\n  key_file: s.key', 'tls_server_config.cert_file'],
    [`${TLS}  client_auth_type: Sometimes`, 'tls_server_config.client_auth_type'],
    [`${TLS}  client_ca_file: ca.crt`, 'tls_server_config.client_ca_file'],
    [`${TLS}  client_ca: inline`, 'tls_server_config.client_ca'],
    [`${TLS}  min_version: TLS14`, 'tls_server_config.min_version'],
    [`${TLS}  min_version: TLS13\n  max_version: TLS12`, 'tls_server_config.max_version'],
    [`${TLS}  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]`, 'tls_server_config.cipher_suites[0]'],
    [`${TLS}  cipher_suites: TLS_AES_128_GCM_SHA256`, 'tls_server_config.cipher_suites'],
    [`${TLS}  curve_preferences: [X25519, CurveP999]`, 'tls_server_config.curve_preferences[1]'],
    [`${TLS}  prefer_server_cipher_suites: "yes"`, 'tls_server_config.prefer_server_cipher_suites'],
    [`${TLS}  client_allowed_sans: [a]`, 'tls_server_config.client_allowed_sans'],
    ['rate_limit:\n  interval: 1s\n  burst: 5', 'rate_limit'],
    ['http_server_config:\n  http2: maybe', 'http_server_config.http2'],
    ['http_server_config:\n  h2: true', 'http_server_config.h2'],
    ['http_server_config:\n  headers:\n    X-Powered-By: me', 'http_server_config.headers.X-Powered-By'],
    [
      'http_server_config:\n  headers:\n    X-Frame-Options: allow',
      'http_server_config.headers.X-Frame-Options',
    ],
    [
      'http_server_config:\n  headers:\n    X-Content-Type-Options: sniff',
      'http_server_config.headers.X-Content-Type-Options',
    ],
    ['basic_auth_users: [alice]', 'basic_auth_users'],
    ['basic_auth_users:\n  alice: s3cret', 'basic_auth_users.alice'],
    ['basic_auth_users:\n  alice: 42', 'basic_auth_users.alice'],
    [`basic_auth_users:\n  alice: '${HASH.replace('$04$', '$03$')}'`, 'basic_auth_users.alice'],
    [`basic_auth_users:\n  alice: '${HASH.slice(0, -1)}'`, 'basic_auth_users.alice'],
    [`basic_auth_users:\n  "a:b": '${HASH}'`, 'basic_auth_users.a:b'],
    ['x: &a [1]\ny: *a', '(document)'],
  ];
  for (const [text, key] of bad) {
    it(`refuses ${JSON.stringify(text)} naming ${key}`, () => {
      const err = webConfigError(() => parseWebConfig(text, FILE));
      assert.equal(err.file, FILE);
      if (key === 'line') assert.match(err.key, /^line \d+:\d+$/);
      else assert.equal(err.key, key);
    });
  }
});

describe('loadWebConfig: files on disk', () => {
  let pki: Pki;
  before(() => {
    pki = new Pki();
    pki.write('garbage.crt', 'not a certificate\n');
    pki.write('garbage.key', 'not a key\n');
  });
  after(() => pki?.remove());

  const tls = (extra = '') =>
    `tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n${extra}basic_auth_users:\n  p: '${HASH}'\n`;

  it('loads a good file; relative paths are relative to it', () => {
    const file = pki.write(
      'good.yml',
      tls('  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n'),
    );
    const c = loadWebConfig(file);
    assert.equal(c.tls?.clientAuthType, 'RequireAndVerifyClientCert');
    const m = loadTlsMaterial(c);
    assert.match(m.cert, /BEGIN CERTIFICATE/);
    assert.match(m.key, /PRIVATE KEY/);
    assert.match(m.ca ?? '', /BEGIN CERTIFICATE/);
  });

  it('inline PEM works as files do', () => {
    const cert = readFileSync(pki.path('server.crt'), 'utf8');
    const key = readFileSync(pki.path('server.key'), 'utf8');
    const indent = (s: string) => s.trim().replaceAll('\n', '\n    ');
    const file = pki.write(
      'inline.yml',
      `tls_server_config:\n  cert: |\n    ${indent(cert)}\n  key: |\n    ${indent(key)}\n`,
    );
    assert.equal(loadTlsMaterial(loadWebConfig(file)).cert.trim(), cert.trim());
  });

  const broken: [string, () => string, string][] = [
    ['a missing file', () => pki.path('absent.yml'), '(file)'],
    [
      'a missing certificate',
      () => pki.write('w1.yml', tls().replace('server.crt', 'absent.crt')),
      'tls_server_config.cert_file',
    ],
    [
      'a missing key',
      () => pki.write('w2.yml', tls().replace('server.key', 'absent.key')),
      'tls_server_config.key_file',
    ],
    [
      'a certificate that is not one',
      () => pki.write('w3.yml', tls().replace('server.crt', 'garbage.crt')),
      'tls_server_config.cert_file',
    ],
    [
      'a key that is not one',
      () => pki.write('w4.yml', tls().replace('server.key', 'garbage.key')),
      'tls_server_config.key_file',
    ],
    [
      "another certificate's key",
      () => pki.write('w5.yml', tls().replace('server.key', 'client.key')),
      'tls_server_config.key_file',
    ],
    [
      'a client CA file without certificates',
      () =>
        pki.write(
          'w6.yml',
          tls('  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: garbage.crt\n'),
        ),
      'tls_server_config.client_ca_file',
    ],
    [
      'a client CA file that cannot be read',
      () =>
        pki.write(
          'w7.yml',
          tls('  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: absent-ca.crt\n'),
        ),
      'tls_server_config.client_ca_file',
    ],
  ];
  for (const [what, make, key] of broken) {
    it(`refuses ${what}, naming ${key}`, () => {
      const file = make();
      const err = webConfigError(() => loadWebConfig(file));
      assert.equal(err.key, key);
      assert.equal(err.file, file);
    });
  }
});
