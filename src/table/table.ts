/**
 * The shadow table: every flow the kernel tracks, keyed by CTA_ID and tuple (key.ts), with just
 * what the metrics need. It counts flows per (family, protocol, state) as it goes, so reading the counts costs the
 * same for ten flows or a million. It knows nothing of sockets or Prometheus: events and dump
 * entries come in as decoded flows, observations go out through TableObserver.
 *
 * Resync protocol (start-up and after lost events): events keep being applied while a dump runs;
 * the dump is staged, and commitSync() merges it: a flow destroyed during the dump is not
 * resurrected, a flow an event touched during the dump keeps the event's (newer) view, and a flow
 * the kernel no longer has is removed.
 */
import type { EventType } from '../ctnetlink/event.js';
import type { Flow } from '../ctnetlink/flow.js';
import { type Family, familyName, protocolName, stateOf, statesOf } from './classify.js';
import { flowKey } from './key.js';

export interface StateGroup {
  readonly family: Family;
  readonly proto: number;
  readonly protocol: string;
  readonly state: string;
  /** Flows in the table in this state now. */
  count: number;
}

export interface TableObserver {
  /** A flow moved between two states (both known). */
  transition(from: StateGroup, to: StateGroup): void;
  /** A flow left `group` after `seconds` in it (only when the entry time is known). */
  stateLeft(group: StateGroup, seconds: number): void;
  /** A flow was destroyed after `seconds` (only when its start is known). */
  flowEnded(group: StateGroup, seconds: number): void;
}

interface Entry {
  group: StateGroup;
  /** Seconds (clock) when the flow started; NaN when it is not known exactly. */
  started: number;
  /** Seconds (clock) when the flow entered its current state; NaN when not known exactly. */
  stateSince: number;
  /** Known from a dump only, and possibly without event cache: see `silentFlows`. */
  silent: boolean;
}

interface Staged {
  family: number;
  proto: number;
  state: string | undefined;
  started: number;
}

interface Sync {
  staged: Map<number, Staged>;
  touched: Set<number>;
  destroyed: Set<number>;
}

export interface SyncResult {
  added: number;
  updated: number;
  removed: number;
}

/** Seconds since the epoch, fractional. */
export type Clock = () => number;

export const wallClock: Clock = () => Date.now() / 1000;

/** Kernel CTA_TIMESTAMP_START (ns, CLOCK_REALTIME) in seconds, or NaN. */
function kernelStart(flow: Flow): number {
  return flow.timestampStart === undefined ? Number.NaN : Number(flow.timestampStart) / 1e9;
}

export class ShadowTable {
  private readonly flows = new Map<number, Entry>();
  /** (family << 8 | proto) -> state name -> group */
  private readonly groupIndex = new Map<number, Map<string, StateGroup>>();
  private readonly allGroups: StateGroup[] = [];
  private sync: Sync | undefined;
  /** Messages that carried no CTA_ID or no original tuple and so could not be placed. */
  unkeyed = 0;
  /**
   * Flows added by a dump marked silent and not touched by any event since. The kernel attaches
   * the event cache to a flow when it is created, and with nf_conntrack_events=2 (the default
   * since Linux 6.0) only if someone listens then: flows older than our subscription never send
   * UPDATE or DESTROY. Only re-dumps can follow them.
   */
  silentFlows = 0;

  constructor(
    private readonly observer: TableObserver,
    private readonly clock: Clock = wallClock,
  ) {
    // Series that exist on every host are known before the first flow reaches them.
    for (const [family, protos] of [
      [2, [6, 17, 1]],
      [10, [6, 17, 58]],
    ] as const) {
      for (const proto of protos) for (const state of statesOf(proto)) this.group(family, proto, state);
    }
  }

  get size(): number {
    return this.flows.size;
  }

  get syncing(): boolean {
    return this.sync !== undefined;
  }

  /** Every (family, protocol, state) seen so far, counts included; never shrinks. */
  groups(): readonly StateGroup[] {
    return this.allGroups;
  }

  apply(type: EventType, flow: Flow): void {
    const id = flowKey(flow);
    const proto = flow.orig?.proto;
    if (id === undefined || proto === undefined) {
      this.unkeyed++;
      return;
    }
    const now = this.clock();
    if (this.sync) {
      this.sync.touched.add(id);
      if (type === 'destroy') this.sync.destroyed.add(id);
    }
    const entry = this.flows.get(id);
    const state = stateOf(flow, proto);

    if (entry?.silent) {
      entry.silent = false;
      this.silentFlows--;
    }
    if (type === 'destroy') {
      if (!entry) return;
      this.flows.delete(id);
      const last = state === undefined ? entry.group : this.moveTo(entry, flow.family, proto, state, now);
      last.count--;
      const inState = now - entry.stateSince;
      if (inState >= 0) this.observer.stateLeft(last, inState);
      const started = Number.isNaN(kernelStart(flow)) ? entry.started : kernelStart(flow);
      const stopped = flow.timestampStop === undefined ? now : Number(flow.timestampStop) / 1e9;
      const lifetime = stopped - started;
      if (lifetime >= 0) this.observer.flowEnded(last, lifetime);
      return;
    }

    if (entry) {
      if (state !== undefined) this.moveTo(entry, flow.family, proto, state, now);
      return;
    }
    if (state === undefined) {
      this.unkeyed++;
      return;
    }
    // A NEW event starts the flow now; an UPDATE for a flow we never saw (events lost before a
    // resync caught up) starts it at the kernel's timestamp if there is one, else unknown.
    const started =
      type === 'new' ? (Number.isNaN(kernelStart(flow)) ? now : kernelStart(flow)) : kernelStart(flow);
    this.insert(id, flow.family, proto, state, started, type === 'new' ? now : Number.NaN);
  }

  beginSync(): void {
    this.sync = { staged: new Map(), touched: new Set(), destroyed: new Set() };
  }

  /** A dump attempt restarts (the kernel interrupted it): forget what it staged. */
  restartSync(): void {
    this.sync?.staged.clear();
  }

  stage(flow: Flow): void {
    const id = flowKey(flow);
    const proto = flow.orig?.proto;
    if (!this.sync || id === undefined || proto === undefined) {
      this.unkeyed++;
      return;
    }
    this.sync.staged.set(id, {
      family: flow.family,
      proto,
      state: stateOf(flow, proto),
      started: kernelStart(flow),
    });
  }

  abortSync(): void {
    this.sync = undefined;
  }

  /** Merges the staged dump; with `silent`, flows it adds are counted in silentFlows. */
  commitSync(silent = false): SyncResult {
    const sync = this.sync;
    if (!sync) return { added: 0, updated: 0, removed: 0 };
    this.sync = undefined;
    const now = this.clock();
    const result: SyncResult = { added: 0, updated: 0, removed: 0 };
    for (const [id, s] of sync.staged) {
      if (sync.destroyed.has(id) || s.state === undefined) continue;
      const entry = this.flows.get(id);
      if (!entry) {
        // We do not know when it entered its current state, only (maybe) when it started.
        this.insert(id, s.family, s.proto, s.state, s.started, Number.NaN, silent);
        result.added++;
      } else if (!sync.touched.has(id) && entry.group.state !== s.state) {
        // The transitions themselves were lost with the events: neither the path nor the time
        // spent is known, so nothing is observed and the new state's start stays unknown.
        this.moveTo(entry, s.family, s.proto, s.state, now, false);
        entry.stateSince = Number.NaN;
        result.updated++;
      }
    }
    for (const [id, entry] of this.flows) {
      if (!sync.staged.has(id) && !sync.touched.has(id)) {
        this.flows.delete(id);
        entry.group.count--;
        if (entry.silent) this.silentFlows--;
        result.removed++;
      }
    }
    return result;
  }

  private insert(
    id: number,
    family: number,
    proto: number,
    state: string,
    started: number,
    stateSince: number,
    silent = false,
  ): void {
    const group = this.group(family, proto, state);
    group.count++;
    if (silent) this.silentFlows++;
    this.flows.set(id, { group, started, stateSince, silent });
  }

  /** Moves the entry to `state` if it differs, observing the state it leaves. */
  private moveTo(
    entry: Entry,
    family: number,
    proto: number,
    state: string,
    now: number,
    observe = true,
  ): StateGroup {
    const from = entry.group;
    if (from.state === state) return from;
    const to = this.group(family, proto, state);
    from.count--;
    to.count++;
    if (observe) {
      const inState = now - entry.stateSince; // NaN (unknown start) fails the check below
      if (inState >= 0) this.observer.stateLeft(from, inState);
      this.observer.transition(from, to);
    }
    entry.group = to;
    entry.stateSince = now;
    return to;
  }

  private group(family: number, proto: number, state: string): StateGroup {
    const key = ((family & 0xff) << 8) | proto;
    let byState = this.groupIndex.get(key);
    if (!byState) {
      byState = new Map();
      this.groupIndex.set(key, byState);
    }
    let g = byState.get(state);
    if (!g) {
      g = { family: familyName(family), proto, protocol: protocolName(proto), state, count: 0 };
      byState.set(state, g);
      this.allGroups.push(g);
    }
    return g;
  }
}
