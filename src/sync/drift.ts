/**
 * Decides when a difference between the kernel's entry count (CT_GET_STATS, cheap) and the
 * shadow table's size warrants a full resync. Differences the event stream explains are normal:
 * events still queued in the socket when the count is read, unconfirmed entries the kernel
 * already counts. What is not: flows that send no events (silent flows) flushed or deleted, or
 * lost events the socket's drop counter missed.
 *
 * A difference acts only when it is larger than the tolerance and seen again, with the same sign,
 * at least `confirmSeconds` later (a backlog of in-flight events is gone by then). Resyncs are
 * rate limited: after each drift resync the next one waits `gap` seconds, and the gap doubles up
 * to `maxGapSeconds`, so a difference that a resync cannot fix (or one that keeps coming back
 * under churn) costs a dump every few minutes, not every check. The gap shrinks back to
 * `minGapSeconds` once no drift has been seen for as long as the current gap.
 *
 * Pure logic: the caller reads the counts and runs resyncs; time comes from the injected clock.
 */
import type { Clock } from '../table/table.js';

export interface DriftOptions {
  /** Differences up to this many flows never act. */
  readonly absoluteTolerance: number;
  /** Plus this share of the kernel's entries (a share of a big table is noise). */
  readonly relativeTolerance: number;
  /**
   * Plus the events of this many seconds at the current event rate: what may still sit, unread,
   * in the event socket's buffer when the count is read.
   */
  readonly inFlightSeconds: number;
  /** A confirming observation must come at least this long after the first one. */
  readonly confirmSeconds: number;
  /** Smallest gap between two drift resyncs. */
  readonly minGapSeconds: number;
  /** Largest gap: the back-off stops doubling here. */
  readonly maxGapSeconds: number;
}

export const DEFAULT_DRIFT_OPTIONS: DriftOptions = Object.freeze({
  absoluteTolerance: 0,
  relativeTolerance: 0.001,
  inFlightSeconds: 0.1,
  confirmSeconds: 1,
  minGapSeconds: 10,
  maxGapSeconds: 600,
});

export interface DriftObservation {
  /** Entries the kernel counts. */
  readonly kernel: number;
  /** Flows in the shadow table at the same moment. */
  readonly table: number;
  /** Events applied so far (monotonic), for the in-flight allowance. */
  readonly events: number;
}

export type DriftDecision =
  /** Within tolerance. */
  | { readonly action: 'none' }
  /** Beyond tolerance once: check again after `afterSeconds`. */
  | { readonly action: 'confirm'; readonly afterSeconds: number }
  /** Confirmed, but the rate limit holds it back for `afterSeconds` more. */
  | { readonly action: 'wait'; readonly afterSeconds: number; readonly difference: number }
  /** Confirmed: resync now. */
  | { readonly action: 'resync'; readonly difference: number; readonly gapSeconds: number };

interface Suspicion {
  sign: number;
  since: number;
}

export class DriftGuard {
  private suspicion: Suspicion | undefined;
  private last: { at: number; events: number } | undefined;
  private gap: number;
  private nextAllowed = Number.NEGATIVE_INFINITY;
  /** When drift was last beyond tolerance (or a drift resync ran). */
  private lastDrift = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly options: DriftOptions = DEFAULT_DRIFT_OPTIONS,
    private readonly clock: Clock,
  ) {
    if (!(options.minGapSeconds > 0) || options.maxGapSeconds < options.minGapSeconds) {
      throw new RangeError('drift: need 0 < minGapSeconds <= maxGapSeconds');
    }
    this.gap = options.minGapSeconds;
  }

  /** Seconds the next drift resync must wait after the one before (the current back-off). */
  get gapSeconds(): number {
    return this.gap;
  }

  /** Flows of difference tolerated now, given the event rate since the last observation. */
  tolerance(o: DriftObservation, now = this.clock()): number {
    const { absoluteTolerance, relativeTolerance, inFlightSeconds } = this.options;
    let rate = 0;
    if (this.last && now > this.last.at)
      rate = Math.max(0, o.events - this.last.events) / (now - this.last.at);
    return absoluteTolerance + relativeTolerance * o.kernel + inFlightSeconds * rate;
  }

  observe(o: DriftObservation): DriftDecision {
    const now = this.clock();
    const tolerance = this.tolerance(o, now);
    this.last = { at: now, events: o.events };
    const difference = o.table - o.kernel;
    if (Math.abs(difference) <= tolerance) {
      this.suspicion = undefined;
      if (now - this.lastDrift >= this.gap) this.gap = this.options.minGapSeconds;
      return { action: 'none' };
    }
    this.lastDrift = now;
    const sign = Math.sign(difference);
    if (!this.suspicion || this.suspicion.sign !== sign) {
      this.suspicion = { sign, since: now };
      return { action: 'confirm', afterSeconds: this.options.confirmSeconds };
    }
    const confirmIn = this.suspicion.since + this.options.confirmSeconds - now;
    if (confirmIn > 0) return { action: 'confirm', afterSeconds: confirmIn };
    if (now < this.nextAllowed) return { action: 'wait', afterSeconds: this.nextAllowed - now, difference };
    const gapSeconds = this.gap;
    this.nextAllowed = now + gapSeconds;
    this.gap = Math.min(this.gap * 2, this.options.maxGapSeconds);
    this.suspicion = undefined;
    return { action: 'resync', difference, gapSeconds };
  }

  /**
   * A resync (of any reason) merged a dump: a difference seen before it says nothing about the
   * table now, so a suspicion must be raised afresh.
   */
  resynced(): void {
    this.suspicion = undefined;
  }
}
