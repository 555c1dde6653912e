/** The Grafana dashboard: structure, conventions, and PromQL that parses. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { buildDashboard } from '../../scripts/dashboard.js';
import { needPromtool, promtool } from './promtool.js';
import { allPanels, dashboardQueries } from './queries.js';

// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a JS template
const DS_UID = '${datasource}';
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const FILE = `${ROOT}dashboards/conntrack-exporter.json`;
const dashboard = JSON.parse(readFileSync(FILE, 'utf8')) as Record<string, unknown>;

interface Panel {
  title?: string;
  type?: string;
  description?: string;
  datasource?: { type?: string; uid?: string };
  fieldConfig?: { defaults?: { unit?: string } };
  targets?: { expr?: string; datasource?: { uid?: string } }[];
}

describe('Grafana dashboard', () => {
  const panels = allPanels(dashboard) as Panel[];

  it('is what scripts/dashboard.ts builds', () => {
    assert.deepEqual(
      dashboard,
      buildDashboard(),
      'run: node dist/scripts/dashboard.js > dashboards/conntrack-exporter.json',
    );
  });

  it('has a current schemaVersion and datasource, job and instance variables', () => {
    assert.ok((dashboard['schemaVersion'] as number) >= 39);
    const vars = (dashboard['templating'] as { list: { name: string; type: string; query: unknown }[] }).list;
    const byName = new Map(vars.map((v) => [v.name, v]));
    assert.equal(byName.get('datasource')?.type, 'datasource');
    assert.equal(byName.get('datasource')?.query, 'prometheus');
    assert.equal(byName.get('job')?.type, 'query');
    assert.equal(byName.get('instance')?.type, 'query');
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
      'deriv(',
    ]) {
      assert.ok(exprs.includes(m), m);
    }
    assert.ok(panels.some((p) => p.type === 'gauge' && p.fieldConfig?.defaults?.unit === 'percentunit'));
  });

  it('rates use $__rate_interval', () => {
    for (const { panel, expr } of dashboardQueries(dashboard, {})) {
      for (const m of expr.matchAll(/\b(rate|irate|increase)\([^[]*\[([^\]]+)\]/g)) {
        assert.equal(m[2], '$__rate_interval', `${panel}: ${m[0]}`);
      }
    }
  });

  it('every query parses as PromQL (promtool check rules)', (t) => {
    if (!needPromtool(t)) return;
    const queries = dashboardQueries(dashboard, {
      __rate_interval: '1m',
      job: '.+',
      instance: '.+',
    });
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
  });
});
