/**
 * The shadow table: every flow the kernel tracks, with just what the metrics need, in typed
 * arrays. Rows are dense (a removed row is filled by the last one), an open-addressing index maps
 * a flow's key (CTA_ID plus a hash of its original tuple: key.ts says why) to its row, so a million
 * flows cost a few tens of bytes each and leave the garbage collector nothing to walk. Counts per
 * (family, protocol, state) are kept as flows move, so reading them costs the same for ten flows
 * or a million. It knows nothing of sockets or Prometheus: events and dump entries come in as
 * FlowSummary, observations go out through TableObserver.
 *
 * Resync (start-up and after lost events): events keep being applied while a dump runs, and dump
 * entries are merged as they arrive. A flow destroyed during the dump stays as a dead row until the
 * commit, so a dump entry read before its death cannot resurrect it; a flow an event touched during
 * the dump keeps the event's (newer) view; at the commit, flows the dump did not see and no event
 * touched are gone from the kernel and are removed. Events and dumps come on two sockets, so a dump
 * can be applied before events the kernel sent earlier: a NEW for a flow the dump already added
 * still gives it its start, and a DESTROY for a flow the commit removed is still observed
 * (tombstones.ts).
 */
import type { EventType } from '../ctnetlink/event.js';
import type { FlowSummary } from '../ctnetlink/summary.js';
import {
  ALWAYS_EXPORTED,
  type Family,
  familyName,
  groupKey,
  protocolName,
  stateCode,
  stateLabel,
  statesOf,
} from './classify.js';
import { KeyIndex } from './key.js';
import { Tombstones } from './tombstones.js';

/**
 * A time the table does not know (NaN, as FlowSummary's absent stamps): a duration from it is NaN,
 * which fails every `>= 0` check, so no lifetime or state duration is observed from it.
 */
const UNKNOWN_TIME = Number.NaN;

export interface StateGroup {
  readonly family: Family;
  readonly proto: number;
  readonly protocol: string;
  readonly state: string;
  /**
   * (protocol, state) as one number, the same in every table: observers key their series by it,
   * so a table that is replaced (a namespace that goes idle and active again) adds no entries.
   */
  readonly labelKey: number;
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

/**
 * Per-flow data kept beside the table's own columns (attribution, for example), indexed by the
 * table's row numbers: rows stay dense, so the extension is told when one moves.
 */
export interface RowExtension {
  /** Rows will be numbered below `capacity`. */
  resize(capacity: number): void;
  /**
   * A flow starts being tracked at `row`, from an event or a dump entry; `created` when a NEW
   * event announced it (a flow that starts now, not one found by a dump).
   */
  added(row: number, s: FlowSummary, created: boolean): void;
  /** An UPDATE event or a dump entry for the flow at `row` (its mark may have changed). */
  updated(row: number, s: FlowSummary): void;
  /** The flow at `row` is no longer tracked (destroyed, or gone from the kernel's dump). */
  removed(row: number): void;
  /** The flow at `from` now lives at `to`. */
  moved(from: number, to: number): void;
}

export interface SyncResult {
  added: number;
  updated: number;
  removed: number;
}

/** Seconds since the epoch, fractional. */
export type Clock = () => number;

export const wallClock: Clock = () => Date.now() / 1000;

// Row flags.
/** Known from a dump only, possibly without the kernel's event cache: see `silentFlows`. */
const SILENT = 1;
/** An event touched the flow during the current resync. */
const TOUCHED = 2;
/** Destroyed during the current resync; removed at its end. */
const DEAD = 4;

const MIN_ROWS = 1024;

export class ShadowTable {
  // Columns, one entry per row.
  /** Each row's key, and the index from keys to rows. */
  private readonly keys = new KeyIndex(MIN_ROWS);
  private group = new Uint16Array(MIN_ROWS);
  private flags = new Uint8Array(MIN_ROWS);
  /** The dump attempt that last saw the row during a resync (0: none). */
  private seen = new Uint8Array(MIN_ROWS);
  /** Seconds (clock) when the flow started; UNKNOWN_TIME when not known exactly. */
  private started = new Float64Array(MIN_ROWS);
  /** Seconds (clock) when the flow entered its current state; UNKNOWN_TIME when not known exactly. */
  private since = new Float64Array(MIN_ROWS);
  private rows = 0;

  /** groupKey -> index in allGroups; a few dozen entries, not a 2^17 array per table (per namespace). */
  private readonly groupOf = new Map<number, number>();
  private readonly allGroups: StateGroup[] = [];

  private live = 0;
  private syncOn = false;
  private syncSilent = false;
  private attempt = 0;
  private pending: SyncResult = { added: 0, updated: 0, removed: 0 };
  private readonly tombstones = new Tombstones();
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
    private readonly extension?: RowExtension,
  ) {
    extension?.resize(MIN_ROWS);
    // Series that exist on every host are known before the first flow reaches them.
    for (const [family, protos] of ALWAYS_EXPORTED) {
      for (const proto of protos) for (const code of statesOf(proto)) this.groupId(family, proto, code);
    }
  }

  /** Flows in the table. */
  get size(): number {
    return this.live;
  }

  /** A resync is under way (between beginSync and commitSync or abortSync). */
  get syncing(): boolean {
    return this.syncOn;
  }

  /** Every (family, protocol, state) seen so far, counts included; never shrinks. */
  groups(): readonly StateGroup[] {
    return this.allGroups;
  }

  /** Applies one event; summarizeFlow guarantees its CTA_ID and original tuple. */
  apply(type: EventType, s: FlowSummary): void {
    // The kernel's stamp says when the event happened; our clock only when its batch was read.
    const now = Number.isNaN(s.eventTime) ? this.clock() : s.eventTime;
    const code = stateCode(s);
    let row = this.keys.find(s.id, s.tupleHash);
    if (row >= 0 && this.flags[row]! & DEAD) {
      if (type === 'destroy') return;
      // The same key again after a DESTROY within one resync: a new flow in the old row.
      this.removeRow(row);
      row = -1;
    }
    if (row >= 0) this.applyToRow(row, type, s, code, now);
    else this.applyToAbsent(type, s, code, now);
  }

  /** An event for a flow the table holds (in `row`). */
  private applyToRow(row: number, type: EventType, s: FlowSummary, code: number, now: number): void {
    const f = this.flags[row]!;
    if (f & SILENT) this.silentFlows--;
    this.flags[row] = (f & ~SILENT) | (this.syncOn ? TOUCHED : 0);
    if (type === 'destroy') {
      this.destroy(row, s, code, now);
      return;
    }
    if (code >= 0) this.moveTo(row, this.groupId(s.family, s.proto, code), now, true);
    // A dump added the flow before its NEW was read: the NEW says when it started.
    if (type === 'new') {
      if (Number.isNaN(this.started[row]!)) this.started[row] = Number.isNaN(s.start) ? now : s.start;
      if (Number.isNaN(this.since[row]!)) this.since[row] = now;
    }
    this.extension?.updated(row, s);
  }

  /** An event for a flow the table does not hold. */
  private applyToAbsent(type: EventType, s: FlowSummary, code: number, now: number): void {
    if (type === 'destroy') {
      this.destroyedAfterCommit(s, code, now);
      // The dump may still read this flow from before its end: a dead row keeps it out.
      if (this.syncOn) this.addRow(s, 0, UNKNOWN_TIME, UNKNOWN_TIME, DEAD);
      return;
    }
    // An UPDATE without protoinfo for a flow we never saw: no state to start it in. The drift
    // check notices if such flows add up, and a resync brings them in.
    if (code < 0) return;
    // A NEW event starts the flow now; an UPDATE for a flow we never saw (events lost before a
    // resync caught up) starts it at the kernel's timestamp if there is one, else unknown.
    const isNew = type === 'new';
    const started = isNew && Number.isNaN(s.start) ? now : s.start;
    this.insert(s, code, started, isNew ? now : UNKNOWN_TIME, this.syncOn ? TOUCHED : 0, isNew);
  }

  /** Starts a resync; with `silent`, flows the dump adds are counted in silentFlows. */
  beginSync(silent = false): void {
    this.syncOn = true;
    this.syncSilent = silent;
    this.attempt = 1;
  }

  /** A dump attempt restarts (the kernel interrupted it): what it saw no longer counts. */
  restartSync(): void {
    if (this.syncOn && this.attempt < 255) this.attempt++;
  }

  /** Merges one dump entry; one that arrives after its resync ended is late and ignored. */
  stage(s: FlowSummary): void {
    if (!this.syncOn) return;
    const code = stateCode(s);
    const row = this.keys.find(s.id, s.tupleHash);
    if (row < 0) {
      if (code < 0) return;
      // We do not know when it entered its current state, only (maybe) when it started.
      const added = this.insert(s, code, s.start, UNKNOWN_TIME, this.syncSilent ? SILENT : 0, false);
      this.seen[added] = this.attempt;
      this.pending.added++;
      return;
    }
    const f = this.flags[row]!;
    if (f & DEAD) return;
    this.seen[row] = this.attempt;
    if (f & TOUCHED) return;
    this.extension?.updated(row, s);
    if (code < 0) return;
    const to = this.groupId(s.family, s.proto, code);
    if (to !== this.group[row]) {
      // The transitions themselves were lost with the events: neither the path nor the time
      // spent is known, so nothing is observed and the new state's start stays unknown.
      this.moveTo(row, to, UNKNOWN_TIME, false);
      this.pending.updated++;
    }
  }

  /** Ends the resync: removes what the last dump attempt did not see and no event touched. */
  commitSync(): SyncResult {
    if (!this.syncOn) return { added: 0, updated: 0, removed: 0 };
    const result = this.pending;
    const now = this.clock();
    this.tombstones.expire(now);
    for (let row = this.rows - 1; row >= 0; row--) {
      const f = this.flags[row]!;
      if (f & DEAD) {
        this.removeRow(row);
      } else if (this.seen[row] !== this.attempt && !(f & TOUCHED)) {
        // Its DESTROY may be on its way; silent flows send none, and without a start there is
        // nothing to observe.
        if (!(f & SILENT) && !Number.isNaN(this.started[row]!)) {
          const t = { group: this.group[row]!, started: this.started[row]!, since: this.since[row]! };
          this.tombstones.add(this.keys.idOf(row), this.keys.hashOf(row), t, now);
        }
        this.groupAt(row).count--;
        if (f & SILENT) this.silentFlows--;
        this.live--;
        this.extension?.removed(row);
        this.removeRow(row);
        result.removed++;
      } else {
        this.flags[row] = f & ~TOUCHED;
        this.seen[row] = 0;
      }
    }
    this.endSync();
    return result;
  }

  /** The dump failed: the table stays as events made it. */
  abortSync(): void {
    if (!this.syncOn) return;
    for (let row = this.rows - 1; row >= 0; row--) {
      if (this.flags[row]! & DEAD) this.removeRow(row);
      else {
        this.flags[row] = this.flags[row]! & ~TOUCHED;
        this.seen[row] = 0;
      }
    }
    this.endSync();
  }

  /** Bytes held by the table's arrays. */
  get bytes(): number {
    const columns = [this.group, this.flags, this.seen, this.started, this.since];
    return this.keys.bytes + columns.reduce((n, c) => n + c.byteLength, 0);
  }

  private endSync(): void {
    this.syncOn = false;
    this.attempt = 0;
    this.pending = { added: 0, updated: 0, removed: 0 };
    this.shrinkIfSparse();
  }

  private destroy(row: number, s: FlowSummary, code: number, now: number): void {
    const from = this.groupAt(row);
    from.count--;
    this.live--;
    this.observeEnd(from, s, code, this.since[row]!, this.started[row]!, now);
    this.extension?.removed(row);
    if (this.syncOn) this.flags[row] = DEAD;
    else this.removeRow(row);
  }

  /** A DESTROY for a flow the last commit removed (its counts settled then): observed alike. */
  private destroyedAfterCommit(s: FlowSummary, code: number, now: number): void {
    const t = this.tombstones.take(s.id, s.tupleHash, now);
    if (t !== undefined) this.observeEnd(this.allGroups[t.group]!, s, code, t.since, t.started, now);
  }

  /**
   * What a DESTROY observes of a flow that was in `from` since `since`: the move to the state the
   * DESTROY carries (if another), the time in the state it leaves, and its lifetime. UNKNOWN_TIME
   * fails the `>= 0` checks, so nothing is observed from a time not known.
   */
  private observeEnd(
    from: StateGroup,
    s: FlowSummary,
    code: number,
    since: number,
    started: number,
    now: number,
  ): void {
    const last = code >= 0 ? this.allGroups[this.groupId(s.family, s.proto, code)]! : from;
    let entered = since;
    if (last !== from) {
      if (now - entered >= 0) this.observer.stateLeft(from, now - entered);
      this.observer.transition(from, last);
      entered = now;
    }
    if (now - entered >= 0) this.observer.stateLeft(last, now - entered);
    const start = Number.isNaN(s.start) ? started : s.start;
    const lifetime = (Number.isNaN(s.stop) ? now : s.stop) - start;
    if (lifetime >= 0) this.observer.flowEnded(last, lifetime);
  }

  /** Moves the row to group `to` if it differs, observing the state it leaves. */
  private moveTo(row: number, to: number, now: number, observe: boolean): void {
    const fromId = this.group[row]!;
    if (fromId === to) return;
    const from = this.allGroups[fromId]!;
    const next = this.allGroups[to]!;
    from.count--;
    next.count++;
    if (observe) {
      const inState = now - this.since[row]!;
      if (inState >= 0) this.observer.stateLeft(from, inState);
      this.observer.transition(from, next);
    }
    this.group[row] = to;
    this.since[row] = now;
  }

  private groupAt(row: number): StateGroup {
    return this.allGroups[this.group[row]!]!;
  }

  private insert(
    s: FlowSummary,
    code: number,
    started: number,
    since: number,
    flags: number,
    created: boolean,
  ): number {
    const g = this.groupId(s.family, s.proto, code);
    const row = this.addRow(s, g, started, since, flags);
    this.allGroups[g]!.count++;
    this.live++;
    if (flags & SILENT) this.silentFlows++;
    this.extension?.added(row, s, created);
    return row;
  }

  /** A new row, indexed, but not counted anywhere. */
  private addRow(s: FlowSummary, group: number, started: number, since: number, flags: number): number {
    if (this.rows === this.group.length) this.resizeRows(this.rows * 2);
    const row = this.rows++;
    this.keys.add(row, s.id, s.tupleHash);
    this.group[row] = group;
    this.flags[row] = flags;
    this.seen[row] = 0;
    this.started[row] = started;
    this.since[row] = since;
    return row;
  }

  /** Drops a row whose counts are already settled; the last row moves into its place. */
  private removeRow(row: number): void {
    const last = --this.rows;
    this.keys.remove(row, last);
    if (row === last) return;
    this.group[row] = this.group[last]!;
    this.flags[row] = this.flags[last]!;
    this.seen[row] = this.seen[last]!;
    this.started[row] = this.started[last]!;
    this.since[row] = this.since[last]!;
    this.extension?.moved(last, row);
  }

  private resizeRows(n: number): void {
    const grow = <T extends Uint8Array | Uint16Array | Uint32Array | Float64Array>(
      a: T,
      make: (n: number) => T,
    ): T => {
      const b = make(n);
      b.set(a.subarray(0, Math.min(this.rows, n)));
      return b;
    };
    this.keys.resize(n, this.rows);
    this.group = grow(this.group, (k) => new Uint16Array(k));
    this.flags = grow(this.flags, (k) => new Uint8Array(k));
    this.seen = grow(this.seen, (k) => new Uint8Array(k));
    this.started = grow(this.started, (k) => new Float64Array(k));
    this.since = grow(this.since, (k) => new Float64Array(k));
    this.extension?.resize(n);
  }

  /** After a big table empties, give the memory back (rows and index at 4x fewer). */
  private shrinkIfSparse(): void {
    if (this.group.length <= MIN_ROWS || this.rows * 4 > this.group.length) return;
    this.resizeRows(Math.max(MIN_ROWS, this.group.length >>> 2));
    this.keys.shrink(this.rows);
  }

  private groupId(family: number, proto: number, code: number): number {
    const k = groupKey(family, proto, code);
    let g = this.groupOf.get(k);
    if (g === undefined) {
      g = this.allGroups.length;
      this.allGroups.push({
        family: familyName(family),
        proto,
        protocol: protocolName(proto),
        state: stateLabel(proto, code),
        labelKey: k & 0xffff,
        count: 0,
      });
      this.groupOf.set(k, g);
    }
    return g;
  }
}
