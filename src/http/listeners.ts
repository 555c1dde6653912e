/**
 * Puts the Fastify app (buildServer) on one socket per --web.listen-address, plain HTTP or TLS
 * as the web config says. With TLS, the certificate, key and client CA files are polled with
 * fs.watchFile (a stat, no read, every few seconds; it follows symlinks, so Kubernetes' atomic
 * secret updates are seen) and, when one changes, re-read, checked and installed with
 * setSecureContext for new connections: no restart, and no file read on the request path. A
 * change that does not load (a key written before its certificate) keeps the previous pair.
 * Every socket gets the limits of limits.ts (timeouts, connection counts).
 */

import { unwatchFile, watchFile } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { hasAllowedSan } from './client-sans.js';
import { ConnectionLimiter, type HttpLimits, httpLimits, serverOptions } from './limits.js';
import type { TlsServerConfig, WebConfig } from './web-config.js';
import { loadTlsMaterial, secureContextOptions } from './web-config-files.js';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export interface ListenerOptions {
  /** How often certificate files are checked for changes, ms. */
  certPollMs?: number | undefined;
  /** Timeouts and connection counts; unset ones take DEFAULT_HTTP_LIMITS. */
  limits?: Partial<HttpLimits> | undefined;
}

const DEFAULT_CERT_POLL_MS = 5000;

/** Go's client auth types in Node's terms; the "Any" and "IfGiven" checks run after the handshake. */
function clientAuthOptions(t: TlsServerConfig): { requestCert: boolean; rejectUnauthorized: boolean } {
  switch (t.clientAuthType) {
    case 'NoClientCert':
      return { requestCert: false, rejectUnauthorized: false };
    case 'RequireAndVerifyClientCert':
      return { requestCert: true, rejectUnauthorized: true };
    default:
      return { requestCert: true, rejectUnauthorized: false };
  }
}

/**
 * Why a connection that OpenSSL let through is refused, or undefined: the "Any" and "IfGiven"
 * client auth types, and client_allowed_sans (which exporter-toolkit checks in the handshake).
 */
function refusal(t: TlsServerConfig, socket: TLSSocket): string | undefined {
  const hasCert = Object.keys(socket.getPeerCertificate()).length > 0;
  if (t.clientAuthType === 'RequireAnyClientCert' && !hasCert) return 'TLS client sent no certificate';
  if (t.clientAuthType === 'VerifyClientCertIfGiven' && hasCert && !socket.authorized)
    return `TLS client certificate refused: ${String(socket.authorizationError)}`;
  if (
    t.clientAllowedSans !== undefined &&
    !hasAllowedSan(socket.getPeerX509Certificate(), t.clientAllowedSans)
  )
    return 'TLS client certificate carries none of client_allowed_sans';
  return undefined;
}

/** Ends connections that the web config refuses but OpenSSL let through, before any request is read. */
function afterHandshake(
  t: TlsServerConfig,
  log: FastifyBaseLogger,
): ((socket: TLSSocket) => void) | undefined {
  if (
    t.clientAuthType !== 'RequireAnyClientCert' &&
    t.clientAuthType !== 'VerifyClientCertIfGiven' &&
    t.clientAllowedSans === undefined
  )
    return undefined;
  return (socket) => {
    const why = refusal(t, socket);
    if (why === undefined) return;
    log.debug({ remote: socket.remoteAddress }, `${why}; closing`);
    socket.destroy();
  };
}

export class Listeners {
  private readonly watched: string[] = [];

  private constructor(
    private readonly servers: (HttpServer | HttpsServer)[],
    private readonly log: FastifyBaseLogger,
    /** Open connections over all sockets, and those refused for being over the limits. */
    readonly connections: ConnectionLimiter,
  ) {}

  /** Listens on every address (all or none: a failure closes those already open). */
  static async open(
    app: FastifyInstance,
    addresses: readonly ListenAddress[],
    web: WebConfig | undefined,
    log: FastifyBaseLogger,
    options: ListenerOptions = {},
  ): Promise<Listeners> {
    await app.ready();
    const handler = app.routing;
    const tls = web?.tls;
    const servers: (HttpServer | HttpsServer)[] = [];
    const limits = httpLimits(options.limits);
    const connections = new ConnectionLimiter(limits);
    const listeners = new Listeners(servers, log, connections);
    const tlsOptions = web &&
      tls && { ...secureContextOptions(tls, loadTlsMaterial(web)), ...clientAuthOptions(tls) };
    try {
      for (const address of addresses) {
        let server: HttpServer | HttpsServer;
        if (tls !== undefined && tlsOptions !== undefined) {
          server = createHttpsServer({ ...tlsOptions, ...serverOptions(limits) }, handler);
          const check = afterHandshake(tls, log);
          // Before the HTTP server's own listener, so a refused connection's request is never parsed.
          if (check) server.prependListener('secureConnection', check);
          server.on('tlsClientError', (err) => log.debug({ err }, 'TLS handshake failed'));
        } else {
          server = createHttpServer(serverOptions(limits), handler);
        }
        connections.attach(server);
        servers.push(server);
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ host: address.host, port: address.port }, () => {
            server.off('error', reject);
            resolve();
          });
        });
      }
    } catch (err) {
      await listeners.close();
      throw err;
    }
    if (web !== undefined && tls !== undefined)
      listeners.watch(web, tls, options.certPollMs ?? DEFAULT_CERT_POLL_MS);
    return listeners;
  }

  /** host:port of every socket, as bound (port 0 resolved). */
  addresses(): string[] {
    return this.servers.flatMap((s) => {
      const a = s.address();
      if (a === null || typeof a === 'string') return [];
      return [a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`];
    });
  }

  private watch(web: WebConfig, tls: TlsServerConfig, intervalMs: number): void {
    const files = [tls.cert, tls.key, tls.clientCa].flatMap((s) =>
      s !== undefined && 'file' in s ? [s.file] : [],
    );
    const reload = (): void => {
      try {
        const options = secureContextOptions(tls, loadTlsMaterial(web));
        for (const s of this.servers) (s as HttpsServer).setSecureContext(options);
        this.log.info({ files }, 'TLS certificate reloaded');
      } catch (err) {
        this.log.warn({ err }, 'TLS files changed but do not load; serving the previous certificate');
      }
    };
    for (const file of new Set(files)) {
      watchFile(file, { interval: intervalMs, persistent: false }, (cur, prev) => {
        if (cur.mtimeMs !== prev.mtimeMs || cur.ino !== prev.ino || cur.size !== prev.size) reload();
      });
      this.watched.push(file);
    }
  }

  /** Stops accepting, closes idle keep-alive connections, stops watching certificate files. */
  async close(): Promise<void> {
    for (const file of this.watched.splice(0)) unwatchFile(file);
    await Promise.all(
      this.servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            if (!s.listening) return resolve();
            s.close(() => resolve());
            s.closeIdleConnections();
          }),
      ),
    );
  }
}
