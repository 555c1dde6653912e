// Recording rules. With --netns.all the per-namespace series carry a `netns` label while
// conntrack_entries_limit (nf_conntrack_max) stays unlabelled: the kernel compares every
// namespace's own count with the one global limit. `ignoring(netns) group_left` matches both ways
// (with and without the label), so the same rules serve both modes, per namespace.
{
  prometheusRules+:: {
    local sel = $._config.conntrackExporterSelector,
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
          for stat in ['drop', 'early_drop', 'insert_failed']
        ],
      },
    ],
  },
}
