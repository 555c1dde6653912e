/** The alert rules: valid, unit-tested by promtool, and complete (severity, text, runbook). */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { PROMETHEUS_RULE_PATH, type Rule, type RuleGroup } from '../../scripts/mixin.js';
import { ROOT } from '../paths.js';
import { RULES_FILE as RULES, ruleExpressions } from './queries.js';
import { needTool, promtool } from './tools.js';

const DIR = `${ROOT}dashboards/rules`;
const TESTS = `${DIR}/conntrack-exporter.rules.test.yml`;
const text = readFileSync(RULES, 'utf8');
const groups = (parse(text) as { groups: RuleGroup[] }).groups;
const alertRules = groups.flatMap((g) => g.rules).filter((r): r is Rule & { alert: string } => !!r.alert);
const alerts = ruleExpressions(text).filter((r) => r.kind === 'alert');

describe('Prometheus rules', () => {
  it('promtool check rules accepts them', (t) => {
    if (!needTool(t, 'promtool')) return;
    const r = promtool(['check', 'rules', RULES]);
    assert.equal(r.status, 0, r.output);
  });

  it('promtool test rules passes', (t) => {
    if (!needTool(t, 'promtool')) return;
    const r = promtool(['test', 'rules', 'conntrack-exporter.rules.test.yml'], DIR);
    assert.equal(r.status, 0, r.output);
  });

  it('covers table exhaustion, drops, insert_failed, source NAT ports, lost events, drift, lost sockets, forged messages, degraded attribution and a missing exporter', () => {
    const names = alerts.map((a) => a.name);
    for (const want of [
      'ConntrackTableNearlyFull',
      'ConntrackTableFull',
      'ConntrackTablePredictedFull',
      'ConntrackPacketsDropped',
      'ConntrackInsertFailed',
      'ConntrackNatPortsNearlyExhausted',
      'ConntrackExporterLosingEvents',
      'ConntrackExporterDrift',
      'ConntrackExporterSocketDown',
      'ConntrackExporterForgedNetlinkMessages',
      'ConntrackExporterAttributionDegraded',
      'ConntrackExporterDown',
    ]) {
      assert.ok(names.includes(want), want);
    }
    assert.ok(ruleExpressions(text).some((r) => r.name === 'instance:conntrack_entries:fill_ratio'));
  });

  it('every alert has a severity, a static summary, a description with its value and an existing runbook', () => {
    assert.equal(alertRules.length, alerts.length);
    for (const { alert: name, labels, annotations } of alertRules) {
      assert.match(labels?.['severity'] ?? '', /^(warning|critical)$/, name);
      // Static, as the monitoring-mixins style guide asks: notifications group by it; the labels
      // and the value go in the description.
      assert.match(annotations?.['summary'] ?? '', /^[^{}$]{10,}\.$/, `${name}: a static summary`);
      const url = annotations?.['runbook_url'] ?? '';
      assert.ok(url.endsWith(`/dashboards/runbooks/${name}.md`), `${name} links its own runbook`);
      assert.ok(existsSync(`${ROOT}dashboards/runbooks/${name}.md`), `runbook of ${name} exists`);
      // up == 0, a socket down, absent() and a 0/1 state (degraded) have no value worth showing
      if (!/Down|Absent|Degraded/.test(name)) {
        assert.match(annotations?.['description'] ?? '', /\$value/, `${name} shows the value`);
      }
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

  it('the Alertmanager inhibition in dashboards/README.md mutes node-mixin’s alert by our fill alerts', () => {
    const readme = readFileSync(`${ROOT}dashboards/README.md`, 'utf8');
    const block = /```yaml\n(inhibit_rules:[\s\S]*?)```/.exec(readme);
    assert.ok(block, 'an inhibit_rules example');
    const [rule] = (
      parse(block[1]!) as {
        inhibit_rules: { source_matchers: string[]; target_matchers: string[]; equal: string[] }[];
      }
    ).inhibit_rules;
    const fillAlerts = alertRules
      .filter((a) => /^instance:conntrack_entries:fill_ratio\{[^}]*\} > [\d.]+$/.test(a.expr))
      .map((a) => a.alert);
    assert.equal(fillAlerts.length, 2, `the fill alerts: ${fillAlerts}`);
    const source = /^alertname=~"(.*)"$/.exec(rule?.source_matchers[0] ?? '');
    assert.deepEqual(source?.[1]?.split('|').sort(), fillAlerts.sort());
    assert.deepEqual(rule?.target_matchers, ['alertname="NodeHighNumberConntrackEntriesUsed"']);
    assert.deepEqual(rule?.equal, ['instance']);
  });

  it('deploy/kubernetes/base/prometheusrule.yaml holds the same groups as the rule file', () => {
    const committed = parse(readFileSync(`${ROOT}${PROMETHEUS_RULE_PATH}`, 'utf8')) as {
      kind: string;
      spec: { groups: RuleGroup[] };
    };
    assert.equal(committed.kind, 'PrometheusRule');
    assert.deepEqual(committed.spec.groups, groups);
  });
});
