/**
 * The HTTP side of both modes (one namespace, --netns.all): the server with the web config's
 * authentication, rate limit and headers and --web.max-requests, listening on every
 * --web.listen-address with the limits of limits.ts.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { BasicAuth } from './basic-auth.js';
import type { HttpLimits } from './limits.js';
import { Listeners } from './listeners.js';
import { buildServer, type ServerDeps } from './server.js';
import { TokenBucket } from './token-bucket.js';
import type { WebConfig } from './web-config.js';

export interface Served {
  server: FastifyInstance;
  /** host:port of every listening socket. */
  addresses: string[];
  /** Open connections and those refused for being over the limits. */
  connections: Listeners['connections'];
  /** undefined without basic_auth_users. */
  auth: BasicAuth | undefined;
  close(): Promise<void>;
}

export interface ServeOptions {
  /** Other limits than the defaults: tests that must see a timeout within a second or two. */
  limits?: Partial<HttpLimits> | undefined;
}

export async function serve(
  config: Config,
  web: WebConfig | undefined,
  log: Logger,
  deps: Pick<ServerDeps, 'version' | 'render' | 'isReady' | 'unhealthy' | 'onClose'>,
  options: ServeOptions = {},
): Promise<Served> {
  const auth = web && web.users.size > 0 ? new BasicAuth(web.users) : undefined;
  const rate = web?.rateLimit;
  const server = buildServer({
    ...deps,
    telemetryPath: config.telemetryPath,
    // Request logs (info) only when debugging: a scrape every 15 s is not news.
    logger: log.child({ component: 'http' }, { level: log.level === 'debug' ? 'debug' : 'warn' }),
    auth,
    headers: web?.headers,
    maxRequests: config.webMaxRequests,
    rateLimit: rate && new TokenBucket(rate.intervalMs, rate.burst),
  });
  let listeners: Listeners;
  try {
    listeners = await Listeners.open(server, config.listen, web, log.child({ component: 'http' }), {
      limits: options.limits,
    });
  } catch (err) {
    await server.close();
    throw err;
  }
  return {
    server,
    addresses: listeners.addresses(),
    connections: listeners.connections,
    auth,
    close: async () => {
      await listeners.close();
      await server.close();
    },
  };
}
