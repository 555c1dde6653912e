import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import bcrypt from 'bcryptjs';
import { BasicAuth } from '../../../src/http/basic-auth.js';
import { acceptsGzip, buildServer } from '../../../src/http/server.js';
import { TokenBucket } from '../../../src/http/token-bucket.js';
import { deps, heldRender } from './server-deps.js';

/** Lets the event loop turn until `cond` holds (bounded in turns, not in time). */
async function until(cond: () => boolean): Promise<void> {
  for (let turn = 0; !cond(); turn++) {
    if (turn > 10_000) throw new Error('the condition never held');
    await new Promise((r) => setImmediate(r));
  }
}

describe('HTTP server', () => {
  it('serves metrics in the Prometheus text format at the telemetry path', async () => {
    let scrapes = 0;
    const app = buildServer(
      deps({
        telemetryPath: '/m',
        render: async () => `x ${++scrapes}\n`,
      }),
    );
    const res = await app.inject({ url: '/m' });
    assert.equal(res.statusCode, 200);
    assert.equal(
      res.headers['content-type'],
      'text/plain; version=0.0.4; charset=utf-8; escaping=underscores',
    );
    assert.equal(res.body, 'x 1\n');
    assert.equal((await app.inject({ url: '/metrics' })).statusCode, 404);
    await app.close();
  });

  it('a failing scrape is a 500, and the next one works', async () => {
    let fail = true;
    const app = buildServer(
      deps({
        render: async () => {
          if (fail) throw new Error('netlink down');
          return 'x 1\n';
        },
      }),
    );
    assert.equal((await app.inject({ url: '/metrics' })).statusCode, 500);
    fail = false;
    assert.equal((await app.inject({ url: '/metrics' })).statusCode, 200);
    await app.close();
  });

  it('readyz follows readiness; healthz answers while no socket is lost', async () => {
    let ready = false;
    const app = buildServer(deps({ isReady: () => ready }));
    assert.equal((await app.inject({ url: '/readyz' })).statusCode, 503);
    assert.equal((await app.inject({ url: '/healthz' })).statusCode, 200);
    ready = true;
    assert.equal((await app.inject({ url: '/readyz' })).statusCode, 200);
    await app.close();
  });

  it('healthz fails (503, naming the kind of socket) while a socket cannot be reopened, for the kubelet to restart the pod', async () => {
    let lost: string | undefined;
    const app = buildServer(deps({ unhealthy: () => lost }));
    assert.equal((await app.inject({ url: '/healthz' })).statusCode, 200);
    lost = 'stats';
    const res = await app.inject({ url: '/healthz' });
    assert.equal(res.statusCode, 503);
    assert.match(res.body, /stats/);
    lost = undefined;
    assert.equal((await app.inject({ url: '/healthz' })).statusCode, 200, 'reopened: healthy again');
    await app.close();
  });

  it('the landing page, as exporter-toolkit draws it: name, description, version, links', async () => {
    const app = buildServer(deps({ telemetryPath: '/conntrack' }));
    const res = await app.inject({ url: '/' });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'text/html; charset=UTF-8');
    assert.ok(res.body.includes('<header>\n      <h1>conntrack-exporter</h1>'));
    assert.ok(res.body.includes('<h2>Prometheus exporter for Linux netfilter connection tracking</h2>'));
    assert.ok(res.body.includes('<div>Version: 9.9.9</div>'));
    for (const path of ['/conntrack', '/healthz', '/readyz'])
      assert.ok(res.body.includes(`<li><a href="${path}">${path}</a>: `), path);
    // Anything else is not found, as the toolkit's handler answers.
    assert.equal((await app.inject({ url: '/index.html' })).statusCode, 404);
    const odd = buildServer(deps({ version: '<b>1</b>' }));
    assert.ok((await odd.inject({ url: '/' })).body.includes('Version: &#60;b&#62;1&#60;/b&#62;'));
    await odd.close();
    await app.close();
  });

  it('releases resources on close', async () => {
    let released = 0;
    const app = buildServer(deps({ onClose: () => void released++ }));
    await app.ready();
    await app.close();
    assert.equal(released, 1);
  });

  const big = `${'# HELP x y\n# TYPE x gauge\n'}${Array.from({ length: 200 }, (_, i) => `x{i="${i}"} ${i}`).join('\n')}\n`;

  it('gzips large bodies when the client accepts gzip, and says the body varies with it', async () => {
    const app = buildServer(deps({ render: async () => big }));
    const zipped = await app.inject({ url: '/metrics', headers: { 'accept-encoding': 'gzip' } });
    assert.equal(zipped.statusCode, 200);
    assert.equal(zipped.headers['content-encoding'], 'gzip');
    assert.equal(zipped.headers.vary, 'Accept-Encoding');
    assert.equal(
      zipped.headers['content-type'],
      'text/plain; version=0.0.4; charset=utf-8; escaping=underscores',
    );
    assert.equal(gunzipSync(zipped.rawPayload).toString(), big);
    assert.ok(zipped.rawPayload.length < big.length / 2, `${zipped.rawPayload.length} bytes`);
    const plain = await app.inject({ url: '/metrics' });
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(plain.body, big);
    const refused = await app.inject({
      url: '/metrics',
      headers: { 'accept-encoding': 'gzip;q=0, identity' },
    });
    assert.equal(refused.headers['content-encoding'], undefined);
    // Small bodies are not worth it.
    const small = await app.inject({ url: '/healthz', headers: { 'accept-encoding': 'gzip' } });
    assert.equal(small.headers['content-encoding'], undefined);
    assert.equal(small.body, 'ok\n');
    await app.close();
  });

  it('acceptsGzip reads q-values and wildcards', () => {
    const cases: [string | undefined, boolean][] = [
      [undefined, false],
      ['', false],
      ['gzip', true],
      ['GZIP', true],
      ['deflate, gzip;q=1.0, *;q=0.5', true],
      ['x-gzip', true],
      ['gzip;q=0', false],
      ['gzip; q=0.000', false],
      ['identity', false],
      ['*', true],
      ['*;q=0', false],
      ['br, zstd', false],
      ['*, gzip;q=0', false],
    ];
    for (const [header, want] of cases) assert.equal(acceptsGzip(header), want, String(header));
  });

  describe('with basic_auth_users', () => {
    const auth = () => new BasicAuth(new Map([['prometheus', bcrypt.hashSync('right', 4)]]));
    const creds = (u: string, p: string) => ({
      authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`,
    });

    it('metrics and the landing page need the password; probes do not', async () => {
      const app = buildServer(deps({ auth: auth() }));
      const denied = await app.inject({ url: '/metrics' });
      assert.equal(denied.statusCode, 401);
      assert.match(String(denied.headers['www-authenticate']), /^Basic /);
      assert.ok(!denied.body.includes('# TYPE'), 'no metrics in a refusal');
      assert.equal(
        (await app.inject({ url: '/metrics', headers: creds('prometheus', 'wrong') })).statusCode,
        401,
      );
      assert.equal(
        (await app.inject({ url: '/metrics', headers: creds('nobody', 'right') })).statusCode,
        401,
      );
      assert.equal((await app.inject({ url: '/', headers: {} })).statusCode, 401);
      assert.equal(
        (await app.inject({ url: '/nope' })).statusCode,
        401,
        'unknown paths do not tell 404 from 401',
      );
      const ok = await app.inject({ url: '/metrics', headers: creds('prometheus', 'right') });
      assert.equal(ok.statusCode, 200);
      assert.match(ok.body, /^# HELP x y/);
      assert.equal((await app.inject({ url: '/healthz' })).statusCode, 200);
      assert.equal((await app.inject({ url: '/readyz' })).statusCode, 200);
      assert.equal((await app.inject({ url: '/readyz?verbose=1' })).statusCode, 200);
      await app.close();
    });

    it('a client over its login limits gets 429 with Retry-After; a full queue 503', async () => {
      let release = (_matches: boolean) => {};
      const held = () => new Promise<boolean>((resolve) => (release = resolve));
      const auth = new BasicAuth(new Map([['p', bcrypt.hashSync('x', 4)]]), { maxPending: 1 }, held);
      const app = buildServer(deps({ auth }));
      await app.ready();
      const first = app.inject({ url: '/metrics', headers: creds('p', 'guess1'), remoteAddress: '10.0.0.1' });
      await until(() => auth.pending === 1);
      const [again, other] = await Promise.all([
        app.inject({ url: '/metrics', headers: creds('p', 'guess2'), remoteAddress: '10.0.0.1' }),
        app.inject({ url: '/metrics', headers: creds('p', 'guess3'), remoteAddress: '10.0.0.2' }),
      ]);
      assert.equal(again.statusCode, 429);
      assert.equal(again.headers['retry-after'], '1');
      assert.equal(other.statusCode, 503);
      assert.equal(other.headers['retry-after'], '1');
      release(false);
      assert.equal((await first).statusCode, 401);
      await app.close();
    });

    it('without users nothing needs a password', async () => {
      const app = buildServer(deps({ auth: new BasicAuth(new Map()) }));
      assert.equal((await app.inject({ url: '/metrics' })).statusCode, 200);
      await app.close();
    });
  });

  it('scrapes that arrive while a render runs share it', async () => {
    const { held, render } = heldRender();
    const app = buildServer(deps({ render }));
    const all = Array.from({ length: 10 }, () => app.inject({ url: '/metrics' }));
    await new Promise((r) => setImmediate(r));
    held.release();
    const res = await Promise.all(all);
    assert.deepEqual(new Set(res.map((r) => `${r.statusCode} ${r.body}`)), new Set(['200 x 1\n']));
    assert.equal(held.calls, 1);
    // The next scrape renders afresh.
    await app.inject({ url: '/metrics' });
    assert.equal(held.calls, 2);
    await app.close();
  });

  it('answers in the format the Accept header asks for, with its Content-Type', async () => {
    const asked: string[] = [];
    const app = buildServer(
      deps({
        render: async (format) => {
          asked.push(format);
          return format === 'protobuf' ? Uint8Array.of(3, 1, 2, 3) : `${format}\n`;
        },
      }),
    );
    const get = (accept: string) => app.inject({ url: '/metrics', headers: { accept } });
    const om = await get('application/openmetrics-text;version=1.0.0');
    assert.equal(
      om.headers['content-type'],
      'application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores',
    );
    assert.equal(om.body, 'openmetrics\n');
    const proto = await get(
      'application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;escaping=allow-utf-8',
    );
    assert.equal(
      proto.headers['content-type'],
      'application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited; escaping=allow-utf-8',
    );
    assert.deepEqual([...proto.rawPayload], [3, 1, 2, 3]);
    const unknown = await get('application/json');
    assert.equal(
      unknown.headers['content-type'],
      'text/plain; version=0.0.4; charset=utf-8; escaping=underscores',
    );
    assert.equal(unknown.body, 'text\n');
    assert.deepEqual(asked, ['openmetrics', 'protobuf', 'text']);
    await app.close();
  });

  it('concurrent scrapes share one render per format, never one of another format', async () => {
    let release = (): void => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const calls: string[] = [];
    const app = buildServer(
      deps({
        render: async (format) => {
          calls.push(format);
          await gate;
          return format === 'protobuf' ? new Uint8Array(2000).fill(7) : `${format} ${'x'.repeat(2000)}\n`;
        },
      }),
    );
    const accept = {
      text: 'text/plain',
      openmetrics: 'application/openmetrics-text;version=1.0.0',
      protobuf: 'application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited',
    };
    const all = (['text', 'openmetrics', 'protobuf'] as const).flatMap((f) =>
      Array.from({ length: 4 }, () =>
        app
          .inject({ url: '/metrics', headers: { accept: accept[f], 'accept-encoding': 'gzip' } })
          .then((r) => ({ f, r })),
      ),
    );
    await new Promise((r) => setImmediate(r));
    release();
    for (const { f, r } of await Promise.all(all)) {
      assert.equal(r.headers['content-encoding'], 'gzip');
      const body = gunzipSync(r.rawPayload);
      if (f === 'protobuf') assert.deepEqual(body, Buffer.alloc(2000, 7));
      else assert.ok(body.toString().startsWith(`${f} `), f);
    }
    assert.deepEqual(calls.sort(), ['openmetrics', 'protobuf', 'text']);
    await app.close();
  });

  it('HEAD of the metrics path says the negotiated type and renders nothing', async () => {
    let renders = 0;
    const app = buildServer(deps({ render: async () => `x ${++renders}\n` }));
    const res = await app.inject({
      method: 'HEAD',
      url: '/metrics',
      headers: { accept: 'application/openmetrics-text;version=1.0.0' },
    });
    assert.equal(
      res.headers['content-type'],
      'application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores',
    );
    assert.equal(res.body, '');
    assert.equal(renders, 0);
    await app.close();
  });

  it('HEAD of the metrics path renders nothing', async () => {
    let renders = 0;
    const app = buildServer(deps({ render: async () => `x ${++renders}\n` }));
    const res = await app.inject({ method: 'HEAD', url: '/metrics' });
    assert.equal(res.statusCode, 200);
    assert.equal(
      res.headers['content-type'],
      'text/plain; version=0.0.4; charset=utf-8; escaping=underscores',
    );
    assert.equal(res.body, '');
    assert.equal(renders, 0);
    await app.close();
  });

  it('--web.max-requests: scrapes beyond it are answered 503 at once, and the count comes back down', async () => {
    const { held, render } = heldRender();
    const app = buildServer(deps({ render, maxRequests: 2 }));
    let handled = 0;
    app.addHook('preHandler', async () => void handled++);
    const waiting = [app.inject({ url: '/metrics' }), app.inject({ url: '/metrics' })];
    await until(() => handled === 2 && held.calls === 1);
    await new Promise((r) => setImmediate(r));
    const over = await app.inject({ url: '/metrics' });
    assert.equal(over.statusCode, 503, 'answered while the render is still held');
    assert.equal(over.body, 'Limit of concurrent requests reached (2), try again later.\n');
    assert.equal((await app.inject({ url: '/healthz' })).statusCode, 200, 'other paths are not counted');
    held.release();
    assert.deepEqual(
      (await Promise.all(waiting)).map((r) => r.statusCode),
      [200, 200],
    );
    for (let i = 0; i < 5; i++) assert.equal((await app.inject({ url: '/metrics' })).statusCode, 200);
    await app.close();
  });

  it('rate_limit: beyond the bucket, 429 as exporter-toolkit answers; probes are outside it', async () => {
    let t = 0;
    const app = buildServer(deps({ rateLimit: new TokenBucket(1000, 2, () => t) }));
    assert.equal((await app.inject({ url: '/metrics' })).statusCode, 200);
    assert.equal((await app.inject({ url: '/' })).statusCode, 200);
    const limited = await app.inject({ url: '/metrics' });
    assert.equal(limited.statusCode, 429);
    assert.equal(limited.body, 'Too Many Requests\n');
    assert.equal((await app.inject({ url: '/healthz' })).statusCode, 200);
    assert.equal((await app.inject({ url: '/readyz' })).statusCode, 200);
    t += 1000;
    assert.equal((await app.inject({ url: '/metrics' })).statusCode, 200, 'one more after one interval');
    assert.equal((await app.inject({ url: '/metrics' })).statusCode, 429);
    await app.close();
  });

  it('adds the configured headers to every response, refusals included', async () => {
    const headers = { 'X-Frame-Options': 'deny', 'Strict-Transport-Security': 'max-age=60' };
    const app = buildServer(
      deps({ headers, auth: new BasicAuth(new Map([['p', bcrypt.hashSync('x', 4)]])) }),
    );
    for (const url of ['/healthz', '/metrics']) {
      const res = await app.inject({ url });
      assert.equal(res.headers['x-frame-options'], 'deny', url);
      assert.equal(res.headers['strict-transport-security'], 'max-age=60', url);
    }
    await app.close();
  });
});
