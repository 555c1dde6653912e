/**
 * Builds the running exporter from a Config: namespaces (one, or discovery of all) -> metrics ->
 * HTTP. Order matters: the event socket is open before the first dump starts, so no event falls
 * between them, and the server listens before the dump so /healthz answers during a long one.
 */
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { serve } from './http/serve.js';
import { loadWebConfig } from './http/web-config-files.js';
import { eventModeNotice } from './kernel/event-mode.js';
import { NamespaceProcFiles, OwnProcFiles, readSysctl } from './kernel/proc.js';
import { SlabReader } from './kernel/slab.js';
import { memoryBudget, tableReserve } from './memory/budget.js';
import { FlowMetrics } from './metrics/flows.js';
import { ExporterMetrics } from './metrics/metrics.js';
import { readAddresses } from './namespace/addresses.js';
import { NamespaceWatcher } from './namespace/discovery.js';
import { IdentityResolver } from './namespace/identity.js';
import { Namespaces } from './namespace/namespaces.js';
import { ownNamespace } from './namespace/nsfs.js';
import { NsidClient } from './namespace/nsid.js';
import { EventSocket } from './netlink/events.js';
import { ResilientEventSocket } from './sync/resubscribe.js';

export function exporterVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

export interface RunningExporter {
  server: FastifyInstance;
  /** host:port of every listening socket. */
  addresses: string[];
  /** Whether the sockets speak TLS (--web.config.file with tls_server_config). */
  tls: boolean;
  /** Resolves when the first dump of every namespace followed at start has been merged (readiness). */
  seeded: Promise<void>;
  close(): Promise<void>;
}

export async function startExporter(config: Config, log: Logger): Promise<RunningExporter> {
  // Read and checked before any socket opens: a bad web config is a config error (exit 2).
  const web = config.webConfigFile === undefined ? undefined : loadWebConfig(config.webConfigFile);
  const version = exporterVersion();
  const ownProc = new OwnProcFiles();
  const [eventMode, timestamps, conntrackMax] = await Promise.all(
    ['nf_conntrack_events', 'nf_conntrack_timestamp', 'nf_conntrack_max'].map((n) =>
      readSysctl(ownProc, n).catch(() => undefined),
    ),
  );
  const flows = new FlowMetrics(timestamps === 1);
  // Attribution and NAT tracking (on whatever --top.k says) are what the budget degrades: their
  // per-key arrays grow with distinct addresses.
  const budget = memoryBudget(config.memoryLimit, log);
  const nsids = config.netnsAll ? NsidClient.open(log) : undefined;
  const identities = new IdentityResolver();
  const namespaces = new Namespaces({
    observer: flows,
    log,
    nsids,
    naming: config.netnsAll
      ? { resolve: (pids) => identities.resolve(pids), addresses: readAddresses }
      : undefined,
    labelled: config.netnsAll,
    resyncIntervalMs: config.resyncIntervalMs,
    silentSchedule: { minSeconds: config.silentResyncMs / 1000, cpuBudget: config.silentCpuBudget },
    attribution: config,
    growth: budget,
    openProc: (ref) => (ref.own ? ownProc : new NamespaceProcFiles(ref.fd)),
    slab: new SlabReader(),
  });
  if (budget) {
    // The table comes first: what it still takes until full (the largest, under --netns.all) is
    // reserved. nf_conntrack_max as the last scrape read it, else as at start.
    budget.reserve = () =>
      tableReserve(
        namespaces.own()?.kernel?.limit ?? conntrackMax,
        Math.max(0, ...namespaces.active.map((u) => u.table?.size ?? 0)),
      );
  }
  const watcher = config.netnsAll
    ? new NamespaceWatcher({
        max: config.netnsMax,
        intervalMs: config.netnsScanMs,
        onChange: (change) => namespaces.apply(change),
        onError: (err) => log.error({ err }, 'network namespace scan failed'),
      })
    : undefined;

  let events: ResilientEventSocket;
  try {
    if (!watcher) namespaces.add(ownNamespace());
    events = new ResilientEventSocket(
      namespaces,
      (handlers) => new EventSocket(handlers, { rcvbuf: config.rcvbuf, listenAllNsid: config.netnsAll }),
      log,
    );
  } catch (err) {
    namespaces.close();
    nsids?.close();
    throw err;
  }
  namespaces.receiveBuffer = () => events.receiveBufferSize;
  namespaces.sharedSockets = () => (nsids?.health ? [events.health, nsids.health] : [events.health]);
  // SO_RCVBUF reports twice what was granted; less than asked means net.core.rmem_max capped it
  // (SO_RCVBUFFORCE was refused: no CAP_NET_ADMIN over this namespace).
  const granted = (events.receiveBufferSize ?? 0) / 2;
  if (granted < config.rcvbuf) {
    log.warn(
      { requested: config.rcvbuf, granted },
      'event socket receive buffer capped by net.core.rmem_max; raise it (sysctl -w net.core.rmem_max=...) to survive bigger event bursts',
    );
  }

  const metrics = new ExporterMetrics({
    version,
    scope: namespaces,
    flows,
    processMetrics: !config.webDisableExporterMetrics,
    attribution:
      config.topK > 0
        ? {
            k: config.topK,
            sourcePrefixV4: config.topSourcePrefixV4,
            sourcePrefixV6: config.topSourcePrefixV6,
            budget,
            ownerOf: config.netnsAll
              ? (address: string) => {
                  const u = namespaces.ownerOf(address);
                  return u && { netns: u.ref.label, ...u.identity };
                }
              : undefined,
          }
        : undefined,
    nat: { k: config.topK, portRange: config.natPortRange },
    discovery: config.netnsAll
      ? {
          followed: () => namespaces.followed.length,
          skipped: () => namespaces.skipped,
          eventsUnmatched: () => namespaces.eventsUnmatched,
          identities: () =>
            namespaces.active.map((u) => ({
              netns: u.ref.label,
              inode: u.ref.inode,
              own: u.ref.own,
              ...u.identity,
            })),
        }
      : undefined,
  });
  let ready = false;
  const served = await serve(config, web, log, {
    version,
    render: (format) => metrics.render(format),
    isReady: () => ready,
    unhealthy: () => namespaces.lostSocket(),
    onClose: () => {
      budget?.stop();
      watcher?.stop();
      events.close();
      namespaces.close();
      nsids?.close();
    },
  });
  budget?.start();
  const notice = eventModeNotice(eventMode);
  log[notice.level]({ nf_conntrack_events: notice.mode }, notice.msg);
  // Ready once every namespace followed at start is seeded. The exporter's own namespace must
  // seed (its failure stops start-up); one that dies during its first dump must not.
  const first = watcher ? watcher.start() : namespaces.own()!.activate();
  const seeded = Promise.resolve(first)
    .then(() =>
      Promise.all(namespaces.active.map((u) => (u.ref.own ? u.seeded : u.seeded.catch(() => undefined)))),
    )
    .then(() => {
      ready = true;
    });
  return { ...served, tls: web?.tls !== undefined, seeded };
}
