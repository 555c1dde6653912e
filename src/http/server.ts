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
 * The telemetry path answers in the format the Accept header asks for (negotiate.ts: text 0.0.4,
 * OpenMetrics or protobuf). Scrapes that arrive while a render in their format is under way share
 * it (and its gzip) instead of queueing a render each; `--web.max-requests` bounds how many wait
 * (503 beyond, as node_exporter answers). HEAD of the telemetry path renders nothing.
 */
import { promisify } from 'node:util';
import { gzip as gzipCb } from 'node:zlib';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify';
import type { ExpositionFormat } from '../metrics/exposition/formats.js';
import type { AuthOutcome, BasicAuth } from './basic-auth.js';
import { negotiate } from './negotiate.js';
import type { TokenBucket } from './token-bucket.js';

const gzip = promisify(gzipCb);
const GZIP_MIN_BYTES = 1024;
/** Reachable without credentials, for probes. */
const UNAUTHENTICATED_PATHS: readonly string[] = ['/healthz', '/readyz'];

export interface ServerDeps {
  telemetryPath: string;
  version: string;
  /** The landing page's title and description; by default the exporter's own. */
  name?: string | undefined;
  description?: string | undefined;
  /** One scrape: reads the kernel and renders every metric in `format`. */
  render(format: ExpositionFormat): Promise<string | Uint8Array>;
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

type Body = string | Buffer;

/** A render per format shared by the scrapes that arrive while it runs. */
function sharedRender(
  render: (format: ExpositionFormat) => Promise<string | Uint8Array>,
): (format: ExpositionFormat) => Promise<Body> {
  const current = new Map<ExpositionFormat, Promise<Body>>();
  return (format) => {
    let p = current.get(format);
    if (p === undefined) {
      p = render(format)
        .then((body) =>
          // The same bytes, as the Buffer fastify sends and onSend compresses (no copy).
          typeof body === 'string' ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength),
        )
        .finally(() => current.delete(format));
      current.set(format, p);
    }
    return p;
  };
}

/**
 * gzip that compresses a body once when several responses send the same one (a shared render:
 * the same string, or the same Buffer object).
 */
function gzipOnce(): (body: Body) => Promise<Buffer> {
  let last: { body: Body; zipped: Promise<Buffer> } | undefined;
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

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * The landing page as exporter-toolkit's (web/landing_page.go and its template) draws it: the
 * name in a Prometheus-orange header, the description, the version, and one line per link with
 * what it is for. Its pprof links have no Node.js counterpart and are left out.
 */
function landingPage(deps: ServerDeps): string {
  const name = deps.name ?? 'conntrack-exporter';
  const description = deps.description ?? 'Prometheus exporter for Linux netfilter connection tracking';
  const links: [string, string][] = [
    [deps.telemetryPath, 'Metrics (text, OpenMetrics or protobuf, as the Accept header asks)'],
    ['/healthz', 'Health: the process is alive and its sockets open (or being reopened)'],
    ['/readyz', 'Readiness: the shadow table has been seeded from the kernel'],
  ];
  const items = links
    .map(
      ([href, text]) =>
        `          <li><a href="${escapeHtml(href)}">${escapeHtml(href)}</a>: ${escapeHtml(text)}</li>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <meta name="viewport" content="width=device-width, initial-scale=1.0">
    <title>${escapeHtml(name)}</title>
    <style>
body { font-family: -apple-system,BlinkMacSystemFont,Segoe UI,Roboto,Helvetica Neue,Arial,Noto Sans,Liberation Sans,sans-serif; margin: 0; }
header { background-color: #e6522c; color: #fff; font-size: 1rem; padding: 1rem; }
main { padding: 1rem; }
    </style>
  </head>
  <body>
    <header>
      <h1>${escapeHtml(name)}</h1>
    </header>
    <main>
      <h2>${escapeHtml(description)}</h2>
      <div>Version: ${escapeHtml(deps.version)}</div>
      <div>
        <ul>
${items}
        </ul>
      </div>
    </main>
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
    if (!(typeof payload === 'string' || Buffer.isBuffer(payload)) || payload.length < GZIP_MIN_BYTES)
      return payload;
    reply.header('vary', 'Accept-Encoding');
    if (reply.hasHeader('content-encoding') || !acceptsGzip(req.headers['accept-encoding'])) return payload;
    reply.header('content-encoding', 'gzip');
    return compress(payload);
  });

  const render = sharedRender((format) => deps.render(format));
  const maxRequests = deps.maxRequests ?? 0;
  let inFlight = 0;
  // Declared before the GET route, so fastify does not derive a HEAD route that would render.
  app.head(deps.telemetryPath, async (req, reply) =>
    reply.type(negotiate(req.headers.accept).contentType).send(),
  );
  app.get(deps.telemetryPath, async (req, reply) => {
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
    const { format, contentType } = negotiate(req.headers.accept);
    const body = await render(format);
    return reply.type(contentType).send(body);
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
  const landing = landingPage(deps);
  app.get('/', async (_req, reply) => reply.type('text/html; charset=UTF-8').send(landing));

  if (deps.onClose) {
    const release = deps.onClose;
    app.addHook('onClose', async () => {
      await release();
    });
  }
  return app;
}
