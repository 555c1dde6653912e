/**
 * --web.config.file with real clients: the built exporter in a test namespace serving TLS with a
 * required client certificate and basic authentication on two addresses, `curl` and
 * `openssl s_client` as clients, and a real Prometheus scraping it. Certificates are made by
 * `openssl` for this run (test/unit/helpers/pki.ts).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import bcrypt from 'bcryptjs';
import { Pki } from '../unit/helpers/pki.js';
import { ExporterProcess } from './harness/exporter.js';
import { DIST, Netns, type RunResult, waitFor } from './harness/netns.js';
import { JOB, PrometheusProcess } from './harness/prometheus.js';

const V4 = '127.0.0.1:9466';
const V6 = '[::1]:9466';
const USER = 'prometheus';
const PASSWORD = 'correct horse battery staple';

interface Curl {
  /** curl's exit code: 0, or why the transfer failed (35 TLS handshake, 56 receive, 52 empty). */
  exit: number;
  /** HTTP status; 0 when no response came. */
  status: number;
  headers: string;
  body: string;
}

describe('web config: TLS, client certificates, basic auth, gzip, with curl and Prometheus', () => {
  let ns: Netns;
  let pki: Pki;
  let exp: ExporterProcess;

  const curl = (url: string, opts: { cert?: string; user?: string; args?: string[] } = {}): Curl => {
    // Headers first (-D -), then the body, then the status on a line of its own.
    const args = [
      '-sS',
      '--max-time',
      '10',
      '-D',
      '-',
      '-w',
      '\n%{http_code}',
      '--cacert',
      pki.path('ca.crt'),
    ];
    if (opts.cert !== undefined)
      args.push('--cert', pki.path(`${opts.cert}.crt`), '--key', pki.path(`${opts.cert}.key`));
    if (opts.user !== undefined) args.push('-u', opts.user);
    const res: RunResult = ns.tryRun('curl', [...args, ...(opts.args ?? []), url]);
    const nl = res.stdout.lastIndexOf('\n');
    const end = res.stdout.indexOf('\r\n\r\n');
    return {
      exit: res.status,
      status: Number(res.stdout.slice(nl + 1)),
      headers: end < 0 ? '' : res.stdout.slice(0, end).toLowerCase(),
      body: res.stdout.slice(end < 0 ? 0 : end + 4, Math.max(nl, 0)),
    };
  };
  const scrape = (address = V4, extra: string[] = []) =>
    curl(`https://${address}/metrics`, { cert: 'client', user: `${USER}:${PASSWORD}`, args: extra });
  /** The subject CN of the certificate the server presents now. */
  const servedCN = (): string => {
    const res = ns.tryRun('sh', [
      '-c',
      `openssl s_client -connect ${V4} -CAfile ${pki.path('ca.crt')} -cert ${pki.path('client.crt')} -key ${pki.path('client.key')} </dev/null 2>/dev/null | openssl x509 -noout -subject`,
    ]);
    return /CN\s*=\s*(\S+)/.exec(res.stdout)?.[1] ?? '';
  };

  before(async () => {
    pki = new Pki();
    ns = Netns.create('web');
    const hash = bcrypt.hashSync(PASSWORD, 10);
    const config = pki.write(
      'web.yml',
      [
        'tls_server_config:',
        '  cert_file: server.crt',
        '  key_file: server.key',
        '  client_auth_type: RequireAndVerifyClientCert',
        '  client_ca_file: ca.crt',
        'http_server_config:',
        '  headers:',
        '    X-Content-Type-Options: nosniff',
        'basic_auth_users:',
        `  ${USER}: '${hash}'`,
        '',
      ].join('\n'),
    );
    exp = await ExporterProcess.start(ns, [`--web.config.file=${config}`], {
      listen: [V4, V6],
      // /readyz needs no password, but TLS with a client certificate.
      ready: () => curl(`https://${V4}/readyz`, { cert: 'client' }).status === 200,
    });
  });

  after(async () => {
    await exp?.stop();
    ns?.delete();
    pki?.remove();
  });

  it('serves metrics over TLS to a client with a certificate and the password, on both addresses', () => {
    for (const address of [V4, V6]) {
      const res = scrape(address);
      assert.equal(res.exit, 0, `curl ${address}: ${res.body}`);
      assert.equal(res.status, 200, address);
      assert.match(res.body, /^conntrack_entries \d+$/m, address);
      assert.match(res.headers, /x-content-type-options: nosniff/);
    }
  });

  it('a wrong password or none is 401 with a Basic challenge; the probes need none', () => {
    for (const user of [`${USER}:wrong`, `someone:${PASSWORD}`, undefined]) {
      const res = curl(`https://${V4}/metrics`, { cert: 'client', ...(user === undefined ? {} : { user }) });
      assert.equal(res.status, 401, String(user));
      assert.match(res.headers, /www-authenticate: basic/);
      assert.doesNotMatch(res.body, /conntrack_/);
    }
    assert.equal(curl(`https://${V4}/healthz`, { cert: 'client' }).status, 200);
    assert.equal(curl(`https://${V4}/readyz`, { cert: 'client' }).status, 200);
  });

  it('without a client certificate, or with one from another CA, the handshake is refused', () => {
    for (const cert of [undefined, 'stranger']) {
      const res = curl(`https://${V4}/metrics`, { user: `${USER}:${PASSWORD}`, ...(cert ? { cert } : {}) });
      assert.notEqual(res.exit, 0, `curl with ${cert ?? 'no certificate'} succeeded: ${res.status}`);
      assert.equal(res.status, 0, 'no HTTP response at all');
      assert.doesNotMatch(res.body, /conntrack_/);
    }
  });

  it('plain HTTP to the TLS port gets no HTTP answer', () => {
    const res = ns.tryRun('curl', [
      '-sS',
      '--max-time',
      '10',
      '-w',
      '\n%{http_code}',
      '-u',
      `${USER}:${PASSWORD}`,
      `http://${V4}/metrics`,
    ]);
    assert.notEqual(res.status, 0, 'curl over plain HTTP succeeded');
    assert.match(res.stdout, /(^|\n)000$/);
    assert.doesNotMatch(res.stdout, /conntrack_/);
  });

  it('gzips the metrics when the client asks', () => {
    const zipped = scrape(V4, ['--compressed']);
    assert.equal(zipped.status, 200);
    assert.match(zipped.headers, /content-encoding: gzip/);
    assert.match(zipped.body, /^conntrack_entries \d+$/m, 'curl decoded it');
    const plain = scrape(V4);
    assert.doesNotMatch(plain.headers, /content-encoding/);
    const size = (h: string) => Number(/content-length: (\d+)/.exec(h)?.[1]);
    assert.ok(
      size(zipped.headers) < size(plain.headers) / 3,
      `${size(zipped.headers)} vs ${size(plain.headers)}`,
    );
  });

  it('a certificate replaced on disk is served without a restart', async () => {
    const before = servedCN();
    assert.match(before, /^server-\d+$/);
    // Written elsewhere and renamed into place, as cert-manager and kubelet do.
    const staging = join(pki.dir, 'staging');
    mkdirSync(staging, { recursive: true });
    const cn = pki.issue(
      'server',
      'ca',
      ['subjectAltName=IP:127.0.0.1,IP:::1', 'extendedKeyUsage=serverAuth'],
      staging,
    );
    assert.notEqual(cn, before);
    renameSync(join(staging, 'server.key'), pki.path('server.key'));
    renameSync(join(staging, 'server.crt'), pki.path('server.crt'));
    await waitFor('the new certificate to be served', () => (servedCN() === cn ? true : undefined), 20_000);
    assert.equal(scrape().status, 200, 'scrapes work with the new certificate');
    assert.equal(exp.child.exitCode, null, 'no restart');
  });

  it('a real Prometheus scrapes it over TLS with a client certificate and basic auth', async () => {
    const prom = await PrometheusProcess.start(
      ns,
      [],
      [
        'scheme: https',
        'tls_config:',
        `  ca_file: ${pki.path('ca.crt')}`,
        `  cert_file: ${pki.path('client.crt')}`,
        `  key_file: ${pki.path('client.key')}`,
        'basic_auth:',
        `  username: ${USER}`,
        `  password: ${JSON.stringify(PASSWORD)}`,
      ],
    );
    try {
      await waitFor(
        'Prometheus to scrape the exporter',
        () => (prom.query(`up{job="${JOB}"} == 1`).length === 1 ? true : undefined),
        20_000,
      );
      assert.equal(prom.value(`up{job="${JOB}"}`), 1);
      assert.equal(prom.query(`conntrack_entries{job="${JOB}"}`).length, 1);
      assert.ok(prom.query(`{job="${JOB}",__name__=~"conntrack_flows"}`).length > 10);
      assert.equal(prom.value(`conntrack_entries_limit{job="${JOB}"}`), 262144);
      webScrape = {
        up: prom.value(`up{job="${JOB}"}`),
        series: prom.value(`count({job="${JOB}"})`),
        conntrackSeries: prom.value(`count({job="${JOB}",__name__=~"conntrack_.*"})`),
        scrapeSamples: prom.value(`scrape_samples_scraped{job="${JOB}"}`),
      };
    } finally {
      await prom.stop();
    }
  });
});

describe('client_auth_type: who gets through', () => {
  let ns: Netns;
  let pki: Pki;
  before(() => {
    pki = new Pki();
    ns = Netns.create('mtls');
  });
  after(() => {
    ns?.delete();
    pki?.remove();
  });

  /** HTTP status for a client presenting no certificate, a foreign one, and one from the CA. */
  const matrix: [string, { none: boolean; stranger: boolean; client: boolean }][] = [
    ['NoClientCert', { none: true, stranger: true, client: true }],
    ['RequestClientCert', { none: true, stranger: true, client: true }],
    ['RequireAnyClientCert', { none: false, stranger: true, client: true }],
    ['VerifyClientCertIfGiven', { none: true, stranger: false, client: true }],
    ['RequireAndVerifyClientCert', { none: false, stranger: false, client: true }],
  ];
  for (const [type, want] of matrix) {
    it(`${type}: no certificate ${want.none ? 'served' : 'refused'}, foreign ${want.stranger ? 'served' : 'refused'}, ours served`, async () => {
      const ca = type === 'NoClientCert' ? '' : '  client_ca_file: ca.crt\n';
      const file = pki.write(
        `${type}.yml`,
        `tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: ${type}\n${ca}`,
      );
      const get = (cert?: string): number => {
        const args = [
          '-s',
          '--max-time',
          '10',
          '-o',
          '/dev/null',
          '-w',
          '%{http_code}',
          '--cacert',
          pki.path('ca.crt'),
        ];
        if (cert) args.push('--cert', pki.path(`${cert}.crt`), '--key', pki.path(`${cert}.key`));
        return Number(ns.tryRun('curl', [...args, `https://${V4}/healthz`]).stdout);
      };
      const exp = await ExporterProcess.start(ns, [`--web.config.file=${file}`], {
        ready: () => get('client') === 200,
      });
      try {
        assert.deepEqual(
          { none: get() === 200, stranger: get('stranger') === 200, client: get('client') === 200 },
          want,
        );
      } finally {
        await exp.stop();
      }
    });
  }
});

describe("exporter-toolkit's client_allowed_sans and rate_limit, with curl", () => {
  let ns: Netns;
  let pki: Pki;
  let exp: ExporterProcess;
  const status = (
    cert: string | undefined,
    path = '/metrics',
  ): { exit: number; status: number; body: string } => {
    const args = ['-sS', '--max-time', '10', '-w', '\n%{http_code}', '--cacert', pki.path('ca.crt')];
    if (cert !== undefined) args.push('--cert', pki.path(`${cert}.crt`), '--key', pki.path(`${cert}.key`));
    const res = ns.tryRun('curl', [...args, `https://${V4}${path}`]);
    const nl = res.stdout.lastIndexOf('\n');
    return {
      exit: res.status,
      status: Number(res.stdout.slice(nl + 1)),
      body: res.stdout.slice(0, Math.max(nl, 0)),
    };
  };

  before(async () => {
    pki = new Pki();
    pki.issue('prometheus', 'ca', [
      'subjectAltName=DNS:prometheus.monitoring.svc',
      'extendedKeyUsage=clientAuth',
    ]);
    ns = Netns.create('sans');
    const config = pki.write(
      'web.yml',
      [
        'tls_server_config:',
        '  cert_file: server.crt',
        '  key_file: server.key',
        '  client_auth_type: RequireAndVerifyClientCert',
        '  client_ca_file: ca.crt',
        '  client_allowed_sans: [prometheus.monitoring.svc]',
        'rate_limit:',
        '  interval: 1h',
        '  burst: 3',
        '',
      ].join('\n'),
    );
    exp = await ExporterProcess.start(ns, [`--web.config.file=${config}`], {
      // The probes are outside the rate limit, so waiting for readiness spends no token.
      ready: () => status('prometheus', '/readyz').status === 200,
    });
  });

  after(async () => {
    await exp?.stop();
    ns?.delete();
    pki?.remove();
  });

  it('a client certificate from the CA without an allowed SAN gets no HTTP answer; with one, metrics', () => {
    const refused = status('client');
    assert.notEqual(refused.exit, 0, `curl without the SAN: ${refused.status}`);
    assert.equal(refused.status, 0, 'no HTTP response at all');
    const ok = status('prometheus');
    assert.equal(ok.status, 200, ok.body);
    assert.match(ok.body, /^conntrack_entries \d+$/m);
  });

  it('beyond burst requests, 429 Too Many Requests; the probes still answer', () => {
    // One token went to the scrape above, the refused connection sent no request.
    assert.deepEqual([status('prometheus').status, status('prometheus', '/').status], [200, 200]);
    const limited = status('prometheus');
    assert.equal(limited.status, 429);
    assert.equal(limited.body, 'Too Many Requests\n');
    assert.equal(status('prometheus', '/healthz').status, 200);
  });
});

describe('web config errors at start-up', () => {
  it('stop the exporter with exit code 2 and one line naming the file and the key', () => {
    const pki = new Pki();
    try {
      const cases: [string, string][] = [
        [
          'tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  colour: blue\n',
          'tls_server_config.colour',
        ],
        ['basic_auth_users:\n  prometheus: plaintext\n', 'basic_auth_users.prometheus'],
        [
          'tls_server_config:\n  cert_file: missing.crt\n  key_file: server.key\n',
          'tls_server_config.cert_file',
        ],
        // A valid hash whose cost (2^31 rounds) would stall every login for hours.
        [
          `basic_auth_users:\n  prometheus: '${bcrypt.hashSync('x', 4).replace('$04$', '$31$')}'\n`,
          'basic_auth_users.prometheus',
        ],
        [
          'tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_allowed_sans: [x]\n',
          'tls_server_config.client_allowed_sans',
        ],
        ['rate_limit:\n  interval: 1s\n  burst: 0\n', 'rate_limit.burst'],
      ];
      for (const [i, [text, key]] of cases.entries()) {
        const file = pki.write(`bad${i}.yml`, text);
        // No namespace: the web config is checked before any socket opens.
        const res = spawnSync(process.execPath, [`${DIST}src/main.js`, `--web.config.file=${file}`], {
          encoding: 'utf8',
        });
        assert.equal(res.status, 2, res.stderr);
        const lines = res.stderr.trim().split('\n');
        assert.equal(lines.length, 1, res.stderr);
        assert.ok(lines[0]?.includes(file) && lines[0].includes(key), lines[0]);
      }
    } finally {
      pki.remove();
    }
  });
});

let webScrape: Record<string, number> = {};
process.on('exit', () => {
  if (Object.keys(webScrape).length > 0)
    console.log(`# web-config scrape by Prometheus: ${JSON.stringify(webScrape)}`);
});
