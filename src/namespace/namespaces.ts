/**
 * Every followed namespace, and the routing of the shared event socket's datagrams to them by
 * namespace id. Discovery reports namespaces appearing and disappearing; each new one gets an id
 * (so the kernel sends us its events), a request socket inside it and a probe of its entry count;
 * one with entries becomes active (a shadow table seeded by a dump). At every scan the idle ones
 * are probed again, and an active one that is empty and had no event since the last scan goes
 * back to idle: empty namespaces cost a probe per scan, no series and no work per scrape.
 */
import type { Logger } from 'pino';
import { forEachDatagram } from '../netlink/framing.js';
import type { Batch } from '../netlink/transport.js';
import type { DiscoveryChange, NamespaceRef } from './discovery.js';
import { NamespacePipeline, type PipelineOptions } from './pipeline.js';

export interface NsidSource {
  ensure(path: string): Promise<number>;
  get(path: string): Promise<number>;
}

export interface NamespacesOptions extends PipelineOptions {
  log: Logger;
  nsids: NsidSource;
}

export class AllNamespaces {
  private readonly byInode = new Map<string, NamespacePipeline>();
  private readonly byNsid = new Map<number, NamespacePipeline>();
  private own: NamespacePipeline | undefined;
  /** Followed (under the cap) but not entered yet: retried at every scan until they go away. */
  private readonly unopened = new Map<string, NamespaceRef>();
  /** Namespaces seen but not followed because of --netns.max. */
  skipped = 0;
  /** Event messages the kernel dropped for the shared socket (all namespaces). */
  eventsLost = 0;
  /** Event datagrams from a namespace id we do not follow (skipped by the cap, or just gone). */
  eventsUnmatched = 0;

  constructor(private readonly options: NamespacesOptions) {}

  /** Every followed namespace, idle or active. */
  get followed(): readonly NamespacePipeline[] {
    return [...this.byInode.values()];
  }

  get active(): NamespacePipeline[] {
    return this.followed.filter((p) => p.table !== undefined);
  }

  /** The exporter's own namespace. */
  get ownPipeline(): NamespacePipeline | undefined {
    return this.own;
  }

  /** Applies one discovery scan, then probes the idle namespaces and retires the empty ones. */
  async apply(change: DiscoveryChange): Promise<void> {
    const { log } = this.options;
    this.skipped = change.skipped;
    for (const ref of change.removed) {
      const p = this.byInode.get(ref.inode);
      if (!p) continue;
      this.byInode.delete(ref.inode);
      if (this.byNsid.get(p.nsid) === p) this.byNsid.delete(p.nsid);
      p.close();
      log.info({ netns: ref.label }, 'network namespace gone');
    }
    for (const ref of change.removed) this.unopened.delete(ref.inode);
    const toOpen = [...change.added, ...this.unopened.values()];
    this.unopened.clear();
    for (const ref of toOpen) {
      let p: NamespacePipeline;
      try {
        p = new NamespacePipeline(ref, this.options);
      } catch (err) {
        // Gone before we could enter it, or not ours to enter: tried again at the next scan.
        this.unopened.set(ref.inode, ref);
        log.warn(
          { netns: ref.label, path: ref.path, err },
          'cannot open a socket inside a network namespace (entering one needs CAP_SYS_ADMIN; it may also be gone)',
        );
        continue;
      }
      this.byInode.set(ref.inode, p);
      if (ref.own) this.own = p;
      log.info({ netns: ref.label, path: ref.path, own: ref.own }, 'following network namespace');
    }
    await Promise.all(this.followed.map((p) => this.rescan(p)));
  }

  /** Re-reads a followed namespace's id, then activates or retires it by what it holds now. */
  private async rescan(p: NamespacePipeline): Promise<void> {
    await this.refreshNsid(p);
    const events = p.eventsSinceScan;
    p.eventsSinceScan = 0;
    if (p.ref.own) {
      p.activate();
      return;
    }
    const entries = await p.probe();
    if (p.table === undefined) {
      if ((entries ?? 0) > 0) p.activate();
    } else if (entries === 0 && p.table.size === 0 && events === 0) {
      p.deactivate();
    }
  }

  /** Ids are re-read every scan: an id is freed when its namespace dies and may be reused. */
  private async refreshNsid(p: NamespacePipeline): Promise<void> {
    try {
      const { nsids } = this.options;
      const id = p.ref.own ? await nsids.get(p.ref.path) : await nsids.ensure(p.ref.path);
      if (id !== p.nsid) {
        if (this.byNsid.get(p.nsid) === p) this.byNsid.delete(p.nsid);
        p.nsid = id;
        if (id >= 0) this.byNsid.set(id, p);
      }
    } catch (err) {
      this.options.log.warn(
        { netns: p.ref.label, err },
        'cannot assign a namespace id: its events will not arrive',
      );
    }
  }

  /** Datagrams from the shared event socket, each routed by the namespace id it carries. */
  onBatch(batch: Batch): void {
    const truncated = forEachDatagram(batch, (buf, start, end, nsid) => {
      const p = nsid < 0 ? this.own : this.byNsid.get(nsid);
      if (!p) {
        this.eventsUnmatched++;
        return;
      }
      p.eventsSinceScan++;
      // Its first flow: activation starts the seeding dump synchronously, so the table is already
      // syncing and takes the event like any event that arrives during a dump.
      if (!p.collector) p.activate();
      p.collector?.onDatagram(buf, start, end);
    });
    // A truncated datagram's namespace is not worth trusting: counted with the exporter's own.
    const own = this.own?.collector;
    if (truncated > 0 && own) own.counters.decodeErrors += truncated;
  }

  /** The shared socket lost events: which namespaces they were for is unknown, so all resync. */
  onOverrun(lost: number): void {
    this.eventsLost += lost;
    for (const p of this.active) p.collector?.onOverrun(0);
  }

  /** The shared socket was reopened: flows created meanwhile send no events either. */
  onResubscribed(): void {
    for (const p of this.active) p.collector?.onResubscribed();
  }

  /** Scrape-time kernel reads of the active namespaces. */
  async read(): Promise<void> {
    await Promise.all(this.active.map((p) => p.read()));
  }

  close(): void {
    for (const p of this.byInode.values()) p.close();
    this.byInode.clear();
    this.byNsid.clear();
  }
}
