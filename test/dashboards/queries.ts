/**
 * The PromQL in what we ship: every query of the Grafana dashboard (variables substituted as
 * Grafana would) and every expression of the rule file. Used by the structure tests here and by
 * the end-to-end test against a real Prometheus.
 */
import { ROOT } from '../paths.js';

/** What the repository ships: the rule file and the Grafana dashboard. */
export const RULES_FILE = `${ROOT}dashboards/rules/conntrack-exporter.rules.yml`;
export const DASHBOARD_FILE = `${ROOT}dashboards/conntrack-exporter.json`;

export interface PanelQuery {
  panel: string;
  /** Title of the row the panel is in ('' before the first row). */
  row: string;
  expr: string;
}

interface PanelLike {
  title?: string;
  type?: string;
  targets?: { expr?: string }[];
  panels?: PanelLike[];
}

/** Every panel, with those nested in collapsed rows, rows themselves excluded. */
export function allPanels(dashboard: unknown): PanelLike[] {
  const out: PanelLike[] = [];
  const walk = (ps: PanelLike[] | undefined) => {
    for (const p of ps ?? []) {
      if (p.type === 'row') walk(p.panels);
      else out.push(p);
    }
  };
  walk((dashboard as { panels?: PanelLike[] }).panels);
  return out;
}

/** `$name` and `${name}` replaced; longer names first so `$__rate_interval` is not cut short. */
export function substitute(expr: string, vars: Record<string, string>): string {
  let out = expr;
  for (const name of Object.keys(vars).sort((a, b) => b.length - a.length)) {
    out = out.split(`\${${name}}`).join(vars[name]!).split(`$${name}`).join(vars[name]!);
  }
  return out;
}

export function dashboardQueries(dashboard: unknown, vars: Record<string, string>): PanelQuery[] {
  const out: PanelQuery[] = [];
  const walk = (ps: PanelLike[] | undefined, row: string) => {
    for (const p of ps ?? []) {
      if (p.type === 'row') {
        row = p.title ?? '';
        walk(p.panels, row);
        continue;
      }
      for (const t of p.targets ?? []) {
        out.push({ panel: p.title ?? '', row, expr: substitute(t.expr ?? '', vars) });
      }
    }
  };
  walk((dashboard as { panels?: PanelLike[] }).panels, '');
  return out;
}

export interface AnnotationQuery {
  name: string;
  expr: string;
}

/** The Prometheus queries of the dashboard's annotations, variables substituted. */
export function annotationQueries(dashboard: unknown, vars: Record<string, string>): AnnotationQuery[] {
  const list = (dashboard as { annotations?: { list?: { name?: string; expr?: string }[] } }).annotations
    ?.list;
  return (list ?? [])
    .filter((a) => a.expr !== undefined)
    .map((a) => ({ name: a.name ?? '', expr: substitute(a.expr!, vars) }));
}

export interface RuleExpression {
  name: string;
  kind: 'record' | 'alert';
  expr: string;
}

/**
 * Reads the rule file's `- record:`/`- alert:` entries and their `expr:` (one line, or a `|`
 * block). The file keeps that regular shape on purpose: no YAML parser is a dependency.
 */
export function ruleExpressions(yaml: string): RuleExpression[] {
  const lines = yaml.split('\n');
  const out: RuleExpression[] = [];
  let current: { name: string; kind: 'record' | 'alert' } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const head = /^\s*- (record|alert):\s*(\S+)\s*$/.exec(line);
    if (head) {
      current = { kind: head[1] as 'record' | 'alert', name: head[2]! };
      continue;
    }
    const ex = /^(\s*)expr:\s*(.*)$/.exec(line);
    if (!ex || !current) continue;
    let expr = ex[2]!.trim();
    if (expr === '|' || expr === '|-' || expr === '>') {
      const block = blockAfter(lines, i, ex[1]!.length);
      i += block.length;
      expr = block.join('\n').trim();
    }
    out.push({ ...current, expr });
    current = undefined;
  }
  return out;
}

/** The lines of a YAML block scalar after line `at`: those indented deeper than `indent`, or blank. */
function blockAfter(lines: readonly string[], at: number, indent: number): string[] {
  const block: string[] = [];
  for (let i = at + 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() !== '' && line.length - line.trimStart().length <= indent) break;
    block.push(line.trim());
  }
  return block;
}
