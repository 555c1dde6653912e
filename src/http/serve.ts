/**
 * The HTTP side of both modes (one namespace, --netns.all): the server with the web config's
 * authentication and headers, listening on every --web.listen-address.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { BasicAuth } from './basic-auth.js';
import { Listeners } from './listeners.js';
import { buildServer, type ServerDeps } from './server.js';
import type { WebConfig } from './web-config.js';

export interface Served {
  server: FastifyInstance;
  /** host:port of every listening socket. */
  addresses: string[];
  close(): Promise<void>;
}

export async function serve(
  config: Config,
  web: WebConfig | undefined,
  log: Logger,
  deps: Pick<ServerDeps, 'version' | 'render' | 'contentType' | 'isReady' | 'onClose'>,
): Promise<Served> {
  const server = buildServer({
    ...deps,
    telemetryPath: config.telemetryPath,
    // Request logs (info) only when debugging: a scrape every 15 s is not news.
    logger: log.child({ component: 'http' }, { level: log.level === 'debug' ? 'debug' : 'warn' }),
    auth: web && new BasicAuth(web.users),
    headers: web?.headers,
  });
  let listeners: Listeners;
  try {
    listeners = await Listeners.open(server, config.listen, web, log.child({ component: 'http' }));
  } catch (err) {
    await server.close();
    throw err;
  }
  return {
    server,
    addresses: listeners.addresses(),
    close: async () => {
      await listeners.close();
      await server.close();
    },
  };
}
