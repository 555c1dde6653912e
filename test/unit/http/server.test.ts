import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildServer, type ServerDeps } from '../../../src/http/server.js';

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
});
