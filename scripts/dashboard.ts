/**
 * Builds dashboards/conntrack-exporter.json, the Grafana dashboard, from a short description of
 * its panels (the JSON model is long and repetitive; this keeps its conventions in one place):
 *
 *   npm run build && node dist/scripts/dashboard.js > dashboards/conntrack-exporter.json
 *
 * test/dashboards checks that the committed file is this script's output.
 */

const SEL = 'job=~"$job",instance=~"$instance"';
/** Where the runbooks are published; the alert rules' runbook_url use the same base. */
const REPO = 'https://github.com/conntrack-exporter/conntrack-exporter';
export const RUNBOOK_BASE = `${REPO}/blob/main/dashboards/runbooks/`;
/**
 * Resyncs that recur by design (every --resync.interval, and the re-dumps that follow silent
 * flows while any remain): an annotation each time would bury the others.
 */
const SCHEDULED_RESYNCS = 'periodic|silent';
// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a JS template
const DS = { type: 'prometheus', uid: '${datasource}' };

interface Target {
  expr: string;
  legend: string;
}

interface PanelSpec {
  title: string;
  description: string;
  type: 'timeseries' | 'gauge' | 'stat';
  unit: string;
  targets: Target[];
  w: number;
  h?: number;
  stack?: boolean;
  thresholds?: { color: string; value: number | null }[];
  min?: number;
  max?: number;
  /** Series drawn as a dashed red line (the limit). */
  limitSeries?: string;
  /** Alerts whose runbooks the panel links to (dashboards/runbooks/<alert>.md). */
  runbooks?: string[];
}

const t = (expr: string, legend: string): Target => ({ expr, legend });

/** Entries (of the namespaces `entries` selects) over the one global nf_conntrack_max. */
const fillRatio = (entries: string) =>
  `conntrack_entries{${entries}} / ignoring(netns) group_left conntrack_entries_limit{${SEL}}`;
/** The fill alerts' thresholds (dashboards/rules): 80% warning, 95% critical. */
const FILL_THRESHOLDS = [
  { color: 'green', value: null },
  { color: 'orange', value: 0.8 },
  { color: 'red', value: 0.95 },
];

/** The row whose panels have data only with --netns.all; collapsed, so the default mode hides it. */
export const NETNS_ROW = 'Namespaces (--netns.all)';

const ROWS: { title: string; collapsed?: boolean; panels: PanelSpec[] }[] = [
  {
    title: 'Table exhaustion',
    panels: [
      {
        title: 'Fill level',
        description:
          'Entries in the conntrack table as a share of net.netfilter.nf_conntrack_max. At 100% the kernel drops the first packet of every new connection ("nf_conntrack: table full, dropping packet"). Alerts: 80% warning, 95% critical. With --netns.all: the fullest namespace (see the Namespaces row).',
        type: 'gauge',
        unit: 'percentunit',
        w: 6,
        runbooks: ['ConntrackTableNearlyFull', 'ConntrackTableFull'],
        min: 0,
        max: 1,
        thresholds: FILL_THRESHOLDS,
        targets: [t(`max by (instance) (${fillRatio(SEL)})`, '{{instance}}')],
      },
      {
        title: 'Entries and limit',
        description:
          'Entries in the conntrack table (per network namespace the exporter runs in) and nf_conntrack_max (global to the host), drawn dashed. The gap is what is left.',
        type: 'timeseries',
        unit: 'short',
        w: 12,
        limitSeries: 'limit',
        targets: [
          t(`conntrack_entries{${SEL}}`, '{{instance}} {{netns}} entries'),
          t(`conntrack_entries_limit{${SEL}}`, '{{instance}} limit'),
        ],
      },
      {
        title: 'Time until full',
        description:
          'Time until the table reaches nf_conntrack_max at the growth rate of the last hour (deriv). When the table is not growing the estimate is effectively infinite (shown as a very large value).',
        type: 'stat',
        unit: 's',
        w: 6,
        runbooks: ['ConntrackTablePredictedFull'],
        thresholds: [
          { color: 'red', value: null },
          { color: 'orange', value: 3600 },
          { color: 'green', value: 4 * 3600 },
        ],
        targets: [
          t(
            `(conntrack_entries_limit{${SEL}} - ignoring(netns) group_right conntrack_entries{${SEL}}) / clamp_min(deriv(conntrack_entries{${SEL}}[1h]), 1e-9)`,
            '{{instance}} {{netns}}',
          ),
        ],
      },
      {
        title: 'Drops because the table is full',
        description:
          'drop: packets of new connections dropped because the table was full. early_drop: entries (not yet assured) evicted to make room. insert_failed: inserts that lost a race against an equal entry (the NAT/DNS race known from Kubernetes). Per second, summed over CPUs.',
        type: 'timeseries',
        unit: 'ops',
        w: 24,
        runbooks: ['ConntrackPacketsDropped', 'ConntrackInsertFailed'],
        targets: [
          t(`rate(conntrack_stat_drop_total{${SEL}}[$__rate_interval])`, '{{instance}} drop'),
          t(`rate(conntrack_stat_early_drop_total{${SEL}}[$__rate_interval])`, '{{instance}} early_drop'),
          t(
            `rate(conntrack_stat_insert_failed_total{${SEL}}[$__rate_interval])`,
            '{{instance}} insert_failed',
          ),
        ],
      },
    ],
  },
  {
    title: 'Who fills the table',
    panels: [
      {
        title: 'Top sources',
        runbooks: ['ConntrackTableNearlyFull', 'ConntrackTableFull'],
        description:
          'Flows in the table by source prefix (--top.source-prefix-ipv4/-ipv6): the top K (--top.k) and "other" for the rest, stacked, so the stack is the whole table. One source or prefix dominating is a scan, a flood, a retrying client or one busy pod.',
        type: 'timeseries',
        unit: 'short',
        w: 12,
        h: 10,
        stack: true,
        targets: [t(`sum by (family, source) (conntrack_top_source_flows{${SEL}})`, '{{source}}')],
      },
      {
        title: 'Top destinations',
        description:
          'Flows in the table by destination address, protocol and port (ICMP: type): the top K and "other", stacked. A dead upstream or a DNS server under load shows here, often with a wall of SYN_SENT or UNREPLIED.',
        type: 'timeseries',
        unit: 'short',
        w: 12,
        h: 10,
        stack: true,
        targets: [
          t(
            `sum by (family, protocol, destination, port) (conntrack_top_destination_flows{${SEL}})`,
            '{{destination}} {{protocol}} {{port}}',
          ),
        ],
      },
      {
        title: 'Fastest creators',
        description:
          'New flows per second over the last minute by source prefix: the top K and "other", stacked. A scan or a flood shows here before the table fills.',
        type: 'timeseries',
        unit: 'ops',
        w: 12,
        stack: true,
        targets: [
          t(`sum by (family, source) (conntrack_top_source_new_flows_per_second{${SEL}})`, '{{source}}'),
        ],
      },
      {
        title: 'Zones',
        description:
          'Flows in the table by conntrack zone (CT zone: per-tenant or per-interface tables in one namespace): the top K and "other", stacked.',
        type: 'timeseries',
        unit: 'short',
        w: 6,
        stack: true,
        targets: [t(`sum by (zone) (conntrack_zone_flows{${SEL}})`, 'zone {{zone}}')],
      },
      {
        title: 'Marks',
        description:
          'Flows in the table by conntrack mark (ct mark / CONNMARK, decimal as conntrack -L prints it): the top K and "other", stacked.',
        type: 'timeseries',
        unit: 'short',
        w: 6,
        stack: true,
        targets: [t(`sum by (mark) (conntrack_mark_flows{${SEL}})`, 'mark {{mark}}')],
      },
    ],
  },
  {
    title: NETNS_ROW,
    collapsed: true,
    panels: [
      {
        title: 'Top namespaces by fill',
        description:
          "With --netns.all: the 10 network namespaces whose conntrack table is fullest, each against the one global nf_conntrack_max (the kernel checks every namespace's own count against it). netns is the name under /var/run/netns (CNI pod namespaces: cni-<id>), else inode:<n>; conntrack_netns_info says which is the exporter's own.",
        type: 'timeseries',
        unit: 'percentunit',
        w: 12,
        min: 0,
        thresholds: FILL_THRESHOLDS,
        targets: [t(`topk(10, ${fillRatio(`${SEL},netns!=""`)})`, '{{instance}} {{netns}}')],
      },
      {
        title: 'Drops by namespace (top 10)',
        description:
          "With --netns.all: packets dropped (drop) and entries evicted (early_drop) per second because a namespace's table was full, for the 10 namespaces that drop most.",
        type: 'timeseries',
        unit: 'ops',
        w: 8,
        targets: [
          t(
            `topk(10, sum by (instance, netns) (rate(conntrack_stat_drop_total{${SEL},netns!=""}[$__rate_interval]) + rate(conntrack_stat_early_drop_total{${SEL},netns!=""}[$__rate_interval])))`,
            '{{instance}} {{netns}}',
          ),
        ],
      },
      {
        title: 'Namespaces',
        description:
          'With --netns.all: namespaces followed, those with a table in use (they have series), and those skipped because --netns.max was reached (raise it if this is not 0).',
        type: 'stat',
        unit: 'short',
        w: 4,
        targets: [
          t(`sum by (instance) (conntrack_netns_followed{${SEL}})`, '{{instance}} followed'),
          t(`sum by (instance) (conntrack_netns_active{${SEL}})`, '{{instance}} active'),
          t(`sum by (instance) (conntrack_netns_skipped{${SEL}})`, '{{instance}} skipped'),
        ],
      },
    ],
  },
  {
    title: 'What fills the table',
    panels: [
      {
        title: 'Flows by protocol and state',
        description:
          "Flows in the exporter's shadow table by family, protocol and state (TCP states as the kernel names them; UNREPLIED/REPLIED/ASSURED for protocols without states). A wall of SYN_SENT or UNREPLIED points at scans, floods or a dead upstream; TIME_WAIT at short-lived connections.",
        type: 'timeseries',
        unit: 'short',
        w: 12,
        h: 10,
        stack: true,
        targets: [
          t(
            `sum by (family, protocol, state) (conntrack_flows{${SEL}}) > 0`,
            '{{family}} {{protocol}} {{state}}',
          ),
        ],
      },
      {
        title: 'Events per second',
        description: 'Conntrack events received by the exporter: new flows, state updates, destroyed flows.',
        type: 'timeseries',
        unit: 'ops',
        w: 12,
        h: 10,
        targets: [t(`sum by (event) (rate(conntrack_events_total{${SEL}}[$__rate_interval]))`, '{{event}}')],
      },
      {
        title: 'Flow lifetime (p50, p90, p99)',
        description:
          'How long destroyed flows lived, by protocol, from conntrack_flow_lifetime_seconds (kernel start timestamps when nf_conntrack_timestamp=1, otherwise from the NEW event). Empty (NaN) while no flow ends.',
        type: 'timeseries',
        unit: 's',
        w: 12,
        targets: [0.5, 0.9, 0.99].map((q) =>
          t(
            `histogram_quantile(${q}, sum by (le, protocol) (rate(conntrack_flow_lifetime_seconds_bucket{${SEL}}[$__rate_interval])))`,
            `{{protocol}} p${q * 100}`,
          ),
        ),
      },
      {
        title: 'Time in state (p90)',
        description:
          'How long flows stayed in a state before leaving it (90th percentile), by protocol and state: slow handshakes show in SYN_SENT/SYN_RECV, lingering closes in TIME_WAIT and CLOSE_WAIT.',
        type: 'timeseries',
        unit: 's',
        w: 12,
        targets: [
          t(
            `histogram_quantile(0.9, sum by (le, protocol, state) (rate(conntrack_state_duration_seconds_bucket{${SEL}}[$__rate_interval])))`,
            '{{protocol}} {{state}}',
          ),
        ],
      },
      {
        title: 'State transitions (top 10)',
        description:
          'The ten most frequent state changes per second, by protocol and the states left and entered.',
        type: 'timeseries',
        unit: 'ops',
        w: 12,
        targets: [
          t(
            `topk(10, sum by (protocol, from, to) (rate(conntrack_state_transitions_total{${SEL}}[$__rate_interval])))`,
            '{{protocol}} {{from}} → {{to}}',
          ),
        ],
      },
      {
        title: 'Other kernel counters',
        description:
          'invalid: packets conntrack could not track; error: ICMP errors about unknown flows and other conntrack errors; search_restart: lookups restarted by concurrent hash changes; clash_resolve: insert clashes resolved by reusing the existing entry. Per second.',
        type: 'timeseries',
        unit: 'ops',
        w: 12,
        targets: ['invalid', 'error', 'search_restart', 'clash_resolve'].map((s) =>
          t(`rate(conntrack_stat_${s}_total{${SEL}}[$__rate_interval])`, `{{instance}} ${s}`),
        ),
      },
    ],
  },
  {
    title: 'Collector health',
    panels: [
      {
        title: 'Lost events',
        runbooks: ['ConntrackExporterLosingEvents'],
        description:
          "Overruns: times the exporter's event socket buffer overflowed (each costs a full table dump). Lost: event messages the kernel dropped. Lasting losses: raise --netlink.rcvbuf.",
        type: 'timeseries',
        unit: 'short',
        w: 8,
        targets: [
          t(
            `increase(conntrack_collector_overruns_total{${SEL}}[$__rate_interval])`,
            '{{instance}} overruns',
          ),
          t(
            `increase(conntrack_collector_events_lost_total{${SEL}}[$__rate_interval])`,
            '{{instance}} events lost',
          ),
        ],
      },
      {
        title: 'Resyncs by reason',
        description:
          'Full table dumps by reason: startup, overrun (events lost), drift (the kernel entry count and the shadow table disagreed), periodic (--resync.interval), silent (following flows the kernel sends no events for). Failed: dumps that failed, the table kept as it was.',
        type: 'timeseries',
        unit: 'short',
        w: 8,
        targets: [
          t(
            `sum by (reason) (increase(conntrack_collector_resyncs_total{${SEL}}[$__rate_interval]))`,
            '{{reason}}',
          ),
          t(
            `sum by (reason) (increase(conntrack_collector_resync_failures_total{${SEL}}[$__rate_interval]))`,
            '{{reason}} failed',
          ),
        ],
      },
      {
        title: 'Drift and silent flows',
        runbooks: ['ConntrackExporterDrift'],
        description:
          'Drift: shadow-table flows minus kernel entries at scrape time (small transient values are normal on a busy host; a larger one triggers a drift resync). Silent: flows the kernel sends no events for (created while no process listened, nf_conntrack_events=2), followed by re-dumps.',
        type: 'timeseries',
        unit: 'short',
        w: 8,
        targets: [
          t(`conntrack_collector_table_drift{${SEL}}`, '{{instance}} drift'),
          t(`conntrack_collector_silent_flows{${SEL}}`, '{{instance}} silent'),
        ],
      },
      {
        title: 'Decode errors',
        description:
          'Malformed ctnetlink messages the exporter counted and skipped, per second. Should be 0.',
        type: 'timeseries',
        unit: 'ops',
        w: 8,
        targets: [
          t(`rate(conntrack_collector_decode_errors_total{${SEL}}[$__rate_interval])`, '{{instance}}'),
        ],
      },
      {
        title: 'Exporter memory',
        description:
          'Resident memory of the exporter process; the shadow table costs about 130 bytes per flow.',
        type: 'timeseries',
        unit: 'bytes',
        w: 8,
        targets: [t(`process_resident_memory_bytes{${SEL}}`, '{{instance}}')],
      },
      {
        title: 'Exporter version',
        runbooks: ['ConntrackExporterDown', 'ConntrackExporterAbsent'],
        description: 'conntrack-exporter version, Node.js version and kernel release of each instance.',
        type: 'stat',
        unit: 'none',
        w: 8,
        targets: [
          t(
            `count by (version, node_version, kernel) (conntrack_exporter_build_info{${SEL}})`,
            '{{version}} node {{node_version}} kernel {{kernel}}',
          ),
        ],
      },
    ],
  },
];

function panel(p: PanelSpec, id: number, x: number, y: number): Record<string, unknown> {
  const defaults: Record<string, unknown> = { unit: p.unit };
  if (p.min !== undefined) defaults['min'] = p.min;
  if (p.max !== undefined) defaults['max'] = p.max;
  if (p.thresholds) defaults['thresholds'] = { mode: 'absolute', steps: p.thresholds };
  if (p.type === 'timeseries') {
    defaults['custom'] = {
      drawStyle: 'line',
      lineWidth: 1,
      fillOpacity: p.stack ? 60 : 10,
      stacking: { mode: p.stack ? 'normal' : 'none', group: 'A' },
    };
  }
  const overrides = p.limitSeries
    ? [
        {
          matcher: { id: 'byRegexp', options: `.* ${p.limitSeries}$` },
          properties: [
            { id: 'color', value: { mode: 'fixed', fixedColor: 'red' } },
            { id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } },
            { id: 'custom.fillOpacity', value: 0 },
          ],
        },
      ]
    : [];
  const links = (p.runbooks ?? []).map((alert) => ({
    title: `Runbook: ${alert}`,
    url: `${RUNBOOK_BASE}${alert}.md`,
    targetBlank: true,
  }));
  return {
    id,
    type: p.type,
    title: p.title,
    description: p.description,
    datasource: DS,
    ...(links.length > 0 ? { links } : {}),
    gridPos: { x, y, w: p.w, h: p.h ?? 8 },
    fieldConfig: { defaults, overrides },
    options:
      p.type === 'timeseries'
        ? {
            legend: { displayMode: 'table', placement: 'bottom', calcs: ['lastNotNull', 'max'] },
            tooltip: { mode: 'multi' },
          }
        : { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false } },
    targets: p.targets.map((tg, i) => ({
      refId: String.fromCharCode(65 + i),
      datasource: DS,
      expr: tg.expr,
      legendFormat: tg.legend,
      range: true,
    })),
  };
}

/**
 * An annotation from a Prometheus query: one event (a region while it lasts) wherever the query
 * returns a sample. The flat form (expr, titleFormat, ...) is what Grafana's Prometheus data
 * source reads and what grafonnet writes.
 */
function annotation(
  name: string,
  color: string,
  enable: boolean,
  expr: string,
  title: string,
  tagKeys: string,
): Record<string, unknown> {
  return {
    name,
    datasource: DS,
    enable,
    hide: false,
    iconColor: color,
    expr,
    titleFormat: title,
    textFormat: '{{instance}}',
    tagKeys,
    useValueForTime: false,
  };
}

/**
 * Exporter restarts (a new process start time) and table resyncs: the moments when the exporter's
 * view was rebuilt, so that a jump in flows or a gap in events can be told from a kernel event.
 */
const ANNOTATIONS = [
  annotation(
    'Exporter restarts',
    'orange',
    true,
    `changes(process_start_time_seconds{${SEL}}[$__rate_interval]) > 0`,
    'conntrack-exporter restarted',
    'instance',
  ),
  annotation(
    'Resyncs (overrun, drift, startup)',
    'red',
    true,
    `sum by (job, instance, reason) (increase(conntrack_collector_resyncs_total{${SEL},reason!~"${SCHEDULED_RESYNCS}"}[$__rate_interval])) > 0`,
    'Table resync: {{reason}}',
    'instance,reason',
  ),
  annotation(
    'Scheduled resyncs (periodic, silent)',
    'blue',
    false,
    `sum by (job, instance, reason) (increase(conntrack_collector_resyncs_total{${SEL},reason=~"${SCHEDULED_RESYNCS}"}[$__rate_interval])) > 0`,
    'Table resync: {{reason}}',
    'instance,reason',
  ),
];

function variable(name: string, label: string, query: string): Record<string, unknown> {
  return {
    name,
    label,
    type: 'query',
    datasource: DS,
    query: { query, refId: `${name}-var` },
    definition: query,
    refresh: 2,
    includeAll: true,
    multi: true,
    current: { text: 'All', value: '$__all' },
    sort: 1,
  };
}

export function buildDashboard(): Record<string, unknown> {
  const panels: Record<string, unknown>[] = [];
  let id = 1;
  let y = 0;
  for (const row of ROWS) {
    // A collapsed row holds its panels; an open one is followed by them.
    const nested: Record<string, unknown>[] = [];
    panels.push({
      id: id++,
      type: 'row',
      title: row.title,
      collapsed: row.collapsed === true,
      gridPos: { x: 0, y, w: 24, h: 1 },
      panels: nested,
    });
    y += 1;
    const target = row.collapsed ? nested : panels;
    const top = y;
    let x = 0;
    let rowHeight = 0;
    for (const p of row.panels) {
      if (x + p.w > 24) {
        x = 0;
        y += rowHeight;
        rowHeight = 0;
      }
      target.push(panel(p, id++, x, y));
      x += p.w;
      rowHeight = Math.max(rowHeight, p.h ?? 8);
    }
    y = row.collapsed ? top : y + rowHeight;
  }
  return {
    uid: 'conntrack-exporter',
    title: 'Conntrack',
    description:
      "Netfilter connection tracking: table fill against nf_conntrack_max, drops, who fills the table (top sources, destinations, creators, zones, marks), flows by state, and the exporter's health. From conntrack-exporter.",
    tags: ['conntrack', 'netfilter', 'linux'],
    // 42: the last schema version of Grafana's v1 dashboard API (Grafana 12); later Grafana
    // versions read it as it is
    schemaVersion: 42,
    version: 1,
    editable: true,
    graphTooltip: 1,
    refresh: '30s',
    time: { from: 'now-6h', to: 'now' },
    timezone: '',
    templating: {
      list: [
        {
          name: 'datasource',
          label: 'Data source',
          type: 'datasource',
          query: 'prometheus',
          current: {},
          hide: 0,
        },
        variable('job', 'Job', 'label_values(conntrack_exporter_build_info, job)'),
        variable(
          'instance',
          'Instance',
          'label_values(conntrack_exporter_build_info{job=~"$job"}, instance)',
        ),
      ],
    },
    annotations: { list: ANNOTATIONS },
    links: [
      {
        title: 'Runbooks',
        tooltip: 'What each conntrack alert means, how to diagnose and mitigate it',
        type: 'link',
        icon: 'doc',
        url: `${REPO}/tree/main/dashboards/runbooks`,
        targetBlank: true,
        asDropdown: false,
        includeVars: false,
        keepTime: false,
        tags: [],
      },
    ],
    panels,
  };
}

if (process.argv[1]?.endsWith('dashboard.js')) {
  process.stdout.write(`${JSON.stringify(buildDashboard(), null, 2)}\n`);
}
