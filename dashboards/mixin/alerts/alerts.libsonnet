// Alerts. Summaries are static (they group and deduplicate well in notifications); the instance,
// the network namespace (--netns.all) and the value are in the description.
local format = import '../lib/format.libsonnet';

{
  prometheusAlerts+:: {
    local c = $._config,
    local sel = c.conntrackExporterSelector,
    local ratio = format.ratio,
    local percent = format.percent,
    local duration = format.duration,
    // Where the alert is: the instance, and with --netns.all the network namespace, named by its
    // pod where the exporter found one (conntrack_netns_info with a uid; see lib/names.libsonnet),
    // looked up when the annotation is written, so the alert's labels stay what they were.
    // exported_namespace/exported_pod: the exporter's labels, when scraped without honor_labels.
    local where =
      '{{ $labels.instance }}{{ with $labels.netns }}'
      + '{{ with printf `conntrack_netns_info{job=%q,instance=%q,netns=%q,uid!=""}` $labels.job $labels.instance . | query }}'
      + '{{ with first . }} (pod {{ or .Labels.exported_namespace .Labels.namespace }}/{{ or .Labels.exported_pod .Labels.pod }}, network namespace {{ .Labels.netns }}){{ end }}'
      + '{{ else }} (network namespace {{ . }}){{ end }}{{ end }}',
    local alert(name, severity, expr, summary, description, forDuration=null) = {
      alert: name,
      expr: expr,
      labels: { severity: severity },
      annotations: {
        summary: summary,
        description: description,
        runbook_url: c.runbookURLPattern % name,
      },
    } + (if forDuration == null then {} else { 'for': forDuration }),

    groups+: [
      {
        name: 'conntrack-exporter.alerts',
        rules: [
          alert(
            'ConntrackTableNearlyFull',
            'warning',
            'instance:conntrack_entries:fill_ratio{%s} > %s' % [sel, ratio(c.fillWarningRatio)],
            'Conntrack table is more than %s full.' % percent(c.fillWarningRatio),
            'The conntrack table on %s is {{ $value | humanizePercentage }} full. When it is full the kernel drops packets of new connections.' % where,
            c.fillWarningFor,
          ),
          alert(
            'ConntrackTableFull',
            'critical',
            'instance:conntrack_entries:fill_ratio{%s} > %s' % [sel, ratio(c.fillCriticalRatio)],
            'Conntrack table is full or about to be.',
            'The conntrack table on %s is {{ $value | humanizePercentage }} full; new connections are being dropped or will be within minutes ("nf_conntrack table full, dropping packet").' % where,
            c.fillCriticalFor,
          ),
          alert(
            'ConntrackTablePredictedFull',
            'warning',
            |||
              (predict_linear(conntrack_entries{%(sel)s}[%(lookback)s], %(hours)d * 3600) >= ignoring(netns) group_left conntrack_entries_limit{%(sel)s})
              and on (job, instance, netns)
              (instance:conntrack_entries:fill_ratio{%(sel)s} > %(min)s)
            ||| % { sel: sel, lookback: c.predictLookback, hours: c.predictHours, min: ratio(c.predictMinFillRatio) },
            'Conntrack table is predicted to be full within %d hours.' % c.predictHours,
            'At the growth of the last %s, the conntrack table on %s reaches nf_conntrack_max within %d hours (predicted entries {{ $value | humanize }}).' % [format.period(c.predictLookback), where, c.predictHours],
            c.predictFor,
          ),
          alert(
            'ConntrackExpectationsNearlyFull',
            'warning',
            'conntrack_expectations{%(sel)s} / ignoring(netns) group_left conntrack_expectations_limit{%(sel)s} > %(ratio)s' % { sel: sel, ratio: ratio(c.expectationsWarningRatio) },
            'Conntrack expectations are nearly at their limit.',
            'Expectations in the conntrack table on %s are {{ $value | humanizePercentage }} of nf_conntrack_expect_max. At the limit, helpers (FTP, SIP, TFTP, H.323) cannot set up related flows: data connections and media streams fail ("nf_conntrack: expectation table full").' % where,
            c.expectationsFor,
          ),
          alert(
            'ConntrackPacketsDropped',
            'critical',
            |||
              sum by (job, instance, netns) (
                rate(conntrack_stat_drop_total{%(sel)s}[5m]) + rate(conntrack_stat_early_drop_total{%(sel)s}[5m])
              ) > 0
            ||| % { sel: sel },
            'The kernel drops connections because the conntrack table is full.',
            '{{ $value | printf "%%.2f" }} per second of new connections are dropped (drop) or evict other entries (early_drop) because the conntrack table on %s is full.' % where,
          ),
          alert(
            'ConntrackInsertFailed',
            'warning',
            'rate(conntrack_stat_insert_failed_total{%s}[5m]) > 0' % sel,
            'Conntrack inserts keep failing.',
            '{{ $value | printf "%%.2f" }} conntrack inserts per second fail on %s: packets of racing connections (often UDP DNS through NAT, as in Kubernetes) are dropped, seen as 5 s DNS delays.' % where,
            c.insertFailedFor,
          ),
          alert(
            'ConntrackNatPortsNearlyExhausted',
            'warning',
            'conntrack_snat_port_utilisation_max_ratio{%s} > %s' % [sel, ratio(c.natPortsWarningRatio)],
            'Source NAT ports to one destination are nearly exhausted.',
            'The fullest source NAT mapping on %s uses {{ $value | humanizePercentage }} of its port range (--nat.port-range): when it is full, new connections to that destination through that NAT address fail (insert_failed, dropped packets). conntrack_top_snat_mapping_flows names it.' % where,
            c.natPortsWarningFor,
          ),
          // One event socket for all namespaces: an overrun resyncs every namespace, one alert is
          // enough.
          alert(
            'ConntrackExporterLosingEvents',
            'warning',
            'max by (job, instance) (increase(conntrack_collector_overruns_total{%s}[%s])) > %d' % [sel, c.overrunsWindow, c.overrunsThreshold],
            'conntrack-exporter keeps losing conntrack events.',
            "The exporter's event socket overflowed {{ $value | humanize }} times in %s on {{ $labels.instance }}; every overflow costs a full table dump. Raise --netlink.rcvbuf." % duration(c.overrunsWindow),
          ),
          alert(
            'ConntrackExporterDrift',
            'warning',
            'abs(conntrack_collector_table_drift{%s}) > %d + %s * conntrack_entries{%s}' % [sel, c.driftAbsolute, ratio(c.driftRatio), sel],
            "conntrack-exporter's flow counts disagree with the kernel.",
            "The exporter's shadow table on %s differs from the kernel's entry count by {{ $value | humanize }} flows for %s; per-state counts are not to be trusted." % [where, duration(c.driftFor)],
            c.driftFor,
          ),
          // A socket the exporter could not reopen fails /healthz after about 31 s, so a kubelet
          // restarts the pod well before this fires; it is for hosts without one, and for
          // restarts that do not help.
          alert(
            'ConntrackExporterSocketDown',
            'warning',
            'conntrack_collector_netlink_socket_up{%s} == 0' % sel,
            'A conntrack-exporter netlink socket stays closed.',
            "The exporter's {{ $labels.socket }} netlink socket on %s has been closed for %s and could not be reopened: %s" % [
              where,
              duration(c.socketDownFor),
              '{{ if eq $labels.socket "events" }}the shadow table no longer follows the kernel (flow counts, states and lifetimes are stale){{ else }}the kernel values it reads are missing from the scrapes{{ end }}. /healthz answers 503.',
            ],
            c.socketDownFor,
          ),
          // Only a local process with CAP_NET_ADMIN over a network namespace the exporter listens in
          // can send these; nothing of it is applied, but someone is trying.
          alert(
            'ConntrackExporterForgedNetlinkMessages',
            'warning',
            'increase(conntrack_collector_netlink_not_from_kernel_total{%s}[%s]) > 0' % [sel, c.forgedWindow],
            'conntrack-exporter receives netlink messages the kernel did not send.',
            '{{ $value | humanize }} netlink datagrams that the kernel did not send (sender port id not 0) reached the exporter on {{ $labels.instance }} in %s and were dropped unread: a local process with CAP_NET_ADMIN in a network namespace the exporter listens in sends forged conntrack events or replies. The metrics are unaffected; find the sender.' % duration(c.forgedWindow),
          ),
          alert(
            'ConntrackExporterAttributionDegraded',
            'warning',
            'conntrack_attribution_degraded{%s} == 1' % sel,
            'conntrack-exporter is near its memory limit and attributes new addresses to "other".',
            'Attribution on {{ $labels.instance }} has been degraded for %s: the exporter\'s memory, with what it reserves for the table, reached 80%% of its limit (conntrack_exporter_memory_limit_bytes) and has not gone below 70%% since. New sources, destinations, zones, marks and NAT mappings are counted in "other" (conntrack_attribution_unattributed_flows_total). The table and the kernel counts stay exact. A flood of distinct addresses does this by design; otherwise raise the memory limit (README: what to reserve per nf_conntrack_max).' % duration(c.attributionDegradedFor),
            c.attributionDegradedFor,
          ),
          alert(
            'ConntrackExporterDown',
            'warning',
            'up{%s} == 0' % sel,
            'conntrack-exporter cannot be scraped.',
            'Prometheus failed to scrape {{ $labels.instance }} (job {{ $labels.job }}) for %s; conntrack table exhaustion on this host would go unnoticed.' % duration(c.exporterDownFor),
            c.exporterDownFor,
          ),
          alert(
            'ConntrackExporterAbsent',
            'warning',
            'absent(up{%s})' % sel,
            'No conntrack-exporter target is being scraped.',
            'Prometheus has no target matching {%s}; conntrack table exhaustion would go unnoticed everywhere.' % sel,
            c.exporterAbsentFor,
          ),
        ],
      },
    ],
  },
}
