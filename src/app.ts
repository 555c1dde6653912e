/**
 * Builds the running exporter from a Config: sockets -> collector -> shadow table -> metrics ->
 * HTTP. Order matters: the event socket is open before the first dump starts, so no event falls
 * between them, and the server listens before the dump so /healthz answers during a long one.
 */
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { attributionFor } from './attribution/attribution.js';
import type { Config } from './config.js';
import { CtnetlinkClient } from './ctnetlink/client.js';
import { ConntrackError } from './errors.js';
import { serve } from './http/serve.js';
import { loadWebConfig } from './http/web-config.js';
import { eventModeNotice, readEventMode } from './kernel/event-mode.js';
import { KernelStatsReader } from './kernel/stats.js';
import { registerAttributionMetrics } from './metrics/attribution.js';
import { ExporterMetrics } from './metrics/metrics.js';
import { startAllNamespaces } from './namespace/app.js';
import { ResilientEventSocket } from './netlink/events.js';
import { RequestSocket } from './netlink/request.js';
import { Collector } from './sync/collector.js';
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
  /** host:port of every listening socket. */
  addresses: string[];
  /** Whether the sockets speak TLS (--web.config.file with tls_server_config). */
  tls: boolean;
  collector: Collector;
  /** Resolves when the first dump has been merged (readiness). */
  seeded: Promise<void>;
  close(): Promise<void>;
}

export async function startExporter(config: Config, log: Logger): Promise<RunningExporter> {
  // Read and checked before any socket opens: a bad web config is a config error (exit 2).
  const web = config.webConfigFile === undefined ? undefined : loadWebConfig(config.webConfigFile);
  const version = exporterVersion();
  const metrics = new ExporterMetrics({ version, kernelTimestamps: kernelTimestampsOn() });
  if (config.netnsAll) return startAllNamespaces(config, web, log, metrics, version);
  // --top.k=0: no extension at all, so attribution costs nothing per flow.
  const attribution = attributionFor(config);
  if (attribution) registerAttributionMetrics(metrics.registry, attribution);
  const table = new ShadowTable(metrics.flows, undefined, attribution);
  // Dumps and scrapes get a socket each, so a long dump never delays a scrape.
  const dumpSocket = RequestSocket.open(30_000);
  let statsSocket: RequestSocket;
  try {
    statsSocket = RequestSocket.open(5_000);
  } catch (err) {
    dumpSocket.close();
    throw err;
  }
  const statsClient = new CtnetlinkClient(statsSocket);
  const collector = new Collector({
    table,
    dumper: new CtnetlinkClient(dumpSocket),
    log,
    silentSchedule: { minSeconds: config.silentResyncMs / 1000, cpuBudget: config.silentCpuBudget },
    kernelCount: async () => {
      const n = (await statsClient.globalStats()).entries;
      if (n === undefined)
        throw new ConntrackError('CT_ERR_TRUNCATED', 'CT_GET_STATS reply carried no entry count');
      return n;
    },
  });

  let events: ResilientEventSocket;
  try {
    events = new ResilientEventSocket(collector, { rcvbuf: config.rcvbuf }, log);
  } catch (err) {
    dumpSocket.close();
    statsSocket.close();
    throw err;
  }
  // SO_RCVBUF reports twice what was granted; less than asked means net.core.rmem_max capped it
  // (SO_RCVBUFFORCE was refused: no CAP_NET_ADMIN over this namespace).
  const granted = (events.receiveBufferSize ?? 0) / 2;
  if (granted < config.rcvbuf) {
    log.warn(
      { requested: config.rcvbuf, granted },
      'event socket receive buffer capped by net.core.rmem_max; raise it (sysctl -w net.core.rmem_max=...) to survive bigger event bursts',
    );
  }

  const reader = new KernelStatsReader(statsClient);
  metrics.attach({
    table,
    counters: collector.counters,
    readKernel: async () => {
      const k = await reader.read();
      if (k.entries !== undefined) collector.observeKernelCount(k.entries);
      return k;
    },
    rcvbuf: () => events.receiveBufferSize,
  });

  const served = await serve(config, web, log, {
    version,
    render: () => metrics.render(),
    contentType: metrics.contentType,
    isReady: () => collector.ready,
    onClose: () => {
      collector.stop();
      events.close();
      dumpSocket.close();
      statsSocket.close();
    },
  });
  const notice = eventModeNotice(readEventMode());
  log[notice.level]({ nf_conntrack_events: notice.mode }, notice.msg);
  const seeded = collector.start(config.resyncIntervalMs);
  return { ...served, tls: web?.tls !== undefined, collector, seeded };
}
