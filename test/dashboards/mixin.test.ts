/**
 * The monitoring mixin (dashboards/mixin) is the one source of the rule file, the PrometheusRule
 * and the dashboards: the committed files are what it renders, and its `_config` (selector,
 * thresholds) reaches every expression.
 */
import assert from 'node:assert/strict';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import {
  evaluateMixin,
  MIXIN_DIR,
  type Mixin,
  renderFiles,
  ruleGroups,
  rulesFile,
} from '../../scripts/mixin.js';
import { ROOT } from '../paths.js';
import {
  allPanels,
  annotationQueries,
  dashboardQueries,
  variableQueries,
  vectorSelectors,
} from './queries.js';
import { needTool, promtool, run } from './tools.js';

let defaults: Mixin | undefined;
/** The mixin with its default _config, evaluated once (and only by tests that have jsonnet). */
const mixin = (): Mixin => {
  defaults ??= evaluateMixin();
  return defaults;
};

/** A selector unlike the default, with two matchers, as a multi-cluster setup would write it. */
const CUSTOM = 'cluster="eu-1",job="ct-custom"';

interface Expression {
  where: string;
  expr: string;
}

function ruleExprs(m: Mixin): Expression[] {
  return ruleGroups(m).flatMap((g) =>
    g.rules.map((r) => ({ where: `${g.name}/${r.record ?? r.alert}`, expr: r.expr })),
  );
}

/** Every panel query, annotation and query variable of every dashboard, as written. */
function dashboardExprs(m: Mixin): Expression[] {
  return Object.entries(m.grafanaDashboards).flatMap(([file, d]) => [
    ...dashboardQueries(d, {}).map((q) => ({ where: `${file}: panel ${q.panel}`, expr: q.expr })),
    ...annotationQueries(d, {}).map((a) => ({ where: `${file}: annotation ${a.name}`, expr: a.expr })),
    ...variableQueries(d).map((v) => ({ where: `${file}: variable ${v.name}`, expr: v.expr })),
  ]);
}

function recorded(m: Mixin): Set<string> {
  return new Set(ruleGroups(m).flatMap((g) => g.rules.flatMap((r) => (r.record ? [r.record] : []))));
}

function rule(m: Mixin, name: string) {
  const found = ruleGroups(m)
    .flatMap((g) => g.rules)
    .find((r) => r.alert === name || r.record === name);
  assert.ok(found, `rule ${name}`);
  return found;
}

describe('monitoring mixin', () => {
  it('has the four fields of the monitoring-mixins convention, hidden', (t) => {
    if (!needTool(t, 'jsonnet')) return;
    const r = run(
      'jsonnet',
      [
        '-e',
        "local m = import 'mixin.libsonnet'; { all: std.objectFieldsAll(m), visible: std.objectFields(m) }",
      ],
      MIXIN_DIR,
    );
    assert.equal(r.status, 0, r.output);
    const fields = JSON.parse(r.output) as { all: string[]; visible: string[] };
    for (const f of ['_config', 'prometheusAlerts', 'prometheusRules', 'grafanaDashboards']) {
      assert.ok(fields.all.includes(f), f);
    }
    // `jsonnet mixin.libsonnet` renders {}, as a mixin imported into a bigger object must
    assert.deepEqual(fields.visible, []);
  });

  it('the committed rule file, PrometheusRule and dashboards are what it renders by default', (t) => {
    if (!needTool(t, 'jsonnet')) return;
    const files = renderFiles(mixin());
    assert.ok(files.size >= 2);
    for (const [path, content] of files) {
      assert.equal(readFileSync(`${ROOT}${path}`, 'utf8'), content, `${path}: run npm run mixin`);
    }
    // no dashboard left behind that the mixin no longer renders
    const committed = readdirSync(`${ROOT}dashboards`).filter((f) => f.endsWith('.json'));
    const rendered = [...files.keys()].filter((p) => p.endsWith('.json')).map((p) => p.split('/').pop());
    assert.deepEqual(committed.sort(), rendered.sort());
  });

  it('a custom selector reaches every vector selector of every rule, alert, panel, variable and annotation', (t) => {
    if (!needTool(t, 'jsonnet')) return;
    const m = evaluateMixin({ conntrackExporterSelector: CUSTOM });
    const records = recorded(m);
    const rules = ruleExprs(m);
    const queries = dashboardExprs(m);
    assert.ok(rules.length >= 13, `rules: ${rules.length}`);
    assert.ok(queries.length >= 30, `dashboard queries: ${queries.length}`);
    const exprs = [...rules, ...queries];
    for (const { where, expr } of exprs) {
      const selectors = vectorSelectors(expr);
      assert.ok(selectors.length > 0, `${where}: selects something: ${expr}`);
      for (const s of selectors) {
        assert.ok(
          s.matchers === CUSTOM || s.matchers.startsWith(`${CUSTOM},`),
          `${where}: ${s.metric}{${s.matchers}} starts with the selector`,
        );
        if (s.metric.includes(':')) assert.ok(records.has(s.metric), `${where}: ${s.metric} is recorded`);
      }
    }
    const { config: _, ...rendered } = m;
    const defaultSelector = String(mixin().config['conntrackExporterSelector']);
    assert.ok(
      !JSON.stringify(rendered).includes(JSON.stringify(defaultSelector).slice(1, -1)),
      'no default left',
    );
  });

  it('thresholds and durations from _config reach the alerts', (t) => {
    if (!needTool(t, 'jsonnet')) return;
    const m = evaluateMixin({
      fillWarningRatio: 0.7,
      fillCriticalRatio: 0.9,
      fillCriticalFor: '1m',
      predictHours: 6,
      overrunsThreshold: 10,
      driftFor: '30m',
      natPortsWarningRatio: 0.9,
      natPortsWarningFor: '15m',
    });
    const nat = rule(m, 'ConntrackNatPortsNearlyExhausted');
    assert.match(nat.expr, /> 0\.9$/);
    assert.equal(nat.for, '15m');
    const nearly = rule(m, 'ConntrackTableNearlyFull');
    assert.match(nearly.expr, /> 0\.7$/);
    assert.equal(nearly.annotations?.['summary'], 'Conntrack table is more than 70% full.');
    const full = rule(m, 'ConntrackTableFull');
    assert.match(full.expr, /> 0\.9$/);
    assert.equal(full.for, '1m');
    const predicted = rule(m, 'ConntrackTablePredictedFull');
    assert.match(predicted.expr, /, 6 \* 3600\)/);
    assert.match(predicted.annotations?.['summary'] ?? '', /within 6 hours\.$/);
    assert.match(rule(m, 'ConntrackExporterLosingEvents').expr, /> 10$/);
    const drift = rule(m, 'ConntrackExporterDrift');
    assert.equal(drift.for, '30m');
    assert.match(drift.annotations?.['description'] ?? '', /for 30 minutes;/);
  });

  it('the fill thresholds from _config reach the dashboards', (t) => {
    if (!needTool(t, 'jsonnet')) return;
    const m = evaluateMixin({ fillWarningRatio: 0.7, fillCriticalRatio: 0.9, natPortsWarningRatio: 0.6 });
    interface Thresholds {
      title?: string;
      fieldConfig?: { defaults?: { unit?: string; thresholds?: { steps: { value: number | null }[] } } };
    }
    const panels = Object.values(m.grafanaDashboards).flatMap((d) => allPanels(d) as Thresholds[]);
    const steps = (p: Thresholds | undefined) =>
      p?.fieldConfig?.defaults?.thresholds?.steps.map((s) => s.value);
    // Source NAT utilisation (the node's panel and the fleet's): its own alert ratio, and full at 1.
    const nat = panels.filter((p) => /source NAT port (utilisation|exhaustion)/i.test(p.title ?? ''));
    assert.equal(nat.length, 2, `NAT utilisation panels: ${nat.map((p) => p.title)}`);
    for (const p of nat) assert.deepEqual(steps(p), [null, 0.6, 1], String(p.title));
    // the fill ratio is the only other ratio with thresholds
    const fill = panels.filter(
      (p) =>
        p.fieldConfig?.defaults?.unit === 'percentunit' &&
        p.fieldConfig.defaults.thresholds &&
        !nat.includes(p),
    );
    assert.ok(fill.length >= 2, `panels with fill thresholds: ${fill.map((p) => p.title)}`);
    for (const p of fill) assert.deepEqual(steps(p), [null, 0.7, 0.9], String(p.title));
  });

  it('rendered with another selector and thresholds, the rules pass promtool check rules', (t) => {
    if (!needTool(t, 'jsonnet') || !needTool(t, 'promtool')) return;
    const m = evaluateMixin({ conntrackExporterSelector: CUSTOM, fillWarningRatio: 0.875 });
    const dir = mkdtempSync(join(tmpdir(), 'ctx-mixin-'));
    try {
      writeFileSync(join(dir, 'rules.yml'), rulesFile(m));
      const r = promtool(['check', 'rules', join(dir, 'rules.yml')]);
      assert.equal(r.status, 0, r.output);
      assert.match(r.output, new RegExp(`SUCCESS: ${ruleExprs(m).length} rules found`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the example of dashboards/README.md renders, vendored as jsonnet-bundler would', (t) => {
    if (!needTool(t, 'jsonnet') || !needTool(t, 'promtool')) return;
    const readme = readFileSync(`${ROOT}dashboards/README.md`, 'utf8');
    const example = /```jsonnet\n([\s\S]*?)```/.exec(readme)?.[1];
    assert.ok(example, 'a Jsonnet example');
    const imported = /import '([^']+)\/mixin\.libsonnet'/.exec(example)?.[1];
    assert.ok(imported, 'it imports the mixin');
    const dir = mkdtempSync(join(tmpdir(), 'ctx-mixin-'));
    try {
      mkdirSync(join(dir, 'vendor', dirname(imported)), { recursive: true });
      symlinkSync(MIXIN_DIR, join(dir, 'vendor', imported));
      writeFileSync(join(dir, 'conntrack.jsonnet'), example);
      mkdirSync(join(dir, 'out'));
      const r = run('jsonnet', ['-J', 'vendor', '-S', '-m', 'out', 'conntrack.jsonnet'], dir);
      assert.equal(r.status, 0, r.output);
      const written = readdirSync(join(dir, 'out')).sort();
      assert.deepEqual(
        written,
        [...Object.keys(mixin().grafanaDashboards), 'conntrack-exporter.rules.yml'].sort(),
      );
      const check = promtool(['check', 'rules', join(dir, 'out', 'conntrack-exporter.rules.yml')]);
      assert.equal(check.status, 0, check.output);
      // the example's selector, not the default, in the rules and the dashboards
      const selector = /conntrackExporterSelector: '([^']+)'/.exec(example)?.[1] ?? '';
      assert.notEqual(selector, '', 'the example sets a selector');
      for (const f of written) {
        const text = JSON.stringify(parse(readFileSync(join(dir, 'out', f), 'utf8')));
        assert.ok(text.includes(JSON.stringify(selector).slice(1, -1)), `${f} has the example's selector`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('every Jsonnet file is formatted as jsonnetfmt writes it', (t) => {
    if (!needTool(t, 'jsonnetfmt')) return;
    const files = readdirSync(MIXIN_DIR, { recursive: true, encoding: 'utf8' }).filter((f) =>
      /\.(lib)?sonnet$/.test(f),
    );
    assert.ok(files.length >= 4, `Jsonnet files: ${files}`);
    for (const f of files) {
      const r = run('jsonnetfmt', ['--test', f], MIXIN_DIR);
      assert.equal(r.status, 0, `${f}: run jsonnetfmt -i dashboards/mixin/${f}\n${r.output}`);
    }
  });
});
