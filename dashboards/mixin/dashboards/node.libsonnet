// The Conntrack dashboard: one or a few nodes, everything the exporter knows about their tables.
local d = import '../lib/dashboard.libsonnet';
local format = import '../lib/format.libsonnet';
local names = import '../lib/names.libsonnet';

{
  grafanaDashboards+:: {
    'conntrack-exporter.json':
      local c = $._config;
      // The mixin's selector, then the dashboard's variables.
      local sel = '%s,job=~"$job",instance=~"$instance"' % c.conntrackExporterSelector;
      local t = d.target;
      // With --netns.all, per-namespace series named namespace/pod where the exporter knows it.
      local byNetns(expr) = names.byNetns(expr, sel);
      // Entries (of the namespaces `entries` selects) over the one global nf_conntrack_max.
      local fillRatio(entries) =
        'conntrack_entries{%s} / ignoring(netns) group_left conntrack_entries_limit{%s}' % [entries, sel];
      local fillThresholds = d.fillThresholds(c);
      // Resyncs that recur by design (every --resync.interval, and the re-dumps that follow silent
      // flows while any remain): an annotation each time would bury the others.
      local scheduledResyncs = 'periodic|silent';

      local rows = [
        {
          title: 'Table exhaustion',
          panels: [
            {
              title: 'Fill level',
              description: 'Entries in the conntrack table as a share of net.netfilter.nf_conntrack_max. At 100%% the kernel drops the first packet of every new connection ("nf_conntrack: table full, dropping packet"). Alerts: %s warning, %s critical. With --netns.all: the fullest namespace (see the Namespaces row).' % [format.percent(c.fillWarningRatio), format.percent(c.fillCriticalRatio)],
              type: 'gauge',
              unit: 'percentunit',
              w: 6,
              runbooks: ['ConntrackTableNearlyFull', 'ConntrackTableFull'],
              min: 0,
              max: 1,
              thresholds: fillThresholds,
              targets: [t('max by (instance) (%s)' % fillRatio(sel), '{{instance}}')],
            },
            {
              title: 'Entries and limit',
              description: 'Entries in the conntrack table (per network namespace the exporter runs in) and nf_conntrack_max (global to the host), drawn dashed. The gap is what is left.',
              type: 'timeseries',
              unit: 'short',
              w: 12,
              limitSeries: 'limit',
              targets: [
                t(byNetns('conntrack_entries{%s}' % sel), '{{instance}} {{workload}} entries'),
                t('conntrack_entries_limit{%s}' % sel, '{{instance}} limit'),
              ],
            },
            {
              title: 'Time until full',
              description: 'Time until the table reaches nf_conntrack_max at the growth rate of the last hour (deriv). When the table is not growing the estimate is effectively infinite (shown as a very large value).',
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
                  byNetns('(conntrack_entries_limit{%(sel)s} - ignoring(netns) group_right conntrack_entries{%(sel)s}) / clamp_min(deriv(conntrack_entries{%(sel)s}[1h]), 1e-9)' % { sel: sel }),
                  '{{instance}} {{workload}}',
                ),
              ],
            },
            {
              title: 'Drops because the table is full',
              description: 'drop: packets of new connections dropped because the table was full. early_drop: entries (not yet assured) evicted to make room. insert_failed: inserts that lost a race against an equal entry (the NAT/DNS race known from Kubernetes). Per second, summed over CPUs.',
              type: 'timeseries',
              unit: 'ops',
              w: 24,
              runbooks: ['ConntrackPacketsDropped', 'ConntrackInsertFailed'],
              targets: [
                t('rate(conntrack_stat_%s_total{%s}[$__rate_interval])' % [stat, sel], '{{instance}} %s' % stat)
                for stat in ['drop', 'early_drop', 'insert_failed']
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
              description: 'Flows in the table by source prefix (--top.source-prefix-ipv4/-ipv6): the top K (--top.k) and "other" for the rest, stacked, so the stack is the whole table. One source or prefix dominating is a scan, a flood, a retrying client or one busy pod. With --netns.all an address held by a followed namespace is named namespace/pod (or its netns label) beside it.',
              type: 'timeseries',
              unit: 'short',
              w: 12,
              h: 10,
              stack: true,
              targets: [t(names.byAddress('sum by (family, source) (conntrack_top_source_flows{%s})' % sel, 'source', sel), '{{source}} {{workload}}')],
            },
            {
              title: 'Top destinations',
              description: 'Flows in the table by destination address, protocol and port (ICMP: type): the top K and "other", stacked. A dead upstream or a DNS server under load shows here, often with a wall of SYN_SENT or UNREPLIED. With --netns.all an address held by a followed namespace is named namespace/pod (or its netns label).',
              type: 'timeseries',
              unit: 'short',
              w: 12,
              h: 10,
              stack: true,
              targets: [
                t(
                  names.byAddress('sum by (family, protocol, destination, port) (conntrack_top_destination_flows{%s})' % sel, 'destination', sel),
                  '{{destination}} {{protocol}} {{port}} {{workload}}',
                ),
              ],
            },
            {
              title: 'Fastest creators',
              description: 'New flows per second over the last minute by source prefix: the top K and "other", stacked. A scan or a flood shows here before the table fills.',
              type: 'timeseries',
              unit: 'ops',
              w: 12,
              stack: true,
              targets: [
                t(names.byAddress('sum by (family, source) (conntrack_top_source_new_flows_per_second{%s})' % sel, 'source', sel), '{{source}} {{workload}}'),
              ],
            },
            {
              title: 'Zones',
              description: 'Flows in the table by conntrack zone (CT zone: per-tenant or per-interface tables in one namespace): the top K and "other", stacked.',
              type: 'timeseries',
              unit: 'short',
              w: 6,
              stack: true,
              targets: [t('sum by (zone) (conntrack_zone_flows{%s})' % sel, 'zone {{zone}}')],
            },
            {
              title: 'Marks',
              description: 'Flows in the table by conntrack mark (ct mark / CONNMARK, decimal as conntrack -L prints it): the top K and "other", stacked.',
              type: 'timeseries',
              unit: 'short',
              w: 6,
              stack: true,
              targets: [t('sum by (mark) (conntrack_mark_flows{%s})' % sel, 'mark {{mark}}')],
            },
          ],
        },
        {
          title: 'NAT',
          panels: [
            {
              title: 'Source NAT port utilisation',
              description: 'The fullest source NAT mapping (NAT address, destination address and port, protocol): its flows over the ports of --nat.port-range, per node and namespace. At 100%% new connections to that destination through that address fail (insert_failed, drop). Alert: %s.' % format.percent(c.natPortsWarningRatio),
              type: 'timeseries',
              unit: 'percentunit',
              w: 8,
              min: 0,
              max: 1,
              runbooks: ['ConntrackNatPortsNearlyExhausted'],
              thresholds: [
                { color: 'green', value: null },
                { color: 'orange', value: c.natPortsWarningRatio },
                { color: 'red', value: 1 },
              ],
              targets: [t(byNetns('conntrack_snat_port_utilisation_max_ratio{%s}' % sel), '{{instance}} {{workload}}')],
            },
            {
              title: 'Top source NAT mappings',
              description: 'Port utilisation of the top K (--top.k) source NAT mappings by flows: NAT address -> destination address:port. The one near 100% is the destination to spread over more NAT addresses or ports (see the runbook).',
              type: 'timeseries',
              unit: 'percentunit',
              w: 8,
              min: 0,
              runbooks: ['ConntrackNatPortsNearlyExhausted'],
              targets: [
                t(
                  'conntrack_top_snat_mapping_port_utilisation_ratio{%s}' % sel,
                  '{{nat_source}} → {{destination}}:{{port}} {{protocol}}',
                ),
              ],
            },
            {
              title: 'insert_failed',
              description: 'Inserts the kernel refused per second. An exhausted source NAT mapping shows here (the flow finds no free reply tuple), as does the DNS/NAT race; next to the utilisation it tells the two apart.',
              type: 'timeseries',
              unit: 'ops',
              w: 8,
              runbooks: ['ConntrackNatPortsNearlyExhausted', 'ConntrackInsertFailed'],
              targets: [t(byNetns('rate(conntrack_stat_insert_failed_total{%s}[$__rate_interval])' % sel), '{{instance}} {{workload}}')],
            },
            {
              title: 'Top source NAT mappings by flows',
              description: 'Flows by source NAT mapping (NAT address -> destination address:port): the top K and "other", stacked.',
              type: 'timeseries',
              unit: 'short',
              w: 8,
              stack: true,
              targets: [
                t(
                  'sum by (nat_source, destination, port, protocol) (conntrack_top_snat_mapping_flows{%s})' % sel,
                  '{{nat_source}} → {{destination}}:{{port}} {{protocol}}',
                ),
              ],
            },
            {
              title: 'Destination NAT',
              description: 'Flows by destination NAT: the address asked for (a Service, a VIP) -> the backend it was sent to, the top K and "other", stacked. An uneven share between the backends of one address, or one backend collecting half-open flows, shows here.',
              type: 'timeseries',
              unit: 'short',
              w: 8,
              stack: true,
              targets: [
                t(
                  'sum by (destination, port, translated_destination, translated_port, protocol) (conntrack_top_dnat_flows{%s})' % sel,
                  '{{destination}}:{{port}} → {{translated_destination}}:{{translated_port}} {{protocol}}',
                ),
              ],
            },
            {
              title: 'Flows by translation',
              description: 'Flows in the table by address translation: snat (source NAT, masquerade), dnat (destination NAT, Services), snat_dnat (both), none.',
              type: 'timeseries',
              unit: 'short',
              w: 8,
              stack: true,
              targets: [t('sum by (nat) (conntrack_nat_flows{%s})' % sel, '{{nat}}')],
            },
          ],
        },
        {
          // Data only with --netns.all; collapsed, so the default mode hides it.
          title: 'Namespaces (--netns.all)',
          collapsed: true,
          panels: [
            {
              title: 'Top namespaces by fill',
              description: "With --netns.all: the 10 network namespaces whose conntrack table is fullest, each against the one global nf_conntrack_max (the kernel checks every namespace's own count against it). Each is named namespace/pod where the exporter found the pod behind it (its processes' cgroups and /var/log/pods), else by its netns label: the name under /var/run/netns (cni-<id>), else inode:<n>; conntrack_netns_info says which is the exporter's own.",
              type: 'timeseries',
              unit: 'percentunit',
              w: 12,
              min: 0,
              thresholds: fillThresholds,
              targets: [t(byNetns('topk(10, %s)' % fillRatio(sel + ',netns!=""')), '{{instance}} {{workload}}')],
            },
            {
              title: 'Drops by namespace (top 10)',
              description: "With --netns.all: packets dropped (drop) and entries evicted (early_drop) per second because a namespace's table was full, for the 10 namespaces that drop most.",
              type: 'timeseries',
              unit: 'ops',
              w: 8,
              targets: [
                t(
                  byNetns('topk(10, sum by (instance, netns) (rate(conntrack_stat_drop_total{%(sel)s,netns!=""}[$__rate_interval]) + rate(conntrack_stat_early_drop_total{%(sel)s,netns!=""}[$__rate_interval])))' % { sel: sel }),
                  '{{instance}} {{workload}}',
                ),
              ],
            },
            {
              title: 'Namespaces',
              description: 'With --netns.all: namespaces followed, those with a table in use (they have series), and those skipped because --netns.max was reached (raise it if this is not 0).',
              type: 'stat',
              unit: 'short',
              w: 4,
              targets: [
                t('sum by (instance) (conntrack_netns_%s{%s})' % [what, sel], '{{instance}} %s' % what)
                for what in ['followed', 'active', 'skipped']
              ],
            },
          ],
        },
        {
          title: 'What fills the table',
          panels: [
            {
              title: 'Flows by protocol and state',
              description: "Flows in the exporter's shadow table by family, protocol and state (TCP states as the kernel names them; UNREPLIED/REPLIED/ASSURED for protocols without states). A wall of SYN_SENT or UNREPLIED points at scans, floods or a dead upstream; TIME_WAIT at short-lived connections.",
              type: 'timeseries',
              unit: 'short',
              w: 12,
              h: 10,
              stack: true,
              targets: [
                t('sum by (family, protocol, state) (conntrack_flows{%s}) > 0' % sel, '{{family}} {{protocol}} {{state}}'),
              ],
            },
            {
              title: 'Events per second',
              description: 'Conntrack events received by the exporter: new flows, state updates, destroyed flows.',
              type: 'timeseries',
              unit: 'ops',
              w: 12,
              h: 10,
              targets: [t('sum by (event) (rate(conntrack_events_total{%s}[$__rate_interval]))' % sel, '{{event}}')],
            },
            {
              title: 'Flow lifetime (p50, p90, p99)',
              description: 'How long destroyed flows lived, by protocol, from conntrack_flow_lifetime_seconds (kernel start timestamps when nf_conntrack_timestamp=1, otherwise from the NEW event). Empty (NaN) while no flow ends.',
              type: 'timeseries',
              unit: 's',
              w: 12,
              targets: [
                t(
                  'histogram_quantile(%s, sum by (le, protocol) (rate(conntrack_flow_lifetime_seconds_bucket{%s}[$__rate_interval])))' % [q.q, sel],
                  '{{protocol}} %s' % q.name,
                )
                for q in [{ q: '0.5', name: 'p50' }, { q: '0.9', name: 'p90' }, { q: '0.99', name: 'p99' }]
              ],
            },
            {
              title: 'Time in state (p90)',
              description: 'How long flows stayed in a state before leaving it (90th percentile), by protocol and state: slow handshakes show in SYN_SENT/SYN_RECV, lingering closes in TIME_WAIT and CLOSE_WAIT.',
              type: 'timeseries',
              unit: 's',
              w: 12,
              targets: [
                t(
                  'histogram_quantile(0.9, sum by (le, protocol, state) (rate(conntrack_state_duration_seconds_bucket{%s}[$__rate_interval])))' % sel,
                  '{{protocol}} {{state}}',
                ),
              ],
            },
            {
              title: 'State transitions (top 10)',
              description: 'The ten most frequent state changes per second, by protocol and the states left and entered.',
              type: 'timeseries',
              unit: 'ops',
              w: 12,
              targets: [
                t(
                  'topk(10, sum by (protocol, from, to) (rate(conntrack_state_transitions_total{%s}[$__rate_interval])))' % sel,
                  '{{protocol}} {{from}} → {{to}}',
                ),
              ],
            },
            {
              title: 'Other kernel counters',
              description: 'invalid: packets conntrack could not track; error: ICMP errors about unknown flows and other conntrack errors; search_restart: lookups restarted by concurrent hash changes; clash_resolve: insert clashes resolved by reusing the existing entry. Per second.',
              type: 'timeseries',
              unit: 'ops',
              w: 12,
              targets: [
                t('rate(conntrack_stat_%s_total{%s}[$__rate_interval])' % [stat, sel], '{{instance}} %s' % stat)
                for stat in ['invalid', 'error', 'search_restart', 'clash_resolve']
              ],
            },
          ],
        },
        {
          title: 'Kernel memory, expectations and timeouts',
          panels: [
            {
              title: 'Kernel memory of the table',
              description: 'Kernel memory the conntrack table takes on the node (all namespaces), stacked: slab, the nf_conntrack slab cache (objects in its slabs x object size, 256 bytes per entry on Linux 6.18 x86-64; a shrinking table gives it back only as slabs empty); hash, the hash table (nf_conntrack_buckets x 8 bytes). Extensions (accounting, timestamps, NAT, helpers) live in other caches and are not included. No slab series where the cache is merged with another.',
              type: 'timeseries',
              unit: 'bytes',
              w: 8,
              stack: true,
              targets: [t('conntrack_kernel_memory_bytes{%s}' % sel, '{{instance}} {{part}}')],
            },
            {
              title: 'Expectations and limit',
              description: 'Expectations: related flows announced by conntrack helpers (FTP data connections, SIP/H.323 media, TFTP transfers), per network namespace, against net.netfilter.nf_conntrack_expect_max (one for the host, each namespace counted against it), drawn dashed. Alert at %s.' % format.percent(c.expectationsWarningRatio),
              type: 'timeseries',
              unit: 'short',
              w: 8,
              limitSeries: 'limit',
              runbooks: ['ConntrackExpectationsNearlyFull'],
              targets: [
                t(byNetns('conntrack_expectations{%s}' % sel), '{{instance}} {{workload}} expectations'),
                t('conntrack_expectations_limit{%s}' % sel, '{{instance}} limit'),
              ],
            },
            {
              title: 'Expectations per second',
              description: 'create: expectations helpers created; new: flows that arrived as an expected one (the FTP data connection, the TFTP answer); delete: expectations removed (used, timed out, or gone with their flow). Summed over CPUs.',
              type: 'timeseries',
              unit: 'ops',
              w: 8,
              targets: [
                t('sum by (instance) (rate(conntrack_stat_expect_%s_total{%s}[$__rate_interval]))' % [stat, sel], '{{instance}} %s' % stat)
                for stat in ['create', 'new', 'delete']
              ],
            },
            {
              title: 'Timeouts',
              description: 'How long the kernel keeps a flow of a protocol in a state without packets (net.netfilter.nf_conntrack_*_timeout*), the largest over the selected instances and namespaces. A state that piles up in "Flows by protocol and state" holds about (flows entering it per second) x (its timeout) flows: shortening the timeout shrinks it in proportion. UDP/GRE: UNREPLIED is the plain timeout, ASSURED the _stream one.',
              type: 'bargauge',
              unit: 's',
              w: 24,
              h: 10,
              instant: true,
              runbooks: ['ConntrackTableNearlyFull'],
              targets: [t('max by (protocol, state) (conntrack_timeout_seconds{%s})' % sel, '{{protocol}} {{state}}')],
            },
          ],
        },
        {
          title: 'Collector health',
          panels: [
            {
              title: 'Lost events',
              runbooks: ['ConntrackExporterLosingEvents'],
              description: "Overruns: times the exporter's event socket buffer overflowed (each costs a full table dump). Lost: event messages the kernel dropped. Lasting losses: raise --netlink.rcvbuf.",
              type: 'timeseries',
              unit: 'short',
              w: 8,
              targets: [
                t('increase(conntrack_collector_overruns_total{%s}[$__rate_interval])' % sel, '{{instance}} overruns'),
                t('increase(conntrack_collector_events_lost_total{%s}[$__rate_interval])' % sel, '{{instance}} events lost'),
              ],
            },
            {
              title: 'Resyncs by reason',
              description: 'Full table dumps by reason: startup, overrun (events lost), drift (the kernel entry count and the shadow table disagreed), periodic (--resync.interval), silent (following flows the kernel sends no events for). Failed: dumps that failed, the table kept as it was.',
              type: 'timeseries',
              unit: 'short',
              w: 8,
              targets: [
                t('sum by (reason) (increase(conntrack_collector_resyncs_total{%s}[$__rate_interval]))' % sel, '{{reason}}'),
                t(
                  'sum by (reason) (increase(conntrack_collector_resync_failures_total{%s}[$__rate_interval]))' % sel,
                  '{{reason}} failed',
                ),
              ],
            },
            {
              title: 'Drift and silent flows',
              runbooks: ['ConntrackExporterDrift'],
              description: 'Drift: shadow-table flows minus kernel entries at scrape time (small transient values are normal on a busy host; a larger one triggers a drift resync). Silent: flows the kernel sends no events for (created while no process listened, nf_conntrack_events=2), followed by re-dumps.',
              type: 'timeseries',
              unit: 'short',
              w: 8,
              targets: [
                t('conntrack_collector_table_drift{%s}' % sel, '{{instance}} drift'),
                t('conntrack_collector_silent_flows{%s}' % sel, '{{instance}} silent'),
              ],
            },
            {
              title: 'Decode errors',
              description: 'Malformed ctnetlink messages the exporter counted and skipped, per second. Should be 0.',
              type: 'timeseries',
              unit: 'ops',
              w: 8,
              targets: [t('rate(conntrack_collector_decode_errors_total{%s}[$__rate_interval])' % sel, '{{instance}}')],
            },
            {
              title: 'Netlink sockets',
              runbooks: ['ConntrackExporterSocketDown'],
              description: 'Whether each netlink socket is open (1) or failed and being reopened (0): events (one for every namespace), nsid, and per namespace stats and dump. Failures: errors that closed a socket, which was reopened. One closed through 5 attempts (31 s) fails /healthz.',
              type: 'timeseries',
              unit: 'short',
              w: 8,
              targets: [
                t('min by (instance, socket) (conntrack_collector_netlink_socket_up{%s})' % sel, '{{instance}} {{socket}} up'),
                t(
                  'sum by (instance, socket) (increase(conntrack_collector_netlink_socket_failures_total{%s}[$__rate_interval]))' % sel,
                  '{{instance}} {{socket}} failures',
                ),
              ],
            },
            {
              title: 'Messages not from the kernel',
              runbooks: ['ConntrackExporterForgedNetlinkMessages'],
              description: 'Netlink datagrams dropped because the kernel did not send them (sender port id not 0), per second: forged conntrack events or replies from a local process with CAP_NET_ADMIN. Never applied. Should be 0.',
              type: 'timeseries',
              unit: 'ops',
              w: 8,
              targets: [t('rate(conntrack_collector_netlink_not_from_kernel_total{%s}[$__rate_interval])' % sel, '{{instance}}')],
            },
            {
              title: 'Attribution under the memory budget',
              runbooks: ['ConntrackExporterAttributionDegraded'],
              description: 'Degraded (1): memory with the table\'s reserve reached 80% of the limit, so new sources, destinations, zones, marks and NAT mappings count in "other" until it is below 70%. Unattributed: flows per second counted in "other" for want of room, by dimension. The table and the kernel counts are never degraded.',
              type: 'timeseries',
              unit: 'short',
              w: 8,
              targets: [
                t('max by (instance) (conntrack_attribution_degraded{%s})' % sel, '{{instance}} degraded'),
                t(
                  'sum by (instance, dimension) (rate(conntrack_attribution_unattributed_flows_total{%s}[$__rate_interval]))' % sel,
                  '{{instance}} unattributed {{dimension}}',
                ),
              ],
            },
            {
              title: 'Exporter memory',
              description: 'Resident memory of the exporter process; the shadow table costs about 130 bytes per flow.',
              type: 'timeseries',
              unit: 'bytes',
              w: 8,
              targets: [t('process_resident_memory_bytes{%s}' % sel, '{{instance}}')],
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
                  'count by (version, node_version, kernel) (conntrack_exporter_build_info{%s})' % sel,
                  '{{version}} node {{node_version}} kernel {{kernel}}',
                ),
              ],
            },
          ],
        },
      ];

      d.base {
        uid: 'conntrack-exporter',
        title: 'Conntrack',
        description: "Netfilter connection tracking: table fill against nf_conntrack_max, drops, who fills the table (top sources, destinations, creators, zones, marks), flows by state, and the exporter's health. From conntrack-exporter.",
        tags: c.dashboardTags,
        templating: {
          list: [
            d.datasourceVariable,
            d.variable('job', 'Job', 'label_values(conntrack_exporter_build_info{%s}, job)' % c.conntrackExporterSelector),
            d.variable('instance', 'Instance', 'label_values(conntrack_exporter_build_info{%s,job=~"$job"}, instance)' % c.conntrackExporterSelector),
          ],
        },
        // Exporter restarts (a new process start time) and table resyncs: the moments when the
        // exporter's view was rebuilt, so that a jump in flows or a gap in events can be told from
        // a kernel event.
        annotations: {
          list: [
            d.annotation(
              'Exporter restarts',
              'orange',
              true,
              'changes(process_start_time_seconds{%s}[$__rate_interval]) > 0' % sel,
              'conntrack-exporter restarted',
              'instance',
            ),
            d.annotation(
              'Resyncs (overrun, drift, startup)',
              'red',
              true,
              'sum by (job, instance, reason) (increase(conntrack_collector_resyncs_total{%s,reason!~"%s"}[$__rate_interval])) > 0' % [sel, scheduledResyncs],
              'Table resync: {{reason}}',
              'instance,reason',
            ),
            d.annotation(
              'Scheduled resyncs (periodic, silent)',
              'blue',
              false,
              'sum by (job, instance, reason) (increase(conntrack_collector_resyncs_total{%s,reason=~"%s"}[$__rate_interval])) > 0' % [sel, scheduledResyncs],
              'Table resync: {{reason}}',
              'instance,reason',
            ),
          ],
        },
        links: [
          d.runbooksLink(c),
          d.dashboardLink($.grafanaDashboards['conntrack-exporter-fleet.json'], 'Every node: closest to full, dropping, fill over time'),
        ],
        panels: d.layout(rows, c.runbookURLPattern),
      },
  },
}
