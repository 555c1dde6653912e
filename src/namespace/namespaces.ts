/**
 * The followed namespaces, and the routing of the event socket's datagrams to them by namespace
 * id. In default mode it holds one unit, the exporter's own, and every datagram (id -1) is its.
 * Under --netns.all, discovery reports namespaces appearing and disappearing; each new one gets
 * an id (so the kernel sends us its events) and a unit; one with entries becomes active. At
 * every scan the idle ones are probed again, and an active one that is empty and had no event
 * since the last scan goes back to idle: empty namespaces cost a probe per scan, no series and no
 * work per scrape.
 *
 * It is also what the metrics read (metrics/scope.ts): the active units are the namespaces a
 * scrape shows.
 */
import type { Logger } from 'pino';
import { forEachDatagram } from '../netlink/framing.js';
import { type Batch, notFromKernel } from '../netlink/transport.js';
import type { SocketHealth } from '../sync/resubscribe.js';
import type { DiscoveryChange, NamespaceRef } from './discovery.js';
import type { NamespaceIdentity } from './identity.js';
import { NamespaceUnit, type UnitOptions } from './unit.js';

export interface NsidSource {
  ensure(fd: number): Promise<number>;
  get(fd: number): Promise<number>;
}

/** Naming of followed namespaces at every rescan (--netns.all): whose they are, their addresses. */
export interface Naming {
  /** Identities by namespace inode, from the processes a scan found in each. */
  resolve(pids: ReadonlyMap<string, readonly number[]>): Promise<Map<string, NamespaceIdentity>>;
  /** The interface addresses of the namespace open as `netns` (undefined: the exporter's own). */
  addresses(netns: number | undefined): Promise<string[]>;
}

export interface NamespacesOptions extends UnitOptions {
  log: Logger;
  /** Namespace ids (--netns.all); without, every datagram belongs to the exporter's own namespace. */
  nsids?: NsidSource | undefined;
  /** Identities and addresses (--netns.all); without, namespaces have neither. */
  naming?: Naming | undefined;
}

export class Namespaces {
  private readonly byInode = new Map<string, NamespaceUnit>();
  private readonly byNsid = new Map<number, NamespaceUnit>();
  private ownUnit: NamespaceUnit | undefined;
  /** Followed (under the cap) but not entered yet: retried at every scan until they go away. */
  private readonly unopened = new Map<string, NamespaceRef>();
  /** Namespaces seen but not followed because of --netns.max. */
  skipped = 0;
  /** Event datagrams from a namespace id we do not follow (skipped by the cap, or just gone). */
  eventsUnmatched = 0;
  /** Event messages the kernel dropped for the shared socket (all namespaces). */
  private eventsLost = 0;
  /** Reads the event socket's effective receive buffer. */
  receiveBuffer: () => number | undefined = () => undefined;
  /** The sockets every namespace shares: the event socket, and the namespace ids' (--netns.all). */
  sharedSockets: () => SocketHealth[] = () => [];
  /** Each address held by exactly one followed namespace, to that namespace (see name()). */
  private owners = new Map<string, NamespaceUnit>();

  constructor(private readonly options: NamespacesOptions) {}

  /** Every followed namespace, idle or active. */
  get followed(): readonly NamespaceUnit[] {
    return [...this.byInode.values()];
  }

  get active(): NamespaceUnit[] {
    return this.followed.filter((u) => u.table !== undefined);
  }

  shown(): Iterable<NamespaceUnit> {
    return this.active;
  }

  own(): NamespaceUnit | undefined {
    return this.ownUnit;
  }

  /** The event socket every namespace shares. */
  get events(): { lost: number; receiveBuffer: number | undefined; notFromKernel: number } {
    return { lost: this.eventsLost, receiveBuffer: this.receiveBuffer(), notFromKernel: notFromKernel() };
  }

  /**
   * The name of a socket that could not be reopened (the shared ones, every followed namespace's),
   * for /healthz (which names no namespace: it is unauthenticated); undefined when every socket
   * is open or still within its attempts.
   */
  lostSocket(): string | undefined {
    const all = [...this.sharedSockets(), ...[...this.byInode.values()].flatMap((u) => u.sockets)];
    return all.find((s) => s.lost)?.name;
  }

  /** Scrape-time kernel reads of the shown namespaces. */
  async read(): Promise<void> {
    await Promise.all(this.active.map((u) => u.read()));
  }

  /** Follows `ref`; throws if it cannot be entered (its sockets cannot be opened). */
  add(ref: NamespaceRef): NamespaceUnit {
    const unit = new NamespaceUnit(ref, this.options);
    this.byInode.set(ref.inode, unit);
    if (ref.own) this.ownUnit = unit;
    return unit;
  }

  /** Applies one discovery scan, then probes the idle namespaces and retires the empty ones. */
  async apply(change: DiscoveryChange): Promise<void> {
    const { log } = this.options;
    this.skipped = change.skipped;
    for (const ref of change.removed) {
      this.unopened.delete(ref.inode);
      const u = this.byInode.get(ref.inode);
      if (!u) continue;
      this.byInode.delete(ref.inode);
      if (this.byNsid.get(u.nsid) === u) this.byNsid.delete(u.nsid);
      u.close();
      log.info({ netns: ref.label }, 'network namespace gone');
    }
    const toOpen = [...change.added, ...this.unopened.values()];
    this.unopened.clear();
    for (const ref of toOpen) {
      try {
        this.add(ref);
      } catch (err) {
        // Gone before we could enter it, or not ours to enter: tried again at the next scan.
        this.unopened.set(ref.inode, ref);
        log.warn(
          { netns: ref.label, path: ref.foundAt, err },
          'cannot open a socket inside a network namespace (entering one needs CAP_SYS_ADMIN; it may also be gone)',
        );
        continue;
      }
      log.info({ netns: ref.label, path: ref.foundAt, own: ref.own }, 'following network namespace');
    }
    await Promise.all(this.followed.map((u) => this.rescan(u)));
    await this.name(change.pids ?? new Map());
  }

  /** The followed namespace that holds `address`, if exactly one does (as of the last rescan). */
  ownerOf(address: string): NamespaceUnit | undefined {
    return this.owners.get(address);
  }

  /**
   * Who each followed namespace belongs to and which addresses it holds, read afresh: a pod that
   * went away loses its name here. An address held by several namespaces (the same private
   * address in two containers) names none of them.
   */
  private async name(pids: ReadonlyMap<string, readonly number[]>): Promise<void> {
    const { naming, log } = this.options;
    if (!naming) return;
    const units = this.followed;
    const wanted = new Map<string, readonly number[]>();
    for (const u of units) if (!u.ref.own) wanted.set(u.ref.inode, pids.get(u.ref.inode) ?? []);
    let identities: Map<string, NamespaceIdentity>;
    try {
      identities = await naming.resolve(wanted);
    } catch (err) {
      log.warn({ err }, 'cannot read whose the network namespaces are');
      identities = new Map();
    }
    await Promise.all(
      units.map(async (u) => {
        u.identity = identities.get(u.ref.inode);
        try {
          u.addresses = await naming.addresses(u.ref.own ? undefined : u.ref.fd);
        } catch (err) {
          // Gone since the scan, or not ours to enter: its addresses name no one until it is.
          u.addresses = [];
          log.debug({ netns: u.ref.label, err }, 'cannot read the addresses of a network namespace');
        }
      }),
    );
    const owners = new Map<string, NamespaceUnit>();
    const shared = new Set<string>();
    for (const u of units) {
      for (const a of u.addresses) {
        if (owners.has(a)) shared.add(a);
        else owners.set(a, u);
      }
    }
    for (const a of shared) owners.delete(a);
    this.owners = owners;
  }

  /** Re-reads a followed namespace's id, then activates or retires it by what it holds now. */
  private async rescan(u: NamespaceUnit): Promise<void> {
    await this.refreshNsid(u);
    const events = u.eventsSinceScan;
    u.eventsSinceScan = 0;
    if (u.ref.own) {
      u.activate();
      return;
    }
    const entries = await u.probe();
    if (u.table === undefined) {
      if ((entries ?? 0) > 0) u.activate();
    } else if (entries === 0 && u.table.size === 0 && events === 0) {
      u.deactivate();
    }
  }

  /** Ids are re-read every scan: an id is freed when its namespace dies and may be reused. */
  private async refreshNsid(u: NamespaceUnit): Promise<void> {
    const { nsids } = this.options;
    if (!nsids) return;
    try {
      const id = u.ref.own ? await nsids.get(u.ref.fd) : await nsids.ensure(u.ref.fd);
      if (id !== u.nsid) {
        if (this.byNsid.get(u.nsid) === u) this.byNsid.delete(u.nsid);
        u.nsid = id;
        if (id >= 0) this.byNsid.set(id, u);
      }
    } catch (err) {
      this.options.log.warn(
        { netns: u.ref.label, err },
        'cannot assign a namespace id: its events will not arrive',
      );
    }
  }

  /** Datagrams from the event socket, each routed by the namespace id it carries. */
  onBatch(batch: Batch): void {
    const truncated = forEachDatagram(batch, (buf, start, end, nsid) => {
      const u = nsid < 0 ? this.ownUnit : this.byNsid.get(nsid);
      if (u) u.onDatagram(buf, start, end);
      else this.eventsUnmatched++;
    });
    // A truncated datagram's namespace is not worth trusting: counted with the exporter's own.
    const own = this.ownUnit?.counters;
    if (truncated > 0 && own) own.decodeErrors += truncated;
  }

  /** The socket lost events: which namespaces they were for is unknown, so all resync. */
  onOverrun(lost: number): void {
    this.eventsLost += lost;
    for (const u of this.active) u.onOverrun();
  }

  /** The socket was reopened: flows created meanwhile send no events either. */
  onResubscribed(): void {
    for (const u of this.active) u.onResubscribed();
  }

  close(): void {
    for (const u of this.byInode.values()) u.close();
    this.byInode.clear();
    this.byNsid.clear();
  }
}
