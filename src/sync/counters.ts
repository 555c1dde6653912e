/**
 * What synchronisation counts, written by the event applier (events, malformed messages) and the
 * resync scheduler (overruns, resyncs, dumps), read by the metrics at scrape time.
 */

export type ResyncReason = 'startup' | 'overrun' | 'drift' | 'periodic' | 'silent';
export const RESYNC_REASONS: readonly ResyncReason[] = ['startup', 'overrun', 'drift', 'periodic', 'silent'];

const perReason = (): Record<ResyncReason, number> => ({
  startup: 0,
  overrun: 0,
  drift: 0,
  periodic: 0,
  silent: 0,
});

/** Plain numbers on the event path; the metrics layer mirrors them at scrape time. */
export class CollectorCounters {
  eventsNew = 0;
  eventsUpdate = 0;
  eventsDestroy = 0;
  decodeErrors = 0;
  overruns = 0;
  resyncs: Record<ResyncReason, number> = perReason();
  resyncFailures: Record<ResyncReason, number> = perReason();
  /** Kernel entry counts the drift timer could not read. */
  driftReadErrors = 0;
  /** Seconds since the epoch of the last completed resync; 0 before the first. */
  lastResync = 0;
  /** Seconds the last completed dump took. */
  lastDumpSeconds = 0;
  /** CPU seconds the process spent during the last completed dump (all threads). */
  lastDumpCpuSeconds = 0;

  get events(): number {
    return this.eventsNew + this.eventsUpdate + this.eventsDestroy;
  }
}
