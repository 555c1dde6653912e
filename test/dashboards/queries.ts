/**
 * The PromQL in what we ship: every query of the Grafana dashboard (variables substituted as
 * Grafana would) and every expression of the rule file. Used by the structure tests here and by
 * the end-to-end test against a real Prometheus.
 */
import { parse } from 'yaml';
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

/** Every recording and alerting rule of a Prometheus rule file, in file order. */
export function ruleExpressions(yaml: string): RuleExpression[] {
  const file = parse(yaml) as {
    groups?: { rules?: { record?: string; alert?: string; expr?: unknown }[] }[];
  };
  return (file.groups ?? []).flatMap((g) =>
    (g.rules ?? []).map((r) => ({
      kind: r.record === undefined ? ('alert' as const) : ('record' as const),
      name: r.record ?? r.alert ?? '',
      expr: String(r.expr ?? '').trim(),
    })),
  );
}
