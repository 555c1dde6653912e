/**
 * The HTTP face: /metrics (or --web.telemetry-path), /healthz, /readyz and a landing page. The
 * factory does not listen, so tests drive it with inject(); listeners.ts puts it on sockets.
 *
 * With `auth`, every path but /healthz and /readyz needs basic authentication: probes (kubelet,
 * load balancers) cannot easily send credentials, and those two answer only "ok"/"ready" (or
 * which kind of socket is lost, never which namespace).
 * exporter-toolkit protects every path; this is the one deliberate difference, and the probes
 * are outside `rate_limit` for the same reason. Bodies of 1 KiB or more are gzipped when the
 * client accepts it (Prometheus does); zlib runs off the event loop.
 *
 * Scrapes that arrive while a render is under way share it (and its gzip) instead of queueing a
 * render each; `--web.max-requests` bounds how many wait (503 beyond, as node_exporter answers).
 * HEAD of the telemetry path renders nothing.
 */
import { promisify } from 'node:util';
import { gzip as gzipCb } from 'node:zlib';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify';
import type { AuthOutcome, BasicAuth } from './basic-auth.js';
import type { TokenBucket } from './token-bucket.js';

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
  /** What makes the process unhealthy (a socket that could not be reopened), or undefined. */
  unhealthy?: (() => string | undefined) | undefined;
  logger?: FastifyBaseLogger | undefined;
  /** Released when the server closes (sockets, timers). */
  onClose?: (() => void | Promise<void>) | undefined;
  /** Basic authentication (web config basic_auth_users); absent or empty: none. */
  auth?: BasicAuth | undefined;
  /** Headers added to every response (web config http_server_config.headers). */
  headers?: Readonly<Record<string, string>> | undefined;
  /** Scrapes in flight at once (--web.max-requests); more are answered 503. 0 or absent: no limit. */
  maxRequests?: number | undefined;
  /** exporter-toolkit's rate_limit over every path but the probes: beyond it, 429. */
  rateLimit?: TokenBucket | undefined;
}

/** A render shared by the scrapes that arrive while it runs. */
function sharedRender(render: () => Promise<string>): () => Promise<string> {
  let current: Promise<string> | undefined;
  return () => {
    current ??= render().finally(() => {
      current = undefined;
    });
    return current;
  };
}

/** gzip that compresses a body once when several responses send the same one (a shared render). */
function gzipOnce(): (body: string) => Promise<Buffer> {
  let last: { body: string; zipped: Promise<Buffer> } | undefined;
  return (body) => {
    if (last?.body !== body) {
      const zipped = gzip(body);
      const entry = { body, zipped };
      last = entry;
      zipped.catch(() => {
        if (last === entry) last = undefined;
      });
    }
    return last.zipped;
  };
}

function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

/** Status and headers of an authentication refusal. */
function refuse(outcome: Exclude<AuthOutcome, { kind: 'ok' }>, reply: FastifyReply): FastifyReply {
  reply.type('text/plain; charset=utf-8');
  switch (outcome.kind) {
    case 'denied':
      return reply
        .code(401)
        .header('www-authenticate', 'Basic realm="conntrack-exporter", charset="UTF-8"')
        .send('Unauthorized\n');
    case 'throttled':
      return reply
        .code(429)
        .header('retry-after', String(outcome.retryAfterSeconds))
        .send('Too many login attempts from this address\n');
    case 'busy':
      return reply.code(503).header('retry-after', '1').send('Too many logins being checked\n');
  }
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
<li><a href="/healthz">/healthz</a>: the process is alive and its sockets open (or being reopened)</li>
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
  const rateLimit = deps.rateLimit;
  if (rateLimit !== undefined) {
    app.addHook('onRequest', async (req, reply) => {
      if (UNAUTHENTICATED_PATHS.includes(pathOf(req.url)) || rateLimit.allow()) return;
      // As exporter-toolkit (Go's http.Error).
      return reply
        .code(429)
        .type('text/plain; charset=utf-8')
        .header('x-content-type-options', 'nosniff')
        .send('Too Many Requests\n');
    });
  }
  const auth = deps.auth;
  if (auth?.enabled) {
    app.addHook('onRequest', async (req, reply) => {
      if (UNAUTHENTICATED_PATHS.includes(pathOf(req.url))) return;
      // A check still queued when its client hangs up is skipped.
      const gone = new AbortController();
      const onClose = (): void => {
        if (!reply.raw.writableFinished) gone.abort();
      };
      reply.raw.once('close', onClose);
      let outcome: AuthOutcome;
      try {
        outcome = await auth.check(req.headers.authorization, { address: req.ip, signal: gone.signal });
      } finally {
        reply.raw.off('close', onClose);
      }
      if (outcome.kind === 'ok') return;
      return refuse(outcome, reply);
    });
  }
  const compress = gzipOnce();
  app.addHook('onSend', async (req, reply, payload) => {
    if (typeof payload !== 'string' || payload.length < GZIP_MIN_BYTES) return payload;
    reply.header('vary', 'Accept-Encoding');
    if (reply.hasHeader('content-encoding') || !acceptsGzip(req.headers['accept-encoding'])) return payload;
    reply.header('content-encoding', 'gzip');
    return compress(payload);
  });

  const render = sharedRender(() => deps.render());
  const maxRequests = deps.maxRequests ?? 0;
  let inFlight = 0;
  // Declared before the GET route, so fastify does not derive a HEAD route that would render.
  app.head(deps.telemetryPath, async (_req, reply) => reply.type(deps.contentType).send());
  app.get(deps.telemetryPath, async (_req, reply) => {
    if (maxRequests > 0 && inFlight >= maxRequests) {
      // node_exporter's (promhttp's) answer.
      return reply
        .code(503)
        .type('text/plain; charset=utf-8')
        .send(`Limit of concurrent requests reached (${maxRequests}), try again later.\n`);
    }
    // In flight until the response is sent or its client has gone, as promhttp counts.
    inFlight++;
    let counted = true;
    const release = (): void => {
      if (counted) inFlight--;
      counted = false;
    };
    reply.raw.once('close', release).once('finish', release);
    const body = await render();
    return reply.type(deps.contentType).send(body);
  });
  // The kubelet restarts the pod on a failing liveness probe: only for what a restart repairs.
  app.get('/healthz', async (_req, reply) => {
    const problem = deps.unhealthy?.();
    return problem === undefined
      ? reply.type('text/plain').send('ok\n')
      : reply
          .code(503)
          .type('text/plain')
          .send(`unhealthy: the ${problem} netlink socket could not be reopened\n`);
  });
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
