/**
 * What flows do over time, observed on the event path (TableObserver) and rendered at scrape
 * time: lifetimes of destroyed flows, time spent per state, and state transitions. Observing is a
 * map lookup by the group's labelKey (a number naming protocol and state) and a few additions.
 * Every table (one per namespace) shares this observer: observations add up per label set, and
 * since series are keyed by label values, not by table objects, tables that come and go add none.
 */
import type { Registry } from '@prometheus-io/client';
import type { StateGroup, TableObserver } from '../table/table.js';
import { Family } from './family.js';
import { type BucketCounts, FilledHistogram } from './histogram.js';

/**
 * From a millisecond handshake to the 5-day default established timeout
 * (nf_conntrack_tcp_timeout_established = 432000 s).
 */
export const DURATION_BUCKETS = [
  0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400, 432000,
] as const;

/** Lifetimes of these protocols are exported before the first flow ends, as conntrack_flows is. */
const COMMON_PROTOCOLS = ['tcp', 'udp', 'icmp', 'icmpv6'] as const;

interface TransitionCount {
  readonly labels: { protocol: string; from: string; to: string };
  count: number;
}

export class FlowMetrics implements TableObserver {
  private readonly lifetime = new FilledHistogram<'protocol'>(DURATION_BUCKETS);
  private readonly stateDuration = new FilledHistogram<'protocol' | 'state'>(DURATION_BUCKETS);
  /** By protocol number. */
  private readonly lifetimeOf = new Map<number, BucketCounts>();
  /** By labelKey. */
  private readonly durationOf = new Map<number, BucketCounts>();
  /** By from.labelKey * 2^16 + to.labelKey, in the order first seen. */
  private readonly transitionOf = new Map<number, TransitionCount>();

  constructor(private readonly kernelTimestamps: boolean) {
    for (const protocol of COMMON_PROTOCOLS) this.lifetime.series({ protocol });
  }

  /** Adds the three families to `registry` (the tables observe before and after). */
  register(registry: Registry): void {
    this.lifetime.register(
      registry,
      'conntrack_flow_lifetime_seconds',
      this.kernelTimestamps
        ? 'Lifetime of destroyed flows, from the kernel start timestamp to destruction (nf_conntrack_timestamp=1).'
        : 'Lifetime of destroyed flows, from the NEW event the exporter saw to destruction (nf_conntrack_timestamp=0: flows older than the exporter are not observed).',
    );
    this.stateDuration.register(
      registry,
      'conntrack_state_duration_seconds',
      'Time flows spent in a state, observed when they leave it (or are destroyed in it).',
    );
    new Family(
      registry,
      'conntrack_state_transitions_total',
      'State changes of flows, by protocol and the states left and entered.',
      'counter',
      (f) => {
        for (const t of this.transitionOf.values()) f.add({}, t.labels, t.count);
      },
    );
  }

  transition(from: StateGroup, to: StateGroup): void {
    const key = from.labelKey * 65536 + to.labelKey;
    let t = this.transitionOf.get(key);
    if (!t) {
      t = { labels: { protocol: from.protocol, from: from.state, to: to.state }, count: 0 };
      this.transitionOf.set(key, t);
    }
    t.count++;
  }

  stateLeft(group: StateGroup, seconds: number): void {
    let s = this.durationOf.get(group.labelKey);
    if (!s) {
      s = this.stateDuration.series({ protocol: group.protocol, state: group.state });
      this.durationOf.set(group.labelKey, s);
    }
    s.observe(seconds);
  }

  flowEnded(group: StateGroup, seconds: number): void {
    let s = this.lifetimeOf.get(group.proto);
    if (!s) {
      s = this.lifetime.series({ protocol: group.protocol });
      this.lifetimeOf.set(group.proto, s);
    }
    s.observe(seconds);
  }
}
