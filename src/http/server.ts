/**
 * The HTTP face: /metrics (or --web.telemetry-path), /healthz, /readyz and a landing page. The
 * factory does not listen, so tests drive it with inject().
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';

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
