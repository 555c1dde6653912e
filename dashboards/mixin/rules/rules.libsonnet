// Recording rules. With --netns.all the per-namespace series carry a `netns` label while
// conntrack_entries_limit (nf_conntrack_max) stays unlabelled: the kernel compares every
// namespace's own count with the one global limit. `ignoring(netns) group_left` matches both ways
// (with and without the label), so the same rules serve both modes, per namespace.
{
  prometheusRules+:: {
    local sel = $._config.conntrackExporterSelector,
    local stats = ['drop', 'early_drop', 'insert_failed'],
    groups+: [
      {
        name: 'conntrack-exporter.recording',
        rules: [
                 {
                   record: 'instance:conntrack_entries:fill_ratio',
                   expr: 'conntrack_entries{%s} / ignoring(netns) group_left conntrack_entries_limit{%s}' % [sel, sel],
                 },
               ] + [
                 {
                   record: 'instance:conntrack_stat_%s:rate5m' % stat,
                   expr: 'rate(conntrack_stat_%s_total{%s}[5m])' % [stat, sel],
                 }
                 for stat in stats
               ]
               // The fleet: one series per node (per target: `without (netns)` keeps job, instance and
               // whatever target labels the selector may use, such as a cluster), for the fleet
               // dashboard to rank hundreds of nodes without touching their per-namespace series. In
               // the same group as their inputs, so they see this evaluation's values.
               + [
                 {
                   // The fullest namespace: the kernel drops in a namespace when its own count reaches
                   // the global limit, so that is how close the node is to dropping.
                   record: 'instance:conntrack_entries:max_fill_ratio',
                   expr: 'max without (netns) (instance:conntrack_entries:fill_ratio{%s})' % sel,
                 },
               ] + [
          {
            record: 'instance:conntrack_stat_%s:sum_rate5m' % stat,
            expr: 'sum without (netns) (instance:conntrack_stat_%s:rate5m{%s})' % [stat, sel],
          }
          for stat in stats
        ] + [
          {
            // The fullest source NAT mapping of the node, over its namespaces: how close the node
            // is to failing new connections to one destination through one NAT address.
            record: 'instance:conntrack_snat_port_utilisation:max_ratio',
            expr: 'max without (netns) (conntrack_snat_port_utilisation_max_ratio{%s})' % sel,
          },
        ],
      },
    ],
  },
}
