/** The Grafana dashboard: structure, conventions, and PromQL that parses. */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from '../paths.js';
import {
  allPanels,
  annotationQueries,
  DASHBOARD_FILE,
  dashboardQueries,
  FLEET_DASHBOARD_FILE,
  NETNS_ROW,
  type PanelQuery,
  RULES_FILE,
  ruleExpressions,
  vectorSelectors,
} from './queries.js';
import { needTool, promtool } from './tools.js';

// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a JS template
const DS_UID = '${datasource}';
const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as Record<string, unknown>;
const fleet = JSON.parse(readFileSync(FLEET_DASHBOARD_FILE, 'utf8')) as Record<string, unknown>;
/** What Grafana would send for "All" selected, enough for PromQL to parse. */
const ALL = { __rate_interval: '1m', job: '.+', instance: '.+' };

/** Asserts that promtool parses every query, as the expression of a recording rule. */
function assertParses(queries: { expr: string }[]): void {
  const dir = mkdtempSync(join(tmpdir(), 'ctx-dash-'));
  try {
    const rules = queries.map(
      (q, i) => `      - record: dashboard:query:${i}\n        expr: ${JSON.stringify(q.expr)}`,
    );
    writeFileSync(join(dir, 'q.yml'), `groups:\n  - name: dashboard\n    rules:\n${rules.join('\n')}\n`);
    const r = promtool(['check', 'rules', join(dir, 'q.yml')]);
    assert.equal(r.status, 0, r.output);
    assert.match(r.output, new RegExp(`SUCCESS: ${queries.length} rules found`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Panel {
  title?: string;
  links?: { title?: string; url?: string; targetBlank?: boolean }[];
  type?: string;
  description?: string;
  datasource?: { type?: string; uid?: string };
  fieldConfig?: { defaults?: { unit?: string; links?: { title?: string; url?: string }[] } };
  targets?: { expr?: string; instant?: boolean; datasource?: { uid?: string } }[];
}

interface DashboardLink {
  title: string;
  type: string;
  url: string;
  includeVars?: boolean;
  keepTime?: boolean;
}

/** Grafana's data link variables: the series' labels and the dashboard's time range. */
const LINK_VARS = {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a JS template
  instance: '${__field.labels.instance}',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a JS template
  job: '${__field.labels.job}',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a JS template
  timeRange: '${__url_time_range}',
};

/** A fleet panel's data link opens the node dashboard on the clicked node, with variables it has. */
function assertNodeLink(panel: string, url: string): void {
  const node = `/d/${dashboard['uid']}?`;
  assert.ok(url.startsWith(node), `${panel}: ${url} opens the node dashboard`);
  const params = new URLSearchParams(url.slice(node.length));
  assert.equal(params.get('var-instance'), LINK_VARS.instance, `${panel}: the clicked node`);
  assert.equal(params.get('var-job'), LINK_VARS.job, `${panel}: its job`);
  assert.equal(params.get('var-datasource'), DS_UID, `${panel}: the same data source`);
  assert.ok(url.includes(LINK_VARS.timeRange), `${panel}: the same time range`);
  const nodeVars = variableNames(dashboard);
  for (const name of params.keys()) {
    if (name.startsWith('var-'))
      assert.ok(nodeVars.includes(name.slice(4)), `${panel}: ${name} exists there`);
  }
}

const variableNames = (d: Record<string, unknown>): string[] =>
  (d['templating'] as { list: { name: string }[] }).list.map((v) => v.name);

describe('Grafana dashboard', () => {
  const panels = allPanels(dashboard) as Panel[];

  it('has the current schemaVersion and datasource, job and instance variables', () => {
    // the last version of Grafana's v1 dashboard schema (DASHBOARD_SCHEMA_VERSION in Grafana 12)
    assert.equal(dashboard['schemaVersion'], 42);
    const vars = (dashboard['templating'] as { list: { name: string; type: string; query: unknown }[] }).list;
    const byName = new Map(vars.map((v) => [v.name, v]));
    assert.equal(byName.get('datasource')?.type, 'datasource');
    assert.equal(byName.get('datasource')?.query, 'prometheus');
    assert.equal(byName.get('job')?.type, 'query');
    assert.equal(byName.get('instance')?.type, 'query');
  });

  it('keeps the --netns.all row collapsed, with its panels inside', () => {
    const rows = (
      dashboard['panels'] as { type: string; title: string; collapsed?: boolean; panels?: Panel[] }[]
    ).filter((p) => p.type === 'row');
    const netns = rows.find((r) => r.title === NETNS_ROW);
    assert.equal(netns?.collapsed, true, `row ${NETNS_ROW}, collapsed`);
    assert.ok((netns.panels ?? []).length >= 3);
  });

  it('every panel has a description, a unit, the datasource variable and a query', () => {
    assert.ok(panels.length >= 12);
    for (const p of panels) {
      assert.ok((p.description ?? '').length > 20, `${p.title}: description`);
      assert.ok(p.fieldConfig?.defaults?.unit, `${p.title}: unit`);
      assert.equal(p.datasource?.uid, DS_UID, `${p.title}: datasource`);
      assert.ok((p.targets ?? []).length > 0, `${p.title}: a query`);
      for (const t of p.targets ?? []) {
        assert.ok((t.expr ?? '').trim() !== '', `${p.title}: empty query`);
        assert.equal(t.datasource?.uid, DS_UID, `${p.title}: target datasource`);
        assert.match(
          t.expr!,
          /job=~"\$job",instance=~"\$instance"/,
          `${p.title}: filters by job and instance`,
        );
      }
    }
    assert.doesNotMatch(JSON.stringify(dashboard), /"uid":\s*"(?!\$\{datasource\}|conntrack-exporter")/);
  });

  it('shows what an exhaustion incident needs', () => {
    const exprs = panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? '')).join('\n');
    for (const m of [
      'conntrack_entries_limit',
      'conntrack_stat_drop_total',
      'conntrack_stat_early_drop_total',
      'conntrack_stat_insert_failed_total',
      'conntrack_flows',
      'conntrack_events_total',
      'conntrack_flow_lifetime_seconds_bucket',
      'conntrack_state_duration_seconds_bucket',
      'conntrack_collector_overruns_total',
      'conntrack_collector_resyncs_total',
      'conntrack_collector_table_drift',
      'conntrack_top_source_flows',
      'conntrack_top_destination_flows',
      'conntrack_top_source_new_flows_per_second',
      'conntrack_zone_flows',
      'conntrack_mark_flows',
      'deriv(',
    ]) {
      assert.ok(exprs.includes(m), m);
    }
    assert.ok(panels.some((p) => p.type === 'gauge' && p.fieldConfig?.defaults?.unit === 'percentunit'));
  });

  it('links the runbooks: the folder from the dashboard, each alert’s from the panels that show it', () => {
    // where the alert rules say the runbooks are
    const rules = readFileSync(RULES_FILE, 'utf8');
    const ruleUrls = [...rules.matchAll(/runbook_url: (\S+)/g)].map((m) => m[1]!);
    assert.ok(ruleUrls.length > 0);
    const RUNBOOK_BASE = ruleUrls[0]!.replace(/[^/]+\.md$/, '');
    for (const u of ruleUrls) assert.ok(u.startsWith(RUNBOOK_BASE), u);

    const links = dashboard['links'] as { title: string; type: string; url: string }[];
    const runbooksDir = RUNBOOK_BASE.replace('/blob/', '/tree/').replace(/\/$/, '');
    assert.ok(
      links.some((l) => l.type === 'link' && l.url === runbooksDir),
      'a dashboard link to dashboards/runbooks',
    );

    const linked = new Set<string>();
    for (const p of panels) {
      for (const l of p.links ?? []) {
        assert.ok(l.url?.startsWith(RUNBOOK_BASE), `${p.title}: ${l.url}`);
        const file = l.url!.slice(RUNBOOK_BASE.length);
        assert.ok(readdirSync(`${ROOT}dashboards/runbooks`).includes(file), `${p.title}: ${file} exists`);
        assert.equal(l.title, `Runbook: ${file.replace(/\.md$/, '')}`);
        assert.equal(l.targetBlank, true);
        linked.add(file);
      }
    }
    assert.deepEqual(
      [...linked].sort(),
      readdirSync(`${ROOT}dashboards/runbooks`)
        .filter((f) => f.endsWith('.md'))
        .sort(),
      'every runbook is linked from a panel',
    );
  });

  it('annotates exporter restarts and resyncs, on the datasource variable, per job and instance', () => {
    const list = (dashboard['annotations'] as { list: Record<string, unknown>[] }).list;
    const byName = new Map(list.map((a) => [a['name'] as string, a]));
    const restart = byName.get('Exporter restarts');
    const resync = byName.get('Resyncs (overrun, drift, startup)');
    const scheduled = byName.get('Scheduled resyncs (periodic, silent)');
    assert.match(String(restart?.['expr']), /^changes\(process_start_time_seconds\{/);
    assert.match(String(resync?.['expr']), /increase\(conntrack_collector_resyncs_total\{/);
    assert.match(String(scheduled?.['expr']), /increase\(conntrack_collector_resyncs_total\{/);
    assert.equal(restart?.['enable'], true);
    assert.equal(resync?.['enable'], true);
    assert.equal(scheduled?.['enable'], false, 'recurring by design: off unless asked for');
    for (const a of list) {
      assert.equal((a['datasource'] as { uid?: string }).uid, DS_UID, `${a['name']}: datasource`);
      assert.match(String(a['expr']), /job=~"\$job",instance=~"\$instance"/, `${a['name']}: filters`);
      assert.match(String(a['titleFormat']), /\S/, `${a['name']}: title`);
    }
  });

  it('annotations fire at a restart and an unscheduled resync, and stay silent otherwise (promtool)', (t) => {
    if (!needTool(t, 'promtool')) return;
    const q = new Map(
      annotationQueries(dashboard, { __rate_interval: '2m', job: '.+', instance: '.+' }).map((a) => [
        a.name,
        a.expr,
      ]),
    );
    // instance a restarts at minute 6 and resyncs after an overrun then; b runs throughout;
    // a's silent re-dumps recur every minute
    const at = (name: string, min: number, samples: string[]) =>
      `      - expr: ${JSON.stringify(q.get(name))}\n        eval_time: ${min}m\n        exp_samples:${
        samples.length === 0
          ? ' []'
          : samples.map((l) => `\n          - labels: '${l}'\n            value: 1`).join('')
      }`;
    const test = [
      'rule_files: [empty.yml]',
      'evaluation_interval: 1m',
      'tests:',
      '  - interval: 1m',
      '    input_series:',
      `      - series: 'process_start_time_seconds{job="conntrack",instance="a"}'`,
      "        values: '100x5 400x10'",
      `      - series: 'process_start_time_seconds{job="conntrack",instance="b"}'`,
      "        values: '50x15'",
      `      - series: 'conntrack_collector_resyncs_total{job="conntrack",instance="a",reason="overrun"}'`,
      "        values: '0x5 1x10'",
      `      - series: 'conntrack_collector_resyncs_total{job="conntrack",instance="a",reason="silent"}'`,
      "        values: '0+1x15'",
      '    promql_expr_test:',
      at('Exporter restarts', 6, ['{job="conntrack",instance="a"}']),
      at('Exporter restarts', 4, []),
      at('Exporter restarts', 12, []),
      at('Resyncs (overrun, drift, startup)', 6, ['{job="conntrack",instance="a",reason="overrun"}']),
      at('Resyncs (overrun, drift, startup)', 12, []),
      '',
    ].join('\n');
    const dir = mkdtempSync(join(tmpdir(), 'ctx-anno-'));
    try {
      writeFileSync(join(dir, 'empty.yml'), 'groups: []\n');
      writeFileSync(join(dir, 'test.yml'), test);
      const r = promtool(['test', 'rules', 'test.yml'], dir);
      assert.equal(r.status, 0, `${r.output}\n${test}`);
      assert.match(r.output, /SUCCESS/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // the scheduled resyncs are there too, for whoever turns them on
    assert.match(q.get('Scheduled resyncs (periodic, silent)') ?? '', /reason=~"periodic\|silent"/);
  });

  it('names namespaces and addresses namespace/pod, else by netns, and leaves the default mode as it was (promtool)', (t) => {
    if (!needTool(t, 'promtool')) return;
    const queries = dashboardQueries(dashboard, ALL);
    const panel = (title: string) => queries.find((q) => q.panel === title)!.expr;
    // Instance "plain" runs in the default mode (no netns label). Instance "k8s" runs --netns.all:
    // cni-1 is a pod's; inode:5 is nobody's, and its info carries only the pod and namespace labels
    // Prometheus Operator adds to every series (the exporter's own), no uid; cni-2 has no info.
    const test = [
      'rule_files: [empty.yml]',
      'evaluation_interval: 1m',
      'tests:',
      '  - interval: 1m',
      '    input_series:',
      `      - series: 'conntrack_entries{job="conntrack",instance="plain"}'`,
      "        values: '7x5'",
      ...['cni-1', 'inode:5', 'cni-2'].flatMap((netns, i) => [
        `      - series: 'conntrack_entries{job="conntrack",instance="k8s",netns="${netns}"}'`,
        `        values: '${i + 1}x5'`,
      ]),
      `      - series: 'conntrack_netns_info{job="conntrack",instance="k8s",netns="cni-1",own="false",pod="web-1",namespace="shop",uid="u-1"}'`,
      "        values: '1x5'",
      `      - series: 'conntrack_netns_info{job="conntrack",instance="k8s",netns="inode:5",own="true",pod="conntrack-exporter-x",namespace="monitoring"}'`,
      "        values: '1x5'",
      ...['10.0.0.5', '10.0.0.6', '10.0.0.7', 'other'].flatMap((source, i) => [
        `      - series: 'conntrack_top_source_flows{job="conntrack",instance="k8s",family="ipv4",source="${source}"}'`,
        `        values: '${(i + 1) * 10}x5'`,
      ]),
      `      - series: 'conntrack_address_info{job="conntrack",instance="k8s",address="10.0.0.5",netns="cni-1",pod="web-1",namespace="shop",uid="u-1"}'`,
      "        values: '1x5'",
      `      - series: 'conntrack_address_info{job="conntrack",instance="k8s",address="10.0.0.6",netns="cni-2"}'`,
      "        values: '1x5'",
      // Scraped without honor_labels: the exporter's labels arrive as exported_*, the target's stay.
      `      - series: 'conntrack_address_info{job="conntrack",instance="k8s",address="10.0.0.7",netns="cni-3",pod="conntrack-exporter-x",namespace="monitoring",exported_pod="api-0",exported_namespace="billing",uid="u-3"}'`,
      "        values: '1x5'",
      '    promql_expr_test:',
      `      - expr: ${JSON.stringify(panel('Entries and limit'))}`,
      '        eval_time: 2m',
      '        exp_samples:',
      `          - labels: 'conntrack_entries{job="conntrack",instance="plain"}'`,
      '            value: 7',
      `          - labels: '{job="conntrack",instance="k8s",netns="cni-1",workload="shop/web-1"}'`,
      '            value: 1',
      `          - labels: '{job="conntrack",instance="k8s",netns="inode:5",workload="inode:5"}'`,
      '            value: 2',
      `          - labels: 'conntrack_entries{job="conntrack",instance="k8s",netns="cni-2"}'`,
      '            value: 3',
      `      - expr: ${JSON.stringify(panel('Top sources'))}`,
      '        eval_time: 2m',
      '        exp_samples:',
      `          - labels: '{family="ipv4",source="10.0.0.5",workload="shop/web-1"}'`,
      '            value: 10',
      `          - labels: '{family="ipv4",source="10.0.0.6",workload="cni-2"}'`,
      '            value: 20',
      `          - labels: '{family="ipv4",source="10.0.0.7",workload="billing/api-0"}'`,
      '            value: 30',
      `          - labels: '{family="ipv4",source="other"}'`,
      '            value: 40',
      '',
    ].join('\n');
    const dir = mkdtempSync(join(tmpdir(), 'ctx-names-'));
    try {
      writeFileSync(join(dir, 'empty.yml'), 'groups: []\n');
      writeFileSync(join(dir, 'test.yml'), test);
      const r = promtool(['test', 'rules', 'test.yml'], dir);
      assert.equal(r.status, 0, `${r.output}\n${test}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // Every per-namespace legend names the workload, none the bare netns label any more.
    for (const p of allPanels(dashboard)) {
      for (const target of (p as { targets?: { legendFormat?: string }[] }).targets ?? []) {
        assert.doesNotMatch(target.legendFormat ?? '', /\{\{netns\}\}/, p.title);
      }
    }
  });

  it('rates use $__rate_interval', () => {
    for (const { panel, expr } of [
      ...dashboardQueries(dashboard, {}),
      ...annotationQueries(dashboard, {}).map((a) => ({ panel: a.name, expr: a.expr })),
    ]) {
      for (const m of expr.matchAll(/\b(rate|irate|increase)\([^[]*\[([^\]]+)\]/g)) {
        assert.equal(m[2], '$__rate_interval', `${panel}: ${m[0]}`);
      }
    }
  });

  it('every query, panels’ and annotations’, parses as PromQL (promtool check rules)', (t) => {
    if (!needTool(t, 'promtool')) return;
    assertParses([...dashboardQueries(dashboard, ALL), ...annotationQueries(dashboard, ALL)]);
  });

  it('links to the fleet dashboard, keeping the time range and the variables', () => {
    const links = dashboard['links'] as DashboardLink[];
    const toFleet = links.find((l) => l.url === `/d/${fleet['uid']}`);
    assert.ok(toFleet, 'a link to the fleet dashboard');
    assert.equal(toFleet.keepTime, true);
    assert.equal(toFleet.includeVars, true);
  });
});

describe('Grafana fleet dashboard', () => {
  const panels = allPanels(fleet) as Panel[];
  const queries: PanelQuery[] = dashboardQueries(fleet, {});
  const byTitle = new Map(panels.map((p) => [p.title, p]));

  it('every panel has a description, a unit, the datasource variable and a query of the job variable', () => {
    assert.ok(panels.length >= 6);
    assert.deepEqual(variableNames(fleet), ['datasource', 'job']);
    for (const p of panels) {
      assert.ok((p.description ?? '').length > 20, `${p.title}: description`);
      assert.ok(p.fieldConfig?.defaults?.unit, `${p.title}: unit`);
      assert.equal(p.datasource?.uid, DS_UID, `${p.title}: datasource`);
      assert.ok((p.targets ?? []).length > 0, `${p.title}: a query`);
      for (const t of p.targets ?? [])
        assert.equal(t.datasource?.uid, DS_UID, `${p.title}: target datasource`);
    }
    for (const q of queries) {
      for (const s of vectorSelectors(q.expr))
        assert.match(s.matchers, /job=~"\$job"/, `${q.panel}: ${q.expr}`);
    }
  });

  it('reads one series per node: the fleet recording rules of the rule file, and build_info', () => {
    const records = new Map(
      ruleExpressions(readFileSync(RULES_FILE, 'utf8'))
        .filter((r) => r.kind === 'record')
        .map((r) => [r.name, r.expr]),
    );
    const read = new Set(queries.flatMap((q) => vectorSelectors(q.expr).map((s) => s.metric)));
    for (const metric of read) {
      if (metric === 'conntrack_exporter_build_info') continue;
      assert.ok(records.has(metric), `${metric} is recorded by the rule file`);
      // per node, not per namespace
      assert.match(records.get(metric)!, /^(max|sum) without \(netns\) /, metric);
    }
    for (const m of [
      'instance:conntrack_entries:max_fill_ratio',
      'instance:conntrack_stat_drop:sum_rate5m',
      'instance:conntrack_stat_early_drop:sum_rate5m',
      'instance:conntrack_stat_insert_failed:sum_rate5m',
    ]) {
      assert.ok(read.has(m), `the fleet shows ${m}`);
    }
  });

  it('ranks the nodes closest to full and dropping most, and draws fill over time by node', () => {
    const ranked = (title: string, metric: string) => {
      const p = byTitle.get(title);
      assert.ok(p, title);
      const [target] = p.targets ?? [];
      assert.match(target?.expr ?? '', new RegExp(`^topk\\(10, .*${metric}`), title);
      assert.equal(target?.instant, true, `${title}: the ranking now, not a history`);
    };
    ranked('Nodes closest to full', 'instance:conntrack_entries:max_fill_ratio');
    ranked('Nodes dropping most', 'instance:conntrack_stat_drop:sum_rate5m');
    const overTime = byTitle.get('Fill over time by node');
    assert.equal(overTime?.type, 'timeseries');
    assert.match(overTime?.targets?.[0]?.expr ?? '', /^instance:conntrack_entries:max_fill_ratio\{/);
    assert.equal(byTitle.get('Nodes closest to full')?.fieldConfig?.defaults?.unit, 'percentunit');
  });

  it('links each node to the node dashboard with its instance, job and data source selected', () => {
    const linked = panels
      .filter((p) => (p.fieldConfig?.defaults?.links ?? []).length > 0)
      .map((p) => p.title);
    for (const title of ['Nodes closest to full', 'Nodes dropping most', 'Fill over time by node']) {
      assert.ok(linked.includes(title), `${title} links to the node`);
    }
    for (const p of panels) {
      for (const l of p.fieldConfig?.defaults?.links ?? []) assertNodeLink(`${p.title}`, l.url ?? '');
    }
    const links = fleet['links'] as DashboardLink[];
    assert.ok(links.some((l) => l.url === `/d/${dashboard['uid']}` && l.keepTime));
  });

  it('every query parses as PromQL (promtool check rules)', (t) => {
    if (!needTool(t, 'promtool')) return;
    assertParses(dashboardQueries(fleet, ALL));
  });
});
