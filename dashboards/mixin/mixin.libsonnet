// conntrack-exporter's monitoring mixin: Prometheus recording rules and alerts, and Grafana
// dashboards, from one `_config` (config.libsonnet). See dashboards/README.md.
(import 'config.libsonnet') +
(import 'rules/rules.libsonnet') +
(import 'alerts/alerts.libsonnet') +
(import 'dashboards/dashboards.libsonnet')
