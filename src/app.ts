/**
 * Builds the running exporter from a Config: sockets -> collector -> shadow table -> metrics ->
 * HTTP. Order matters: the event socket is open before the first dump starts, so no event falls
 * between them, and the server listens before the dump so /healthz answers during a long one.
 */
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { Collector } from './collector.js';
import type { Config } from './config.js';
import { CtnetlinkClient } from './ctnetlink/client.js';
import { buildServer } from './http/server.js';
import { KernelStatsReader } from './kernel/stats.js';
import { ExporterMetrics } from './metrics/metrics.js';
import { EventSocket, RequestSocket } from './netlink/socket.js';
import { startAllNamespaces } from './netns/app.js';
import { ShadowTable } from './table/table.js';

export function exporterVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

function kernelTimestampsOn(): boolean {
  try {
    return readFileSync('/proc/sys/net/netfilter/nf_conntrack_timestamp', 'utf8').trim() === '1';
  } catch {
    return false;
  }
}

export interface RunningExporter {
  server: FastifyInstance;
  collector: Collector;
  /** Resolves when the first dump has been merged (readiness). */
  seeded: Promise<void>;
  close(): Promise<void>;
}

export async function startExporter(config: Config, log: Logger): Promise<RunningExporter> {
  const version = exporterVersion();
  const metrics = new ExporterMetrics({ version, kernelTimestamps: kernelTimestampsOn() });
  if (config.netnsAll) return startAllNamespaces(config, log, metrics, version);
  const table = new ShadowTable(metrics);
  // Dumps and scrapes get a socket each, so a long dump never delays a scrape.
  const dumpSocket = RequestSocket.open(30_000);
  let statsSocket: RequestSocket;
  try {
    statsSocket = RequestSocket.open(5_000);
  } catch (err) {
    dumpSocket.close();
    throw err;
  }
  const collector = new Collector(
    table,
    new CtnetlinkClient(dumpSocket),
    log,
    undefined,
    undefined,
    config.preexistingResyncMs,
  );

  let events: EventSocket | undefined;
  let closing = false;
  const openEvents = (): EventSocket =>
    new EventSocket(
      {
        onBatch: (batch) => collector.onBatch(batch),
        onOverrun: (lost) => collector.onOverrun(lost),
        onError: (err) => {
          log.error({ err }, 'event socket failed; reopening it and resynchronising');
          events?.close();
          setTimeout(() => {
            if (closing) return;
            events = openEvents();
            collector.onResubscribed();
          }, 1000).unref();
        },
      },
      { rcvbuf: config.rcvbuf },
    );
  try {
    events = openEvents();
  } catch (err) {
    dumpSocket.close();
    statsSocket.close();
    throw err;
  }
  // SO_RCVBUF reports twice what was granted; less than asked means net.core.rmem_max capped it
  // (SO_RCVBUFFORCE was refused: no CAP_NET_ADMIN over this namespace).
  const granted = events.receiveBufferSize / 2;
  if (granted < config.rcvbuf) {
    log.warn(
      { requested: config.rcvbuf, granted },
      'event socket receive buffer capped by net.core.rmem_max; raise it (sysctl -w net.core.rmem_max=...) to survive bigger event bursts',
    );
  }

  const reader = new KernelStatsReader(new CtnetlinkClient(statsSocket));
  metrics.attach({
    table,
    counters: collector.counters,
    readKernel: () => reader.read(),
    rcvbuf: () => events?.receiveBufferSize,
  });

  const server = buildServer({
    telemetryPath: config.telemetryPath,
    version,
    render: () => metrics.render(),
    contentType: metrics.contentType,
    isReady: () => collector.ready,
    // Request logs (info) only when debugging: a scrape every 15 s is not news.
    logger: log.child({ component: 'http' }, { level: log.level === 'debug' ? 'debug' : 'warn' }),
    onClose: () => {
      closing = true;
      collector.stop();
      events?.close();
      dumpSocket.close();
      statsSocket.close();
    },
  });
  try {
    await server.listen({ host: config.listenHost, port: config.listenPort });
  } catch (err) {
    await server.close();
    throw err;
  }
  const seeded = collector.start(config.resyncIntervalMs);
  return { server, collector, seeded, close: () => server.close() };
}
