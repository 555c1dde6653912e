/**
 * What flows do over time, observed on the event path (TableObserver) and rendered at scrape
 * time: lifetimes of destroyed flows, time spent per state, and state transitions. Observing is
 * a map lookup by the table's StateGroup object and a few additions; the client sees these
 * numbers only when a scrape renders them. Several tables (--netns.all) may share one observer:
 * their observations add up per label set.
 */
import { Counter, type Registry } from '@prometheus-io/client';
import type { StateGroup, TableObserver } from '../table/table.js';
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

/** Transitions between two states, counted on the event path and added to the counter at scrape time. */
interface TransitionCount {
  readonly labels: { protocol: string; from: string; to: string };
  count: number;
  reported: number;
}

export class FlowMetrics implements TableObserver {
  private readonly lifetime: FilledHistogram<'protocol'>;
  private readonly stateDuration: FilledHistogram<'protocol' | 'state'>;
  private readonly lifetimeOf = new Map<string, BucketCounts>();
  private readonly durationOf = new Map<StateGroup, BucketCounts>();
  private readonly transitionOf = new Map<StateGroup, Map<StateGroup, TransitionCount>>();
  /** Every pair seen; pairs of several tables with the same labels add up in one series. */
  private readonly transitionCounts: TransitionCount[] = [];

  constructor(registry: Registry, kernelTimestamps: boolean) {
    this.lifetime = new FilledHistogram(
      registry,
      'conntrack_flow_lifetime_seconds',
      kernelTimestamps
        ? 'Lifetime of destroyed flows, from the kernel start timestamp to destruction (nf_conntrack_timestamp=1).'
        : 'Lifetime of destroyed flows, from the NEW event the exporter saw to destruction (nf_conntrack_timestamp=0: flows older than the exporter are not observed).',
      ['protocol'],
      DURATION_BUCKETS,
    );
    for (const protocol of COMMON_PROTOCOLS) this.lifetime.series({ protocol });
    this.stateDuration = new FilledHistogram(
      registry,
      'conntrack_state_duration_seconds',
      'Time flows spent in a state, observed when they leave it (or are destroyed in it).',
      ['protocol', 'state'],
      DURATION_BUCKETS,
    );
    const counts = this.transitionCounts;
    new Counter({
      name: 'conntrack_state_transitions_total',
      help: 'State changes of flows, by protocol and the states left and entered.',
      labelNames: ['protocol', 'from', 'to'] as const,
      registers: [registry],
      collect() {
        for (const t of counts) {
          this.inc(t.labels, t.count - t.reported);
          t.reported = t.count;
        }
      },
    });
  }

  transition(from: StateGroup, to: StateGroup): void {
    let byTo = this.transitionOf.get(from);
    if (!byTo) {
      byTo = new Map();
      this.transitionOf.set(from, byTo);
    }
    let t = byTo.get(to);
    if (!t) {
      t = { labels: { protocol: from.protocol, from: from.state, to: to.state }, count: 0, reported: 0 };
      this.transitionCounts.push(t);
      byTo.set(to, t);
    }
    t.count++;
  }

  stateLeft(group: StateGroup, seconds: number): void {
    let s = this.durationOf.get(group);
    if (!s) {
      s = this.stateDuration.series({ protocol: group.protocol, state: group.state });
      this.durationOf.set(group, s);
    }
    s.observe(seconds);
  }

  flowEnded(group: StateGroup, seconds: number): void {
    let s = this.lifetimeOf.get(group.protocol);
    if (!s) {
      s = this.lifetime.series({ protocol: group.protocol });
      this.lifetimeOf.set(group.protocol, s);
    }
    s.observe(seconds);
  }
}
