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
/** The fleet dashboard: every node, from the fleet recording rules. */
export const FLEET_DASHBOARD_FILE = `${ROOT}dashboards/conntrack-exporter-fleet.json`;
/** The dashboard's row whose panels have data only with --netns.all (collapsed by default). */
export const NETNS_ROW = 'Namespaces (--netns.all)';

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

/**
 * The series selector of each query variable (`label_values(<selector>, label)`), or the whole
 * query when it is PromQL.
 */
export function variableQueries(dashboard: unknown): AnnotationQuery[] {
  const list = (
    dashboard as { templating?: { list?: { name?: string; type?: string; definition?: string }[] } }
  ).templating?.list;
  return (list ?? [])
    .filter((v) => v.type === 'query')
    .map((v) => ({
      name: v.name ?? '',
      expr: (v.definition ?? '').replace(/^label_values\((.*),\s*\w+\)$/s, '$1'),
    }));
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

export interface VectorSelector {
  /** The metric name ('' for a selector of matchers only, `{__name__=~"..."}`). */
  metric: string;
  /** What is between the braces, as written ('' without braces). */
  matchers: string;
}

/** Label lists after these are not metric names: `by (job)`, `on (instance)`, `group_left (x)`. */
const GROUPING = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
/** Aggregations, which may be followed by `by (...)` before their `(`. */
const AGGREGATIONS = ['sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values'];
/** Words that are neither functions (those are followed by `(`) nor metric names. */
const KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'inf',
  'nan',
  ...GROUPING,
  ...AGGREGATIONS,
  'topk',
  'bottomk',
  'quantile',
]);

/** The index just past the bracket that closes the one at `open`, skipping quoted strings. */
function closing(expr: string, open: number): number {
  const close = ({ '(': ')', '[': ']', '{': '}' } as Record<string, string>)[expr[open]!]!;
  let depth = 0;
  for (let i = open; i < expr.length; i++) {
    const ch = expr[i]!;
    if (ch === '"' || ch === "'" || ch === '`') i = skipString(expr, i) - 1;
    else if (ch === expr[open]) depth++;
    else if (ch === close && --depth === 0) return i + 1;
  }
  throw new Error(`unbalanced ${expr[open]} at ${open} in ${expr}`);
}

function skipString(expr: string, start: number): number {
  const quote = expr[start]!;
  for (let i = start + 1; i < expr.length; i++) {
    if (expr[i] === '\\' && quote !== '`') i++;
    else if (expr[i] === quote) return i + 1;
  }
  throw new Error(`unterminated string at ${start} in ${expr}`);
}

const NUMBER = /^(?:0x[0-9a-f]+|\d+(?:\.\d+)?(?:e[+-]?\d+)?)[a-z]*/i;
const IDENT = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;

/**
 * Every vector selector of a PromQL expression, in order: a small scanner, enough for the
 * expressions we write (functions, aggregations with grouping, binary operators with matching,
 * range and subquery brackets, Grafana's $variables inside strings and brackets).
 */
export function vectorSelectors(expr: string): VectorSelector[] {
  const out: VectorSelector[] = [];
  let i = 0;
  while (i < expr.length) {
    const rest = expr.slice(i);
    const ch = expr[i]!;
    if (ch === '"' || ch === "'" || ch === '`') i = skipString(expr, i);
    else if (ch === '[') i = closing(expr, i);
    else if (ch === '{') {
      const end = closing(expr, i);
      out.push({ metric: '', matchers: expr.slice(i + 1, end - 1) });
      i = end;
    } else if (NUMBER.test(rest)) i += NUMBER.exec(rest)![0].length;
    else if (IDENT.test(rest)) i = identifier(expr, i, IDENT.exec(rest)![0], out);
    else i++;
  }
  return out;
}

/** After an identifier at `start`: a function call, a grouping list, a keyword or a selector. */
function identifier(expr: string, start: number, name: string, out: VectorSelector[]): number {
  let next = start + name.length;
  while (expr[next] === ' ' || expr[next] === '\n') next++;
  if (expr[next] === '(') return GROUPING.has(name) ? closing(expr, next) : next;
  if (KEYWORDS.has(name)) return next;
  if (expr[next] === '{') {
    const end = closing(expr, next);
    out.push({ metric: name, matchers: expr.slice(next + 1, end - 1) });
    return end;
  }
  out.push({ metric: name, matchers: '' });
  return next;
}
