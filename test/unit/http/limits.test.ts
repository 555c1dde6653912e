/**
 * The HTTP limits on real sockets on 127.0.0.0/8: timeouts, --web.max-requests, shared renders,
 * connection counts, rate_limit, the login limits and client_allowed_sans. No assertion on how
 * long anything took: on counts, statuses and order, and on waits bounded far above the limit
 * under test (a half-sent header must be cut before the headers timeout plus a few seconds; Node's
 * default would keep it 60 to 90 s).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as netConnect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import bcrypt from 'bcryptjs';
import pino from 'pino';
import { parseConfig } from '../../../src/config.js';
import { BasicAuth, DEFAULT_AUTH_LIMITS } from '../../../src/http/basic-auth.js';
import { DEFAULT_HTTP_LIMITS, httpLimits, serverOptions } from '../../../src/http/limits.js';
import { Listeners } from '../../../src/http/listeners.js';
import { type Served, serve } from '../../../src/http/serve.js';
import { buildServer, type ServerDeps } from '../../../src/http/server.js';
import { parseWebConfig, type WebConfig } from '../../../src/http/web-config.js';
import { Pki } from '../helpers/pki.js';
import { deps, heldRender } from './server-deps.js';

const log = pino({ level: 'silent' });
const SLACK_MS = 5000;
const HEADERS_TIMEOUT_MS = 500;

/** Rejects if `p` has not settled within `ms`: a generous upper bound, not a measurement. */
function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still open after ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** What a raw TCP client received until the server closed the connection. */
function untilClosed(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    let data = '';
    socket.on('data', (d: Buffer) => {
      data += d.toString('latin1');
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(data));
  });
}

function raw(port: number, send: string, localAddress = '127.0.0.1'): Socket {
  const socket = netConnect({ port, host: '127.0.0.1', localAddress });
  if (send !== '') socket.write(send);
  return socket;
}

interface Res {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

function get(
  port: number,
  options: { path?: string; method?: string; localAddress?: string; auth?: string } = {},
): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path: options.path ?? '/metrics',
        method: options.method ?? 'GET',
        localAddress: options.localAddress ?? '127.0.0.1',
        agent: false,
        ...(options.auth === undefined ? {} : { auth: options.auth }),
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** buildServer on a real socket, with a hook that counts requests reaching their handler. */
async function listen(d: ServerDeps, web?: WebConfig) {
  const app = buildServer(d);
  const seen = { handled: 0 };
  app.addHook('preHandler', async () => void seen.handled++);
  const listeners = await Listeners.open(app, [{ host: '127.0.0.1', port: 0 }], web, log, {
    limits: { headersTimeoutMs: HEADERS_TIMEOUT_MS, keepAliveTimeoutMs: 300 },
  });
  const port = Number(listeners.addresses()[0]?.split(':').pop());
  return {
    port,
    seen,
    listeners,
    close: async () => {
      await listeners.close();
      await app.close();
    },
  };
}

async function until(what: string, cond: () => boolean): Promise<void> {
  await within(
    SLACK_MS,
    what,
    (async () => {
      while (!cond()) await new Promise((r) => setTimeout(r, 5));
    })(),
  );
}

describe('HTTP limits on the listening sockets', () => {
  it('defaults: 10 s for the request head and the TLS handshake, checked every second', () => {
    const o = serverOptions(httpLimits());
    assert.equal(DEFAULT_HTTP_LIMITS.headersTimeoutMs, 10_000);
    assert.deepEqual(
      [
        o.headersTimeout,
        o.handshakeTimeout,
        o.requestTimeout,
        o.keepAliveTimeout,
        o.connectionsCheckingInterval,
      ],
      [10_000, 10_000, 30_000, 20_000, 1000],
    );
    // Node refuses a request timeout below the headers timeout.
    assert.equal(httpLimits({ headersTimeoutMs: 45_000 }).requestTimeoutMs, 45_000);
  });

  it('a half-sent request head is cut with 408 before the headers timeout (plus slack)', async () => {
    const s = await listen(deps());
    try {
      const half = untilClosed(raw(s.port, 'GET /metrics HTTP/1.1\r\nHost: x\r\n'));
      const silent = untilClosed(raw(s.port, ''));
      const bound = HEADERS_TIMEOUT_MS + SLACK_MS;
      assert.match(await within(bound, 'half a header', half), /^HTTP\/1\.1 408 /);
      assert.match(await within(bound, 'nothing sent', silent), /^HTTP\/1\.1 408 /);
    } finally {
      await s.close();
    }
  });

  it('an idle keep-alive connection is closed after the keep-alive timeout (plus slack)', async () => {
    const s = await listen(deps());
    try {
      const answer = await within(
        300 + 1000 + SLACK_MS,
        'idle keep-alive',
        untilClosed(raw(s.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')),
      );
      assert.match(answer, /^HTTP\/1\.1 200 /);
      assert.match(answer, /keep-alive/i);
    } finally {
      await s.close();
    }
  });

  it('40 concurrent scrapes share one render', async () => {
    const { held, render } = heldRender();
    const s = await listen(deps({ render, maxRequests: 40 }));
    try {
      const all = Array.from({ length: 40 }, () => get(s.port));
      await until('40 scrapes to arrive', () => s.seen.handled === 40);
      held.release();
      const res = await Promise.all(all);
      assert.deepEqual(
        res.map((r) => r.status),
        Array(40).fill(200),
      );
      assert.equal(held.calls, 1);
    } finally {
      await s.close();
    }
  });

  it('over --web.max-requests, a scrape is answered 503 at once (while the others still wait)', async () => {
    const { held, render } = heldRender();
    const s = await listen(deps({ render, maxRequests: 5 }));
    try {
      const waiting = Array.from({ length: 5 }, () => get(s.port));
      await until('5 scrapes to arrive', () => s.seen.handled === 5);
      const over = await get(s.port);
      assert.equal(over.status, 503);
      assert.equal(held.calls, 1, 'the render is still held');
      assert.equal((await get(s.port, { path: '/healthz' })).status, 200);
      held.release();
      assert.deepEqual(
        (await Promise.all(waiting)).map((r) => r.status),
        Array(5).fill(200),
      );
      assert.equal((await get(s.port)).status, 200, 'room again once they are answered');
    } finally {
      await s.close();
    }
  });

  it('HEAD of the metrics path renders nothing', async () => {
    let renders = 0;
    const s = await listen(deps({ render: async () => `x ${++renders}\n` }));
    try {
      const res = await get(s.port, { method: 'HEAD' });
      assert.equal(res.status, 200);
      assert.equal(renders, 0);
    } finally {
      await s.close();
    }
  });

  it('connections over the per-client limit are closed at once; other clients still get in', async () => {
    const app = buildServer(deps());
    const listeners = await Listeners.open(app, [{ host: '127.0.0.1', port: 0 }], undefined, log, {
      limits: { maxConnectionsPerClient: 2 },
    });
    const port = Number(listeners.addresses()[0]?.split(':').pop());
    const open = [raw(port, '', '127.0.0.2'), raw(port, '', '127.0.0.2')];
    try {
      await Promise.all(open.map((c) => new Promise((r) => c.once('connect', r))));
      await until('two connections counted', () => listeners.connections.open === 2);
      const third = await within(
        SLACK_MS,
        'third connection',
        untilClosed(raw(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', '127.0.0.2')),
      );
      assert.equal(third, '', 'closed without an answer');
      assert.equal(listeners.connections.refused, 1);
      assert.equal((await get(port, { path: '/healthz', localAddress: '127.0.0.3' })).status, 200);
    } finally {
      for (const c of open) c.destroy();
      await listeners.close();
      await app.close();
    }
  });
});

/** serve() as main.ts calls it, on 127.0.0.1 with an ephemeral port and this web config. */
async function served(
  webText: string,
  flags: string[] = [],
  file = '/nonexistent/web.yml',
): Promise<Served & { port: number }> {
  const config = parseConfig(['--web.listen-address=127.0.0.1:0', ...flags]);
  const s = await serve(config, parseWebConfig(webText, file), log, {
    version: '9.9.9',
    render: async () => 'x 1\n',
    isReady: () => true,
  });
  return { ...s, port: Number(s.addresses[0]?.split(':').pop()) };
}

describe('basic_auth_users under a login flood', () => {
  const PASSWORD = 'correct horse battery staple';
  // Cost 10, as exporter-toolkit's documentation suggests: each check takes tens of ms here.
  const HASH = bcrypt.hashSync(PASSWORD, 10);

  it("40 wrong logins in flight from 127.0.0.2 are refused by its limits; 127.0.0.1's right one gets in", async () => {
    const s = await served(`basic_auth_users:\n  prometheus: '${HASH}'\n`);
    try {
      const flood = Array.from({ length: 40 }, (_, i) =>
        get(s.port, { localAddress: '127.0.0.2', auth: `user${i}:guess${i}` }),
      );
      await until('a flood check to be pending', () => (s.auth?.pending ?? 0) > 0);
      const login = await get(s.port, { auth: `prometheus:${PASSWORD}` });
      const statuses = (await Promise.all(flood)).map((r) => r.status);
      assert.equal(login.status, 200);

      const checked = statuses.filter((x) => x === 401).length;
      const throttled = statuses.filter((x) => x === 429).length;
      assert.equal(checked + throttled, 40, statuses.join(' '));
      // One check pending per address, then its failure budget: most are refused without bcrypt.
      assert.ok(checked <= DEFAULT_AUTH_LIMITS.failureBurst, `${checked} flood requests were checked`);
      assert.ok(throttled >= 40 - DEFAULT_AUTH_LIMITS.failureBurst, `${throttled} throttled`);
      assert.equal(s.auth?.bcryptRuns, checked + 1, 'bcrypt ran for the checked ones and the login only');
      // The right password is now remembered: more scrapes cost no bcrypt.
      assert.equal((await get(s.port, { auth: `prometheus:${PASSWORD}` })).status, 200);
      assert.equal(s.auth?.bcryptRuns, checked + 1);
    } finally {
      await s.close();
    }
  });

  it('a check whose client hangs up while it waits is skipped', async () => {
    let compares = 0;
    let release = (_: boolean) => {};
    const held = (): Promise<boolean> => {
      compares++;
      return new Promise((resolve) => {
        release = resolve;
      });
    };
    const auth = new BasicAuth(new Map([['prometheus', HASH]]), {}, held);
    const s = await listen(deps({ auth }));
    try {
      const first = get(s.port, { auth: 'prometheus:guess' });
      await until('the first check to run', () => compares === 1);
      const leaving = raw(
        s.port,
        `GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Basic ${Buffer.from('prometheus:other').toString('base64')}\r\n\r\n`,
        '127.0.0.2',
      );
      await until('the second check to wait', () => auth.pending === 2);
      leaving.destroy();
      await until('the server to see it go', () => s.listeners.connections.open === 1);
      release(false);
      assert.equal((await first).status, 401);
      await until('the queue to empty', () => auth.pending === 0);
      assert.equal(compares, 1, 'bcrypt did not run for the client that left');
      assert.equal(auth.abandoned, 1);
    } finally {
      await s.close();
    }
  });

  it('a refusal for the limits says when to come back', async () => {
    const s = await served(`basic_auth_users:\n  prometheus: '${HASH}'\n`);
    try {
      const flood = await Promise.all(
        Array.from({ length: 5 }, (_, i) => get(s.port, { localAddress: '127.0.0.2', auth: `u:${i}` })),
      );
      const throttled = flood.filter((r) => r.status === 429);
      assert.ok(throttled.length > 0);
      for (const r of throttled) assert.match(String(r.headers['retry-after']), /^\d+$/);
    } finally {
      await s.close();
    }
  });
});

describe("rate_limit, as exporter-toolkit's", () => {
  it('burst requests pass, the next is 429 Too Many Requests; the probes are outside it', async () => {
    const s = await served('rate_limit:\n  interval: 1h\n  burst: 2\n');
    try {
      assert.equal((await get(s.port)).status, 200);
      assert.equal((await get(s.port, { path: '/' })).status, 200);
      const limited = await get(s.port);
      assert.equal(limited.status, 429);
      assert.equal(limited.body, 'Too Many Requests\n');
      assert.equal((await get(s.port, { path: '/healthz' })).status, 200);
      assert.equal((await get(s.port, { path: '/readyz' })).status, 200);
      assert.equal(
        (await get(s.port, { localAddress: '127.0.0.9' })).status,
        429,
        'one bucket for all clients',
      );
    } finally {
      await s.close();
    }
  });

  it('interval 0 turns it off', async () => {
    const s = await served('rate_limit:\n  interval: 0\n  burst: 1\n');
    try {
      for (let i = 0; i < 5; i++) assert.equal((await get(s.port)).status, 200);
    } finally {
      await s.close();
    }
  });
});

describe('TLS listeners', () => {
  let pki: Pki;
  before(() => {
    pki = new Pki();
    pki.issue('san-client', 'ca', [
      'subjectAltName=DNS:prometheus.example,URI:spiffe://cluster.local/ns/monitoring/sa/prometheus',
      'extendedKeyUsage=clientAuth',
    ]);
    pki.issue('san-stranger', 'other-ca', [
      'subjectAltName=DNS:prometheus.example',
      'extendedKeyUsage=clientAuth',
    ]);
  });
  after(() => pki?.remove());
  const read = (name: string) => readFileSync(pki.path(name), 'utf8');

  const tlsServed = (extra: string, flags: string[] = []) =>
    served(
      `tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_ca_file: ca.crt\n${extra}`,
      flags,
      pki.path('web.yml'),
    );

  /** Status of an HTTPS GET of /healthz with client certificate NAME, or the error code. */
  const tlsGet = (port: number, name?: string): Promise<number | string> =>
    new Promise((resolve) => {
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          port,
          path: '/healthz',
          agent: false,
          ca: read('ca.crt'),
          ...(name === undefined ? {} : { cert: read(`${name}.crt`), key: read(`${name}.key`) }),
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
      req.end();
    });

  it('the handshake and the request head are bounded by the headers timeout, with TLS too', async () => {
    const app = buildServer(deps());
    const web = parseWebConfig(
      'tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n',
      pki.path('web.yml'),
    );
    const listeners = await Listeners.open(app, [{ host: '127.0.0.1', port: 0 }], web, log, {
      limits: { headersTimeoutMs: HEADERS_TIMEOUT_MS },
    });
    const port = Number(listeners.addresses()[0]?.split(':').pop());
    try {
      const bound = HEADERS_TIMEOUT_MS + SLACK_MS;
      // A TCP connection that never starts the handshake.
      await within(bound, 'no handshake', untilClosed(raw(port, '')));
      // A finished handshake, then half a request head.
      const tls = tlsConnect({ host: '127.0.0.1', port, ca: read('ca.crt'), servername: 'localhost' });
      tls.once('secureConnect', () => tls.write('GET /metrics HTTP/1.1\r\nHost: x\r\n'));
      assert.match(
        await within(bound, 'half a head over TLS', untilClosed(tls as unknown as Socket)),
        /^HTTP\/1\.1 408 /,
      );
    } finally {
      await listeners.close();
      await app.close();
    }
  });

  it('client_allowed_sans: only a certificate carrying one of them gets in', async () => {
    const s = await tlsServed(
      '  client_auth_type: RequireAndVerifyClientCert\n  client_allowed_sans: [prometheus.example]\n',
    );
    try {
      assert.equal(await tlsGet(s.port, 'san-client'), 200);
      assert.equal(
        typeof (await tlsGet(s.port, 'client')),
        'string',
        'a certificate from the CA without the SAN',
      );
      assert.equal(typeof (await tlsGet(s.port, 'san-stranger')), 'string', 'the SAN from another CA');
      assert.equal(typeof (await tlsGet(s.port)), 'string', 'no certificate');
    } finally {
      await s.close();
    }
  });

  it('client_allowed_sans matches URIs exactly; with RequireAnyClientCert the chain is not checked', async () => {
    const s = await tlsServed(
      "  client_auth_type: RequireAnyClientCert\n  client_allowed_sans: ['spiffe://cluster.local/ns/monitoring/sa/prometheus', prometheus.example]\n",
    );
    try {
      assert.equal(await tlsGet(s.port, 'san-client'), 200);
      assert.equal(
        await tlsGet(s.port, 'san-stranger'),
        200,
        'as Go: RequireAnyClientCert verifies no chain',
      );
      assert.equal(typeof (await tlsGet(s.port, 'stranger')), 'string', 'no SAN at all');
    } finally {
      await s.close();
    }
  });
});
