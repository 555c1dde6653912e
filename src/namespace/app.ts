/**
 * The exporter in --netns.all mode: one event socket in the exporter's namespace listening to
 * every namespace that has an id (NETLINK_LISTEN_ALL_NSID), discovery of the namespaces, and per
 * namespace the pipeline of pipeline.ts. The same HTTP server and registry as the default mode;
 * the per-namespace series replace their unlabelled versions (metrics/netns.ts).
 */
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { RunningExporter } from '../app.js';
import type { Config } from '../config.js';
import { serve } from '../http/serve.js';
import type { WebConfig } from '../http/web-config.js';
import type { ExporterMetrics } from '../metrics/metrics.js';
import { registerNamespaceMetrics } from '../metrics/netns.js';
import { ResilientEventSocket } from '../netlink/events.js';
import { NamespaceWatcher } from './discovery.js';
import { AllNamespaces } from './namespaces.js';
import { NsidClient } from './nsid.js';

async function readNumber(path: string): Promise<number | undefined> {
  try {
    const n = Number.parseInt(await readFile(path, 'utf8'), 10);
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

export async function startAllNamespaces(
  config: Config,
  web: WebConfig | undefined,
  log: Logger,
  metrics: ExporterMetrics,
  version: string,
): Promise<RunningExporter> {
  const nsids = NsidClient.open();
  const all = new AllNamespaces({
    observer: metrics.flows,
    log,
    nsids,
    resyncIntervalMs: config.resyncIntervalMs,
    silentSchedule: { minSeconds: config.silentResyncMs / 1000, cpuBudget: config.silentCpuBudget },
  });

  let events: ResilientEventSocket;
  try {
    events = new ResilientEventSocket(all, { rcvbuf: config.rcvbuf, listenAllNsid: true }, log);
  } catch (err) {
    nsids.close();
    throw err;
  }

  // nf_conntrack_max and the hash size are global: read once per scrape, from procfs.
  let limit: number | undefined;
  let buckets: number | undefined;
  registerNamespaceMetrics(metrics.registry, {
    active: () => all.active,
    followed: () => all.followed.length,
    skipped: () => all.skipped,
    eventsLost: () => all.eventsLost,
    eventsUnmatched: () => all.eventsUnmatched,
    limit: () => limit,
    buckets: () => buckets,
    rcvbuf: () => events.receiveBufferSize,
  });

  const watcher = new NamespaceWatcher({
    max: config.netnsMax,
    intervalMs: config.netnsScanMs,
    onChange: (change) => all.apply(change),
    onError: (err) => log.error({ err }, 'network namespace scan failed'),
  });
  let ready = false;

  const served = await serve(config, web, log, {
    version,
    render: async () => {
      [limit, buckets] = await Promise.all([
        readNumber('/proc/sys/net/netfilter/nf_conntrack_max'),
        readNumber('/proc/sys/net/netfilter/nf_conntrack_buckets'),
        all.read(),
      ]);
      return metrics.render();
    },
    contentType: metrics.contentType,
    isReady: () => ready,
    onClose: () => {
      watcher.stop();
      events.close();
      all.close();
      nsids.close();
    },
  });
  // Ready once the first scan is applied and every namespace active then is seeded.
  const seeded = watcher
    .start()
    // A namespace that dies during its first dump must not stop the exporter; its own must.
    .then(() => Promise.all(all.active.map((p) => (p.ref.own ? p.seeded : p.seeded.catch(() => undefined)))))
    .then(() => {
      ready = true;
    });
  return {
    ...served,
    tls: web?.tls !== undefined,
    get collector() {
      const own = all.ownPipeline?.collector;
      if (!own) throw new Error("the exporter's own namespace is not followed yet");
      return own;
    },
    seeded,
  };
}
