/**
 * Limits applied to the real listening sockets (listeners.ts), plain and TLS alike, so a client
 * cannot hold the exporter's sockets or memory for long by being slow or numerous. Node's
 * defaults allow 60 s for the headers, 300 s for a request and 120 s for a TLS handshake, and
 * check the first two only every 30 s: a client sending half a header kept its socket 87.6 s.
 */
import type { Server as HttpServer, ServerOptions } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { clientKey } from './client-address.js';

export interface HttpLimits {
  /**
   * A connection must have sent a whole request head this long after it opened (or after the
   * previous response): else 408 and closed. With TLS, the handshake must be done within it too.
   */
  readonly headersTimeoutMs: number;
  /** The whole request, body included (no route here takes a body). */
  readonly requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this (Node adds a second of slack). */
  readonly keepAliveTimeoutMs: number;
  /**
   * A connection with no traffic either way for this long is closed: a client that stops reading
   * its response. Longer than any scrape takes to render.
   */
  readonly socketTimeoutMs: number;
  /** Open connections over all listening sockets; more are closed as they arrive. */
  readonly maxConnections: number;
  /** Open connections from one client (an IPv4 address or IPv6 /64). */
  readonly maxConnectionsPerClient: number;
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = Object.freeze({
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  // Above the common 15 s scrape interval, so Prometheus keeps its connection between scrapes.
  keepAliveTimeoutMs: 20_000,
  socketTimeoutMs: 60_000,
  maxConnections: 512,
  maxConnectionsPerClient: 64,
});

/** Fills in the defaults; a request timeout shorter than the headers timeout is raised to it. */
export function httpLimits(over: Partial<HttpLimits> = {}): HttpLimits {
  const l = { ...DEFAULT_HTTP_LIMITS, ...over };
  return Object.freeze({ ...l, requestTimeoutMs: Math.max(l.requestTimeoutMs, l.headersTimeoutMs) });
}

/** The options of http(s).createServer that enforce the timeouts. */
export function serverOptions(l: HttpLimits): ServerOptions & { handshakeTimeout: number } {
  return {
    headersTimeout: l.headersTimeoutMs,
    requestTimeout: l.requestTimeoutMs,
    keepAliveTimeout: l.keepAliveTimeoutMs,
    // How often Node looks for connections past the headers or request timeout (default 30 s).
    connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(l.headersTimeoutMs / 4))),
    handshakeTimeout: l.headersTimeoutMs,
  };
}

/** Counts open connections over all listening sockets and closes those over the limits. */
export class ConnectionLimiter {
  private total = 0;
  private readonly byClient = new Map<string, number>();
  /** Connections closed at once for being over a limit. */
  refused = 0;

  constructor(private readonly limits: HttpLimits) {}

  /** Connections open now. */
  get open(): number {
    return this.total;
  }

  /** Applies the limits to a listening server, before its own connection handler runs. */
  attach(server: HttpServer | HttpsServer): void {
    server.setTimeout(this.limits.socketTimeoutMs);
    server.prependListener('connection', (socket: Socket) => this.admit(socket));
  }

  private admit(socket: Socket): void {
    const client = clientKey(socket.remoteAddress);
    const fromClient = this.byClient.get(client) ?? 0;
    if (this.total >= this.limits.maxConnections || fromClient >= this.limits.maxConnectionsPerClient) {
      this.refused++;
      socket.destroy();
      return;
    }
    this.total++;
    this.byClient.set(client, fromClient + 1);
    socket.once('close', () => {
      this.total--;
      const n = (this.byClient.get(client) ?? 1) - 1;
      if (n > 0) this.byClient.set(client, n);
      else this.byClient.delete(client);
    });
  }
}
