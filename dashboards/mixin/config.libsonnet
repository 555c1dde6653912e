{
  _config+:: {
    // Label matchers (without braces) that select conntrack-exporter's series. Inserted into every
    // vector selector of every rule, alert, dashboard query, variable and annotation. The default
    // matches any job whose name contains "conntrack": the Kubernetes manifests' job
    // (conntrack-exporter, from the ServiceMonitor's jobLabel) and the README's scrape example
    // (conntrack). Narrow it to your job, e.g. 'job="conntrack-exporter"'. It must not be empty
    // (`up{}` is not PromQL).
    conntrackExporterSelector: 'job=~".*conntrack.*"',

    // Table fill: entries over net.netfilter.nf_conntrack_max, as a ratio. At 1 the kernel drops
    // the first packet of every new connection.
    fillWarningRatio: 0.80,
    fillWarningFor: '5m',
    fillCriticalRatio: 0.95,
    fillCriticalFor: '2m',

    // ConntrackTablePredictedFull: at the growth of the last `predictLookback`, the table reaches
    // the limit within `predictHours`, while already more than `predictMinFillRatio` full (so that
    // a nearly empty table that grows does not page).
    predictLookback: '1h',
    predictHours: 4,
    predictMinFillRatio: 0.50,
    predictFor: '15m',

    // ConntrackExpectationsNearlyFull: expectations over net.netfilter.nf_conntrack_expect_max,
    // as a ratio. At 1 helpers (FTP, SIP, TFTP, ...) can announce no more related flows.
    expectationsWarningRatio: 0.80,
    expectationsFor: '5m',

    // ConntrackInsertFailed: insert_failed keeps increasing for this long.
    insertFailedFor: '15m',

    // ConntrackExporterLosingEvents: more than this many event-socket overruns in the window.
    overrunsThreshold: 3,
    overrunsWindow: '30m',

    // ConntrackExporterDrift: |shadow table - kernel count| above driftAbsolute + driftRatio x
    // entries (events in flight make small differences normal on a busy host).
    driftAbsolute: 100,
    driftRatio: 0.01,
    driftFor: '15m',

    // ConntrackNatPortsNearlyExhausted: the fullest source NAT mapping (NAT address, destination
    // address and port, protocol) uses more than this share of --nat.port-range for this long.
    // At 1 new connections to that destination through that address fail (insert_failed, drop).
    natPortsWarningRatio: 0.80,
    natPortsWarningFor: '5m',

    // ConntrackExporterSocketDown: a netlink socket closed and not reopened for this long.
    socketDownFor: '5m',
    // ConntrackExporterForgedNetlinkMessages: any datagram not from the kernel in this window.
    forgedWindow: '10m',
    // ConntrackExporterAttributionDegraded: the memory budget has degraded attribution this long.
    attributionDegradedFor: '30m',

    exporterDownFor: '5m',
    exporterAbsentFor: '15m',

    // Each alert's runbook_url: this pattern with the alert name for %s. runbookIndexURL is the
    // folder of all runbooks, linked from the dashboards.
    runbookURLPattern: 'https://github.com/conntrack-exporter/conntrack-exporter/blob/main/dashboards/runbooks/%s.md',
    runbookIndexURL: 'https://github.com/conntrack-exporter/conntrack-exporter/tree/main/dashboards/runbooks',

    dashboardTags: ['conntrack', 'netfilter', 'linux'],
  },
}
