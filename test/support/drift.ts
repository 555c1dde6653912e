/** The drift guard's promise, as an oracle for tests that count the resyncs it asked for. */
import { DEFAULT_DRIFT_OPTIONS, type DriftOptions } from '../../src/sync/drift.js';

/**
 * The most drift resyncs a guard with these options can ask for within `seconds`, from any state:
 * the rate limit alone (the back-off only lowers it).
 */
export function maxDriftResyncs(seconds: number, options: DriftOptions = DEFAULT_DRIFT_OPTIONS): number {
  return 1 + Math.floor(seconds / options.minGapSeconds);
}
