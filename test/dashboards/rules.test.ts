/** The alert rules: valid, unit-tested by promtool, and complete (severity, text, runbook). */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { buildPrometheusRule } from '../../scripts/prometheusrule.js';
import { ROOT } from '../paths.js';
import { needPromtool, promtool } from './promtool.js';
import { RULES_FILE as RULES, ruleExpressions } from './queries.js';

const DIR = `${ROOT}dashboards/rules`;
const TESTS = `${DIR}/conntrack-exporter.rules.test.yml`;
const text = readFileSync(RULES, 'utf8');
const alerts = ruleExpressions(text).filter((r) => r.kind === 'alert');

describe('Prometheus rules', () => {
  it('promtool check rules accepts them', (t) => {
    if (!needPromtool(t)) return;
    const r = promtool(['check', 'rules', RULES]);
    assert.equal(r.status, 0, r.output);
  });

  it('promtool test rules passes', (t) => {
    if (!needPromtool(t)) return;
    const r = promtool(['test', 'rules', 'conntrack-exporter.rules.test.yml'], DIR);
    assert.equal(r.status, 0, r.output);
  });

  it('covers table exhaustion, drops, insert_failed, lost events, drift and a missing exporter', () => {
    const names = alerts.map((a) => a.name);
    for (const want of [
      'ConntrackTableNearlyFull',
      'ConntrackTableFull',
      'ConntrackTablePredictedFull',
      'ConntrackPacketsDropped',
      'ConntrackInsertFailed',
      'ConntrackExporterLosingEvents',
      'ConntrackExporterDrift',
      'ConntrackExporterDown',
    ]) {
      assert.ok(names.includes(want), want);
    }
    assert.ok(ruleExpressions(text).some((r) => r.name === 'instance:conntrack_entries:fill_ratio'));
  });

  it('every alert has a severity, a summary, a description with its value and an existing runbook', () => {
    const blocks = text.split(/\n\s*- alert: /).slice(1);
    assert.equal(blocks.length, alerts.length);
    for (const block of blocks) {
      const name = block.split('\n')[0]!.trim();
      assert.match(block, /severity: (warning|critical)/, name);
      assert.match(block, /summary: /, name);
      const m = /runbook_url: (\S+)/.exec(block);
      assert.ok(m, `${name} has a runbook_url`);
      assert.ok(m[1]!.endsWith(`/dashboards/runbooks/${name}.md`), `${name} links its own runbook`);
      assert.ok(existsSync(`${ROOT}dashboards/runbooks/${name}.md`), `runbook of ${name} exists`);
      // up == 0 and absent() have no value worth showing
      if (!/Down|Absent/.test(name)) assert.match(block, /description: .*\$value/, `${name} shows the value`);
    }
  });

  it('every alert has a promtool test where it fires and one where it stays silent', () => {
    const tests = readFileSync(TESTS, 'utf8');
    for (const a of alerts) {
      const cases = [
        ...tests.matchAll(
          new RegExp(`alertname: ${a.name}\\n\\s+eval_time: \\S+\\n\\s+exp_alerts:(.*)`, 'g'),
        ),
      ];
      assert.ok(
        cases.some((c) => c[1]!.trim() === '[]'),
        `${a.name}: a silent case`,
      );
      assert.ok(
        cases.some((c) => c[1]!.trim() === ''),
        `${a.name}: a firing case`,
      );
    }
  });

  it('deploy/kubernetes/base/prometheusrule.yaml is generated from the rule file', () => {
    const committed = readFileSync(`${ROOT}deploy/kubernetes/base/prometheusrule.yaml`, 'utf8');
    assert.equal(committed, buildPrometheusRule(text), 'run: node dist/scripts/prometheusrule.js');
  });
});
