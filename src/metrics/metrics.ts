/**
 * Every metric conntrack-exporter serves, with its name and HELP, in one place. Values are taken
 * at scrape time: the kernel is read once per scrape (render), the shadow table's counts and the
 * collector's plain-number counters are copied in by collect(). Flow observations (lifetimes,
 * state durations, transitions) arrive from the table through TableObserver.
 *
 * The registry renders the Prometheus text format only: @prometheus-io/client (like prom-client
 * 15.1.3 before it) renames counters in place when rendering OpenMetrics, so one metric object must
 * never be rendered in both.
 */
import { release } from 'node:os';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from '@prometheus-io/client';
import { type CollectorCounters, RESYNC_REASONS, type ResyncReason } from '../collector.js';
import { CPU_STAT_NAMES, type CpuStatName, type CpuStats } from '../ctnetlink/stats.js';
import type { KernelSnapshot } from '../kernel/stats.js';
import type { ShadowTable, StateGroup, TableObserver } from '../table/table.js';

/**
 * From a millisecond handshake to the 5-day default established timeout
 * (nf_conntrack_tcp_timeout_established = 432000 s).
 */
export const DURATION_BUCKETS = [
  0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400, 432000,
] as const;

export const STAT_HELP: Readonly<Record<CpuStatName, string>> = {
  searched: 'Hash table lookups (no longer counted by current kernels).',
  found: 'Lookups that found an existing conntrack entry.',
  new: 'Entries added (no longer counted by current kernels).',
  invalid: 'Packets conntrack could not track (malformed, or invalid for the protocol state).',
  ignore: 'Packets that were already tracked or not to be tracked (no longer counted).',
  delete: 'Entries deleted (no longer counted by current kernels).',
  delete_list: 'Entries deleted from the dying list (no longer counted by current kernels).',
  insert: 'Entries inserted into the conntrack table.',
  insert_failed:
    'Entries that could not be inserted because an equal entry appeared first (the race behind the Kubernetes DNS/NAT delays).',
  drop: 'Packets dropped because the conntrack table was full and no entry could be evicted.',
  early_drop: 'Entries evicted early to make room while the conntrack table was full.',
  error: 'ICMP(v6) errors that referred to no known flow, or packets that failed in conntrack.',
  search_restart: 'Lookups restarted because the hash table was resized or changed concurrently.',
  clash_resolve: 'Insert clashes resolved by reusing the existing entry.',
  chain_toolong: 'Entries refused because their hash chain grew beyond the kernel limit.',
};

export interface MetricSources {
  table: ShadowTable;
  counters: CollectorCounters;
  /** Reads the kernel's own counts; called once per scrape. */
  readKernel: () => Promise<KernelSnapshot>;
  /** Effective SO_RCVBUF of the event socket. */
  rcvbuf: () => number | undefined;
}

export interface MetricsOptions {
  version: string;
  /** nf_conntrack_timestamp was on at start: lifetimes come from the kernel's start stamp. */
  kernelTimestamps: boolean;
  /** Node.js process metrics (the client's defaults); off in unit tests for stable output. */
  processMetrics?: boolean;
}

/**
 * A gauge without labels, read at scrape time, and absent from the scrape (no sample) when its
 * value is unknown: the client's own gauges always render a value, 0 or the last one set.
 */
class ScrapeGauge extends Gauge {
  constructor(
    config: { name: string; help: string; registers: Registry[] },
    private readonly read: () => number | undefined,
  ) {
    super(config);
  }

  override async get(): Promise<Awaited<ReturnType<Gauge['get']>>> {
    const v = this.read();
    if (v === undefined) return { ...(await super.get()), values: [] };
    this.set(v);
    return super.get();
  }
}

/** Mirrors a number that only grows into a Counter by adding the difference since last time. */
class Mirror {
  private last = 0;
  constructor(private readonly inc: (by: number) => void) {}
  to(value: number): void {
    if (value > this.last) this.inc(value - this.last);
    this.last = value;
  }
}

export class ExporterMetrics implements TableObserver {
  readonly registry = new Registry();
  private sources: MetricSources | undefined;
  private kernel: KernelSnapshot | undefined;
  private renderQueue: Promise<unknown> = Promise.resolve();
  private readonly lifetime: Histogram<'protocol'>;
  private readonly stateDuration: Histogram<'protocol' | 'state'>;
  private readonly transitions: Counter<'protocol' | 'from' | 'to'>;
  private readonly lifetimeChild = new Map<string, Histogram.Internal<'protocol'>>();
  private readonly durationChild = new Map<StateGroup, Histogram.Internal<'protocol' | 'state'>>();
  private readonly transitionChild = new Map<StateGroup, Map<StateGroup, Counter.Internal>>();
  private readonly statCounters = new Map<CpuStatName, Counter>();
  private readonly lastPerCpu = new Map<number, Partial<Record<CpuStatName, number>>>();
  private readonly countKernelErrors: (n: number) => void;

  constructor(options: MetricsOptions) {
    const registers = [this.registry];
    const src = (): MetricSources | undefined => this.sources;

    new Gauge({
      name: 'conntrack_exporter_build_info',
      help: 'A metric with a constant 1 labelled by the exporter version, Node.js version and kernel release.',
      labelNames: ['version', 'node_version', 'kernel'] as const,
      registers,
    }).set({ version: options.version, node_version: process.version, kernel: release() }, 1);

    // Kernel side: absent from a scrape whose kernel read failed.
    const kernelGauges: [string, string, (k: KernelSnapshot) => number | undefined][] = [
      [
        'conntrack_entries',
        'Entries in the conntrack table of this network namespace, as the kernel counts them.',
        (k) => k.entries,
      ],
      [
        'conntrack_entries_limit',
        'Maximum entries before the kernel drops packets (net.netfilter.nf_conntrack_max).',
        (k) => k.limit,
      ],
      [
        'conntrack_buckets',
        'Size of the conntrack hash table (net.netfilter.nf_conntrack_buckets).',
        (k) => k.buckets,
      ],
      [
        'conntrack_kernel_event_mode',
        'net.netfilter.nf_conntrack_events: 0 no events, 1 events for every flow, 2 events only for flows created while some process on the host listens (the default; flows created while none does never send events).',
        (k) => k.eventsMode,
      ],
      [
        'conntrack_kernel_timestamps_enabled',
        'net.netfilter.nf_conntrack_timestamp: 1 if the kernel stamps flow start and stop times.',
        (k) => k.timestamps,
      ],
      [
        'conntrack_kernel_accounting_enabled',
        'net.netfilter.nf_conntrack_acct: 1 if the kernel counts packets and bytes per flow.',
        (k) => k.accounting,
      ],
    ];
    for (const [name, help, read] of kernelGauges) {
      new ScrapeGauge({ name, help, registers }, () =>
        this.kernel === undefined ? undefined : read(this.kernel),
      );
    }

    // Shadow side.
    new Gauge({
      name: 'conntrack_flows',
      help: 'Flows in the shadow table by family, protocol and state (TCP/SCTP/DCCP: kernel state; others: UNREPLIED, REPLIED or ASSURED).',
      labelNames: ['family', 'protocol', 'state'] as const,
      registers,
      collect() {
        for (const g of src()?.table.groups() ?? []) this.labels(g.family, g.protocol, g.state).set(g.count);
      },
    });
    const events = new Counter({
      name: 'conntrack_events_total',
      help: 'Conntrack events received from the kernel, by event type.',
      labelNames: ['event'] as const,
      registers,
      collect() {
        const c = src()?.counters;
        if (!c) return;
        mirrors.new.to(c.eventsNew);
        mirrors.update.to(c.eventsUpdate);
        mirrors.destroy.to(c.eventsDestroy);
      },
    });
    const mirrors = {
      new: new Mirror((n) => events.inc({ event: 'new' }, n)),
      update: new Mirror((n) => events.inc({ event: 'update' }, n)),
      destroy: new Mirror((n) => events.inc({ event: 'destroy' }, n)),
    };
    for (const event of ['new', 'update', 'destroy']) events.inc({ event }, 0);

    this.lifetime = new Histogram({
      name: 'conntrack_flow_lifetime_seconds',
      help: options.kernelTimestamps
        ? 'Lifetime of destroyed flows, from the kernel start timestamp to destruction (nf_conntrack_timestamp=1).'
        : 'Lifetime of destroyed flows, from the NEW event the exporter saw to destruction (nf_conntrack_timestamp=0: flows older than the exporter are not observed).',
      labelNames: ['protocol'] as const,
      buckets: [...DURATION_BUCKETS],
      registers,
    });
    this.stateDuration = new Histogram({
      name: 'conntrack_state_duration_seconds',
      help: 'Time flows spent in a state, observed when they leave it (or are destroyed in it).',
      labelNames: ['protocol', 'state'] as const,
      buckets: [...DURATION_BUCKETS],
      registers,
    });
    // Lifetimes of the common protocols exist before the first flow ends, as conntrack_flows does.
    for (const protocol of ['tcp', 'udp', 'icmp', 'icmpv6']) this.lifetime.zero({ protocol });
    this.transitions = new Counter({
      name: 'conntrack_state_transitions_total',
      help: 'State changes of flows, by protocol and the states left and entered.',
      labelNames: ['protocol', 'from', 'to'] as const,
      registers,
    });

    // Collector health.
    const overruns = new Mirror((n) => overrunCounter.inc(n));
    const overrunCounter = new Counter({
      name: 'conntrack_collector_overruns_total',
      help: 'Times the event socket was found to have lost events (its buffer was full); each triggers a resync.',
      registers,
      collect() {
        const c = src()?.counters;
        if (c) overruns.to(c.overruns);
      },
    });
    const lost = new Mirror((n) => lostCounter.inc(n));
    const lostCounter = new Counter({
      name: 'conntrack_collector_events_lost_total',
      help: 'Event messages the kernel dropped because the event socket buffer was full (its drop counter); any loss triggers a resync.',
      registers,
      collect() {
        const c = src()?.counters;
        if (c) lost.to(c.eventsLost);
      },
    });
    const resyncs = new Counter({
      name: 'conntrack_collector_resyncs_total',
      help: 'Completed full-table resynchronisations, by reason (startup, overrun, drift, periodic, silent).',
      labelNames: ['reason'] as const,
      registers,
      collect() {
        const c = src()?.counters;
        if (c) for (const r of RESYNC_REASONS) resyncMirrors[r].to(c.resyncs[r]);
      },
    });
    const resyncMirrors = Object.fromEntries(
      RESYNC_REASONS.map((reason) => {
        resyncs.inc({ reason }, 0);
        return [reason, new Mirror((n) => resyncs.inc({ reason }, n))];
      }),
    ) as Record<ResyncReason, Mirror>;
    const failures = new Counter({
      name: 'conntrack_collector_resync_failures_total',
      help: 'Full-table resynchronisations that failed (the dump failed or timed out), by reason; the table keeps its previous state.',
      labelNames: ['reason'] as const,
      registers,
      collect() {
        const c = src()?.counters;
        if (c) for (const r of RESYNC_REASONS) failureMirrors[r].to(c.resyncFailures[r]);
      },
    });
    const failureMirrors = Object.fromEntries(
      RESYNC_REASONS.map((reason) => {
        failures.inc({ reason }, 0);
        return [reason, new Mirror((n) => failures.inc({ reason }, n))];
      }),
    ) as Record<ResyncReason, Mirror>;
    const decodeErrors = new Mirror((n) => decodeCounter.inc(n));
    const decodeCounter = new Counter({
      name: 'conntrack_collector_decode_errors_total',
      help: 'Malformed ctnetlink messages that were counted and skipped.',
      registers,
      collect() {
        const c = src()?.counters;
        if (c) decodeErrors.to(c.decodeErrors);
      },
    });
    new Gauge({
      name: 'conntrack_collector_last_resync_timestamp_seconds',
      help: 'When the shadow table was last resynchronised with a full dump (seconds since the epoch).',
      registers,
      collect() {
        const c = src()?.counters;
        if (c) this.set(c.lastResync);
      },
    });
    new ScrapeGauge(
      {
        name: 'conntrack_collector_table_drift',
        help: 'Flows in the shadow table minus entries the kernel counts, at scrape time. A difference beyond what events in flight explain triggers a resync (reason drift); a lasting one means the exporter cannot see what the kernel counts.',
        registers,
      },
      () => {
        const s = src();
        const entries = this.kernel?.entries;
        return s && entries !== undefined ? s.table.size - entries : undefined;
      },
    );
    new Gauge({
      name: 'conntrack_collector_silent_flows',
      help: 'Flows the kernel sends no events for (created while no process listened, with nf_conntrack_events=2: before the exporter started or while it restarted); re-dumps follow them until they are gone.',
      registers,
      collect() {
        const s = src();
        if (s) this.set(s.table.silentFlows);
      },
    });
    new Gauge({
      name: 'conntrack_collector_netlink_receive_buffer_bytes',
      help: 'Effective receive buffer of the event socket (SO_RCVBUF as the kernel reports it).',
      registers,
      collect() {
        const v = src()?.rcvbuf();
        if (v !== undefined) this.set(v);
      },
    });
    const kernelErrors = new Mirror((n) => kernelErrorCounter.inc(n));
    let kernelErrorTotal = 0;
    const kernelErrorCounter = new Counter({
      name: 'conntrack_collector_kernel_read_errors_total',
      help: 'Kernel reads that failed: netlink statistics requests and sysctl files at scrape time (a value that could not be read is left out of that scrape), and entry counts for the drift check.',
      registers,
      collect() {
        kernelErrors.to(kernelErrorTotal + (src()?.counters.driftReadErrors ?? 0));
      },
    });
    this.countKernelErrors = (n) => {
      kernelErrorTotal += n;
    };

    if (options.processMetrics !== false) {
      // The event-loop utilisation pair is sampled by a 100 ms timer into a summary and a
      // histogram; its timer is pushed to the longest delay Node allows (~24.8 days) and the pair
      // removed below: an idle exporter does not wake 10 times a second for a number nobody asked.
      // The event-loop lag monitor samples once a second, not every 10 ms (its default): lag is
      // still measured, and an idle exporter wakes once a second instead of 100 times.
      collectDefaultMetrics({
        register: this.registry,
        eventLoopUtilizationTimeout: 2 ** 31 - 1,
        eventLoopMonitoringPrecision: 1000,
      });
      for (const name of [
        // Gauges named like counters fail `promtool check metrics`; nodejs_active_{handles,
        // requests,resources} (by type) carry the same numbers.
        'nodejs_active_handles_total',
        'nodejs_active_requests_total',
        'nodejs_active_resources_total',
        'nodejs_eventloop_utilization_summary',
        'nodejs_eventloop_utilization_histogram',
      ]) {
        this.registry.removeSingleMetric(name);
      }
    }
  }

  attach(sources: MetricSources): void {
    this.sources = sources;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** One scrape: read the kernel, then render. Serialised so counter mirrors never go backwards. */
  render(): Promise<string> {
    const run = async (): Promise<string> => {
      if (this.sources) {
        this.kernel = await this.sources.readKernel();
        this.countKernelErrors(this.kernel.errors);
        this.mirrorKernelCounters(this.kernel.perCpu);
      }
      return this.registry.metrics();
    };
    const result = this.renderQueue.then(run, run);
    this.renderQueue = result.catch(() => undefined);
    return result;
  }

  // TableObserver: called on the event path, so label children are looked up once and cached.
  transition(from: StateGroup, to: StateGroup): void {
    let byTo = this.transitionChild.get(from);
    if (!byTo) {
      byTo = new Map();
      this.transitionChild.set(from, byTo);
    }
    let child = byTo.get(to);
    if (!child) {
      child = this.transitions.labels(from.protocol, from.state, to.state);
      byTo.set(to, child);
    }
    child.inc();
  }

  stateLeft(group: StateGroup, seconds: number): void {
    let child = this.durationChild.get(group);
    if (!child) {
      child = this.stateDuration.labels(group.protocol, group.state);
      this.durationChild.set(group, child);
    }
    child.observe(seconds);
  }

  flowEnded(group: StateGroup, seconds: number): void {
    let child = this.lifetimeChild.get(group.protocol);
    if (!child) {
      child = this.lifetime.labels(group.protocol);
      this.lifetimeChild.set(group.protocol, child);
    }
    child.observe(seconds);
  }

  /**
   * The kernel keeps each counter per CPU as a wrapping u32; adding per-CPU differences modulo
   * 2^32 keeps the exported counter monotonic across wraps.
   */
  private mirrorKernelCounters(perCpu: readonly CpuStats[]): void {
    for (const s of perCpu) {
      const last = this.lastPerCpu.get(s.cpu) ?? {};
      for (const name of CPU_STAT_NAMES) {
        const v = s.values[name];
        if (v === undefined) continue;
        const delta = (v - (last[name] ?? 0)) >>> 0;
        this.statCounter(name).inc(delta);
      }
      this.lastPerCpu.set(s.cpu, { ...s.values });
    }
  }

  /** Registered on first sight: a counter this kernel does not keep is absent, not zero. */
  private statCounter(name: CpuStatName): Counter {
    let c = this.statCounters.get(name);
    if (!c) {
      c = new Counter({
        name: `conntrack_stat_${name}_total`,
        help: `${STAT_HELP[name]} Summed over CPUs.`,
        registers: [this.registry],
      });
      this.statCounters.set(name, c);
    }
    return c;
  }
}
