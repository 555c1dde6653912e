// The fleet: every node of a job on one page, ranked, from the fleet recording rules (one series
// per node, so the page costs the same whatever the namespaces). Each node links to the Conntrack
// dashboard with its instance selected.
local d = import '../lib/dashboard.libsonnet';
local format = import '../lib/format.libsonnet';

{
  grafanaDashboards+:: {
    'conntrack-exporter-fleet.json':
      local c = $._config;
      local sel = '%s,job=~"$job"' % c.conntrackExporterSelector;
      local t = d.target;
      local fill = 'instance:conntrack_entries:max_fill_ratio{%s}' % sel;
      // What the kernel drops because a table is full: dropped packets and evicted entries.
      local drops = 'instance:conntrack_stat_drop:sum_rate5m{%(sel)s} + instance:conntrack_stat_early_drop:sum_rate5m{%(sel)s}' % { sel: sel };
      local node = $.grafanaDashboards['conntrack-exporter.json'];
      // On every series: the node's own dashboard, same data source, job and time range.
      local toNode = [{
        title: '%s: ${__field.labels.instance}' % node.title,
        url: '/d/%s?var-datasource=${datasource}&var-job=${__field.labels.job}&var-instance=${__field.labels.instance}&${__url_time_range}' % node.uid,
      }];
      // Any drop at all in the 5-minute window (one drop is 1/300 per second) is red.
      local dropThresholds = [{ color: 'green', value: null }, { color: 'red', value: 0.001 }];

      local rows = [
        {
          title: 'Fleet',
          panels: [
            {
              title: 'Nodes',
              description: 'Exporters reporting (one per node).',
              type: 'stat',
              unit: 'short',
              w: 6,
              h: 4,
              targets: [t('count(conntrack_exporter_build_info{%s})' % sel, 'nodes')],
            },
            {
              title: 'Nodes over %s full' % format.percent(c.fillWarningRatio),
              description: 'Nodes whose fullest conntrack table (with --netns.all: the fullest namespace) is above the ConntrackTableNearlyFull threshold.',
              type: 'stat',
              unit: 'short',
              w: 6,
              h: 4,
              runbooks: ['ConntrackTableNearlyFull', 'ConntrackTableFull'],
              thresholds: [{ color: 'green', value: null }, { color: 'orange', value: 1 }],
              targets: [t('count(%s > %s) or vector(0)' % [fill, format.ratio(c.fillWarningRatio)], 'nodes')],
            },
            {
              title: 'Nodes dropping',
              description: 'Nodes where the kernel dropped packets (drop) or evicted entries (early_drop) in the last 5 minutes because a conntrack table was full.',
              type: 'stat',
              unit: 'short',
              w: 6,
              h: 4,
              runbooks: ['ConntrackPacketsDropped'],
              thresholds: [{ color: 'green', value: null }, { color: 'red', value: 1 }],
              targets: [t('count((%s) > 0) or vector(0)' % drops, 'nodes')],
            },
            {
              title: 'Fullest node',
              description: 'Fill of the fullest conntrack table in the fleet, against nf_conntrack_max.',
              type: 'gauge',
              unit: 'percentunit',
              w: 6,
              h: 4,
              min: 0,
              max: 1,
              thresholds: d.fillThresholds(c),
              targets: [t('max(%s)' % fill, 'fullest')],
            },
            {
              title: 'Nodes closest to full',
              description: 'The 10 nodes whose conntrack table is fullest against nf_conntrack_max (with --netns.all: their fullest namespace), now. Click a bar for the node.',
              type: 'bargauge',
              unit: 'percentunit',
              w: 12,
              h: 10,
              min: 0,
              max: 1,
              instant: true,
              thresholds: d.fillThresholds(c),
              dataLinks: toNode,
              targets: [t('topk(10, %s)' % fill, '{{instance}}')],
            },
            {
              title: 'Nodes dropping most',
              description: 'The 10 nodes that drop most, per second over the last 5 minutes: packets of new connections dropped (drop) and entries evicted (early_drop) because a table was full. 0 everywhere is the healthy state. Click a bar for the node.',
              type: 'bargauge',
              unit: 'ops',
              w: 12,
              h: 10,
              min: 0,
              instant: true,
              runbooks: ['ConntrackPacketsDropped'],
              thresholds: dropThresholds,
              dataLinks: toNode,
              targets: [t('topk(10, %s)' % drops, '{{instance}}')],
            },
            {
              title: 'Fill over time by node',
              description: "Fill of each node's fullest conntrack table against nf_conntrack_max. Click a series for the node.",
              type: 'timeseries',
              unit: 'percentunit',
              w: 24,
              h: 10,
              min: 0,
              thresholds: d.fillThresholds(c),
              dataLinks: toNode,
              targets: [t(fill, '{{instance}}')],
            },
            {
              title: 'Drops by node',
              description: 'Packets dropped (drop) and entries evicted (early_drop) per second because a table was full, by node (5-minute rate). Click a series for the node.',
              type: 'timeseries',
              unit: 'ops',
              w: 12,
              runbooks: ['ConntrackPacketsDropped'],
              dataLinks: toNode,
              targets: [t(drops, '{{instance}}')],
            },
            {
              title: 'Insert failures by node',
              description: 'Conntrack inserts that lost a race against an equal entry (the NAT/DNS race known from Kubernetes), per second, by node (5-minute rate). Click a series for the node.',
              type: 'timeseries',
              unit: 'ops',
              w: 12,
              runbooks: ['ConntrackInsertFailed'],
              dataLinks: toNode,
              targets: [t('instance:conntrack_stat_insert_failed:sum_rate5m{%s}' % sel, '{{instance}}')],
            },
            {
              title: 'Nodes closest to source NAT port exhaustion',
              description: "The 10 nodes whose fullest source NAT mapping (NAT address, destination address and port, protocol) uses the largest share of --nat.port-range, now (with --netns.all: their fullest namespace's). At 100% new connections to that destination through that address fail; the insert failures above are the symptom. Click a bar for the node.",
              type: 'bargauge',
              unit: 'percentunit',
              w: 24,
              h: 10,
              min: 0,
              max: 1,
              instant: true,
              runbooks: ['ConntrackNatPortsNearlyExhausted'],
              thresholds: [
                { color: 'green', value: null },
                { color: 'orange', value: c.natPortsWarningRatio },
                { color: 'red', value: 1 },
              ],
              dataLinks: toNode,
              targets: [t('topk(10, instance:conntrack_snat_port_utilisation:max_ratio{%s})' % sel, '{{instance}}')],
            },
          ],
        },
      ];

      d.base {
        uid: 'conntrack-exporter-fleet',
        title: 'Conntrack / Fleet',
        description: 'Netfilter connection tracking across nodes: which are closest to a full table, which drop, and their fill over time; each node links to the Conntrack dashboard. Needs the recording rules of conntrack-exporter.rules.yml. From conntrack-exporter.',
        tags: c.dashboardTags,
        templating: {
          list: [
            d.datasourceVariable,
            d.variable('job', 'Job', 'label_values(conntrack_exporter_build_info{%s}, job)' % c.conntrackExporterSelector),
          ],
        },
        annotations: { list: [] },
        links: [
          d.dashboardLink(node, "One node: what fills its table, flows by state, the exporter's health"),
          d.runbooksLink(c),
        ],
        panels: d.layout(rows, c.runbookURLPattern),
      },
  },
}
