/**
 * The HTTP face: /metrics (or --web.telemetry-path), /healthz, /readyz and a landing page. The
 * factory does not listen, so tests drive it with inject(); listeners.ts puts it on sockets.
 *
 * With `auth`, every path but /healthz and /readyz needs basic authentication: probes (kubelet,
 * load balancers) cannot easily send credentials, and those two answer only "ok"/"ready".
 * exporter-toolkit protects every path; this is the one deliberate difference. Bodies of 1 KiB
 * or more are gzipped when the client accepts it (Prometheus does); zlib runs off the event loop.
 */
import { promisify } from 'node:util';
import { gzip as gzipCb } from 'node:zlib';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { BasicAuth } from './basic-auth.js';

const gzip = promisify(gzipCb);
const GZIP_MIN_BYTES = 1024;
/** Reachable without credentials, for probes. */
const UNAUTHENTICATED_PATHS: readonly string[] = ['/healthz', '/readyz'];

export interface ServerDeps {
  telemetryPath: string;
  version: string;
  /** One scrape: reads the kernel and renders every metric. */
  render(): Promise<string>;
  contentType: string;
  /** True once the first table dump has been merged. */
  isReady(): boolean;
  logger?: FastifyBaseLogger | undefined;
  /** Released when the server closes (sockets, timers). */
  onClose?: (() => void | Promise<void>) | undefined;
  /** Basic authentication (web config basic_auth_users); absent or empty: none. */
  auth?: BasicAuth | undefined;
  /** Headers added to every response (web config http_server_config.headers). */
  headers?: Readonly<Record<string, string>> | undefined;
}

/**
 * Whether an Accept-Encoding header allows gzip: `gzip` (or `x-gzip`, or `*` when gzip is not
 * named) with a q-value above 0.
 */
export function acceptsGzip(header: string | undefined): boolean {
  if (header === undefined) return false;
  let star = false;
  for (const part of header.split(',')) {
    const [token = '', ...params] = part.split(';').map((p) => p.trim().toLowerCase());
    const q = params.find((p) => p.startsWith('q='));
    const allowed = q === undefined || Number(q.slice(2)) > 0;
    if (token === 'gzip' || token === 'x-gzip') return allowed;
    if (token === '*') star = allowed;
  }
  return star;
}

function landingPage(deps: ServerDeps): string {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>conntrack-exporter</title></head>
<body>
<h1>conntrack-exporter ${deps.version}</h1>
<p>Prometheus metrics about netfilter connection tracking.</p>
<ul>
<li><a href="${deps.telemetryPath}">${deps.telemetryPath}</a>: metrics</li>
<li><a href="/healthz">/healthz</a>: the process is alive</li>
<li><a href="/readyz">/readyz</a>: the shadow table has been seeded from the kernel</li>
</ul>
</body>
</html>
`;
}

export function buildServer(deps: ServerDeps): FastifyInstance {
  const app = Fastify(deps.logger ? { loggerInstance: deps.logger } : { logger: false });

  const headers = Object.entries(deps.headers ?? {});
  if (headers.length > 0) {
    app.addHook('onRequest', async (_req, reply) => {
      for (const [name, value] of headers) reply.header(name, value);
    });
  }
  const auth = deps.auth;
  if (auth?.enabled) {
    app.addHook('onRequest', async (req, reply) => {
      const q = req.url.indexOf('?');
      const path = q < 0 ? req.url : req.url.slice(0, q);
      if (UNAUTHENTICATED_PATHS.includes(path)) return;
      if (await auth.check(req.headers.authorization)) return;
      return reply
        .code(401)
        .header('www-authenticate', 'Basic realm="conntrack-exporter", charset="UTF-8"')
        .type('text/plain; charset=utf-8')
        .send('Unauthorized\n');
    });
  }
  app.addHook('onSend', async (req, reply, payload) => {
    if (typeof payload !== 'string' || payload.length < GZIP_MIN_BYTES) return payload;
    reply.header('vary', 'Accept-Encoding');
    if (reply.hasHeader('content-encoding') || !acceptsGzip(req.headers['accept-encoding'])) return payload;
    reply.header('content-encoding', 'gzip');
    return gzip(payload);
  });

  app.get(deps.telemetryPath, async (_req, reply) => {
    const body = await deps.render();
    return reply.type(deps.contentType).send(body);
  });
  app.get('/healthz', async (_req, reply) => reply.type('text/plain').send('ok\n'));
  app.get('/readyz', async (_req, reply) =>
    deps.isReady()
      ? reply.type('text/plain').send('ready\n')
      : reply.code(503).type('text/plain').send('not ready: the conntrack table dump has not completed\n'),
  );
  app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(landingPage(deps)));

  if (deps.onClose) {
    const release = deps.onClose;
    app.addHook('onClose', async () => {
      await release();
    });
  }
  return app;
}
