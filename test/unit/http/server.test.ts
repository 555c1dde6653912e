import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import bcrypt from 'bcryptjs';
import { BasicAuth } from '../../../src/http/basic-auth.js';
import { acceptsGzip, buildServer, type ServerDeps } from '../../../src/http/server.js';

function deps(over: Partial<ServerDeps> = {}): ServerDeps {
  return {
    telemetryPath: '/metrics',
    version: '9.9.9',
    render: async () => '# HELP x y\n# TYPE x gauge\nx 1\n',
    contentType: 'text/plain; version=0.0.4; charset=utf-8',
    isReady: () => true,
    ...over,
  };
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
    assert.equal(res.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
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

  it('readyz follows readiness; healthz always answers', async () => {
    let ready = false;
    const app = buildServer(deps({ isReady: () => ready }));
    assert.equal((await app.inject({ url: '/readyz' })).statusCode, 503);
    assert.equal((await app.inject({ url: '/healthz' })).statusCode, 200);
    ready = true;
    assert.equal((await app.inject({ url: '/readyz' })).statusCode, 200);
    await app.close();
  });

  it('the landing page links to the telemetry path', async () => {
    const app = buildServer(deps({ telemetryPath: '/conntrack' }));
    const res = await app.inject({ url: '/' });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/html/);
    assert.ok(res.body.includes('href="/conntrack"'));
    assert.ok(res.body.includes('9.9.9'));
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
    assert.equal(zipped.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
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

    it('without users nothing needs a password', async () => {
      const app = buildServer(deps({ auth: new BasicAuth(new Map()) }));
      assert.equal((await app.inject({ url: '/metrics' })).statusCode, 200);
      await app.close();
    });
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
