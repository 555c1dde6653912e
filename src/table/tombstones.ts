/**
 * Flows a resync removed because its dump no longer had them, kept a few seconds for their
 * DESTROY. The kernel queues that event on the event socket when the flow dies, before the dump
 * that lacks it ends; but the dump arrives on another socket, so the commit can run before the
 * event is read. Without this, the flow's lifetime and last state would never be observed.
 * Bounded: beyond `limit` entries a removal is not kept (its observation is lost, as before).
 */

export interface Tombstone {
  /** The table's group id (family, protocol, state) the flow was in. */
  group: number;
  /** When it started and entered that state (seconds, clock); NaN when not known. */
  started: number;
  since: number;
}

interface Entry extends Tombstone {
  hash: number;
  /** When the resync removed it. */
  at: number;
}

export class Tombstones {
  /** By CTA_ID; the tuple hash must match too (ids collide: key.ts). Insertion order = age. */
  private readonly byId = new Map<number, Entry>();

  constructor(
    private readonly limit = 4096,
    private readonly ttlSeconds = 10,
  ) {}

  get size(): number {
    return this.byId.size;
  }

  add(id: number, hash: number, t: Tombstone, now: number): void {
    if (this.byId.size >= this.limit) return;
    this.byId.delete(id);
    this.byId.set(id, { ...t, hash, at: now });
  }

  /** The tombstone of (id, hash) if it is there and fresh; it is used up. */
  take(id: number, hash: number, now: number): Tombstone | undefined {
    const e = this.byId.get(id);
    if (e === undefined || e.hash !== hash) return undefined;
    this.byId.delete(id);
    return now - e.at <= this.ttlSeconds ? e : undefined;
  }

  /** Forgets what is older than the time-to-live. */
  expire(now: number): void {
    for (const [id, e] of this.byId) {
      if (now - e.at <= this.ttlSeconds) return;
      this.byId.delete(id);
    }
  }
}
