import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import bcrypt from 'bcryptjs';
import {
  MAX_BCRYPT_COST,
  parseGoDuration,
  parseWebConfig,
  WebConfigError,
} from '../../../src/http/web-config.js';
import { loadTlsMaterial, loadWebConfig } from '../../../src/http/web-config-files.js';
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
      clientAllowedSans: undefined,
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
      clientAllowedSans: undefined,
    });
    assert.equal(c.rateLimit, undefined);
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
    // exporter-toolkit's rule: only where every client must present a certificate.
    [`${TLS}  client_allowed_sans: [a]`, 'tls_server_config.client_allowed_sans'],
    [
      `${TLS}  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.crt\n  client_allowed_sans: [a]`,
      'tls_server_config.client_allowed_sans',
    ],
    [
      `${TLS}  client_auth_type: RequestClientCert\n  client_allowed_sans: [a]`,
      'tls_server_config.client_allowed_sans',
    ],
    // Beyond exporter-toolkit: a list nothing can match.
    [
      `${TLS}  client_auth_type: RequireAnyClientCert\n  client_allowed_sans: []`,
      'tls_server_config.client_allowed_sans',
    ],
    [
      `${TLS}  client_auth_type: RequireAnyClientCert\n  client_allowed_sans: a`,
      'tls_server_config.client_allowed_sans',
    ],
    ['rate_limit:\n  interval: 1s\n  burst: 5\n  per_client: true', 'rate_limit.per_client'],
    ['rate_limit: 5', 'rate_limit'],
    ['rate_limit:\n  interval: soon\n  burst: 5', 'rate_limit.interval'],
    ['rate_limit:\n  interval: -1s\n  burst: 5', 'rate_limit.interval'],
    // Go would read a bare number as nanoseconds: no limit at all.
    ['rate_limit:\n  interval: 1\n  burst: 5', 'rate_limit.interval'],
    // Go's limiter with burst 0 refuses every request.
    ['rate_limit:\n  interval: 1s', 'rate_limit.burst'],
    ['rate_limit:\n  interval: 1s\n  burst: 0', 'rate_limit.burst'],
    ['rate_limit:\n  interval: 1s\n  burst: 1.5', 'rate_limit.burst'],
    ['rate_limit:\n  interval: 1s\n  burst: "5"', 'rate_limit.burst'],
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
    // A valid hash whose cost would stall every login: 2^31 rounds take hours.
    [
      `basic_auth_users:\n  alice: '${HASH}'\n  bob: '${HASH.replace('$04$', '$31$')}'`,
      'basic_auth_users.bob',
    ],
    [
      `basic_auth_users:\n  carol: '${HASH.replace('$04$', `$${MAX_BCRYPT_COST + 1}$`)}'`,
      'basic_auth_users.carol',
    ],
    [`basic_auth_users:\n  "a:b": '${HASH}'`, 'basic_auth_users.a:b'],
    ['x: &a [1]\ny: *a', '(document)'],
  ];
  it(`accepts bcrypt costs up to ${MAX_BCRYPT_COST}`, () => {
    const hash = HASH.replace('$04$', `$${MAX_BCRYPT_COST}$`);
    assert.equal(parseWebConfig(`basic_auth_users:\n  alice: '${hash}'\n`, FILE).users.get('alice'), hash);
  });

  it("rate_limit: exporter-toolkit's interval (a Go duration) and burst; interval 0 or none is off", () => {
    assert.deepEqual(parseWebConfig('rate_limit:\n  interval: 1s\n  burst: 5\n', FILE).rateLimit, {
      intervalMs: 1000,
      burst: 5,
    });
    assert.deepEqual(parseWebConfig('rate_limit: {interval: 1m30s, burst: 1}', FILE).rateLimit, {
      intervalMs: 90_000,
      burst: 1,
    });
    for (const off of [
      'rate_limit:\n  interval: 0\n  burst: 5\n',
      'rate_limit: {interval: 0s}',
      'rate_limit:\n',
    ]) {
      assert.equal(parseWebConfig(off, FILE).rateLimit, undefined, off);
    }
  });

  it("parseGoDuration reads what Go's time.ParseDuration does", () => {
    const cases: [string, number | undefined][] = [
      ['0', 0],
      ['1s', 1000],
      ['+1s', 1000],
      ['250ms', 250],
      ['1.5s', 1500],
      ['.5s', 500],
      ['1h2m3s', 3_723_000],
      ['100us', 0.1],
      ['100µs', 0.1],
      ['1000000ns', 1],
      ['1', undefined],
      ['s', undefined],
      ['1d', undefined],
      ['-1s', undefined],
      ['1s ', undefined],
      ['', undefined],
    ];
    for (const [text, ms] of cases) assert.equal(parseGoDuration(text), ms, text);
  });

  it('client_allowed_sans is read where a certificate is required', () => {
    for (const type of ['RequireAnyClientCert', 'RequireAndVerifyClientCert']) {
      const c = parseWebConfig(
        `${TLS}  client_auth_type: ${type}\n  client_ca_file: ca.crt\n  client_allowed_sans: [prometheus.example, 10.0.0.1, 'spiffe://cluster.local/ns/monitoring/sa/prometheus']\n`,
        FILE,
      );
      assert.deepEqual(c.tls?.clientAllowedSans, [
        'prometheus.example',
        '10.0.0.1',
        'spiffe://cluster.local/ns/monitoring/sa/prometheus',
      ]);
    }
  });

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
