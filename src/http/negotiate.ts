/**
 * Which exposition format a scrape gets, from its Accept header, by the rules of prometheus/common
 * expfmt's NegotiateIncludingOpenMetrics (v0.70, what client_golang's promhttp calls with
 * OpenMetrics enabled):
 *
 * - the header's clauses are ordered as goautoneg orders them: by q-value, highest first, then a
 *   concrete type before `*`, otherwise as written; the first clause naming a format served wins;
 * - `application/vnd.google.protobuf` with `proto=io.prometheus.client.MetricFamily` and
 *   `encoding=delimited`: protobuf;
 * - `text/plain` with `version=0.0.4` or none: text 0.0.4;
 * - `application/openmetrics-text` with `version=1.0.0`, or `0.0.1` or none (Content-Type says
 *   0.0.1, body the same): OpenMetrics;
 * - nothing named (`*` included): text 0.0.4;
 * - an `escaping` parameter (allow-utf-8, underscores, dots, values) on any clause read before
 *   the match is echoed in the Content-Type, else `escaping=underscores`. Every name this exporter
 *   serves is a valid legacy name, which every scheme leaves as it is, so the body is the same.
 *
 * Two deliberate differences: a clause with q=0 is skipped (RFC 9110: "not acceptable";
 * goautoneg only sorts it last), and protobuf's `text` and `compact-text` encodings are not
 * served, so such a clause is passed over like any other format not served.
 */
import {
  type ExpositionFormat,
  openMetricsContentType,
  PROTOBUF_CONTENT_TYPE,
  TEXT_CONTENT_TYPE,
} from '../metrics/exposition/formats.js';

export interface Negotiated {
  format: ExpositionFormat;
  contentType: string;
}

interface Clause {
  type: string;
  subType: string;
  q: number;
  params: Map<string, string>;
}

const ESCAPING = new Set(['allow-utf-8', 'underscores', 'dots', 'values']);

function parseClause(part: string): Clause | undefined {
  const [range = '', ...rest] = part.split(';');
  const sp = range.trim().split('/');
  const type = sp[0]!.trim();
  let subType: string;
  if (sp.length === 1 && type === '*') subType = '*';
  else if (sp.length === 2) subType = sp[1]!.trim();
  else return undefined;
  const clause: Clause = { type, subType, q: 1, params: new Map() };
  for (const param of rest) {
    const eq = param.indexOf('=');
    if (eq < 0) continue;
    const token = param.slice(0, eq).trim();
    const value = param.slice(eq + 1).trim();
    if (token === 'q') {
      const q = Number(value);
      clause.q = Number.isNaN(q) ? 0 : q;
    } else clause.params.set(token, value);
  }
  return clause;
}

/** goautoneg's ordering (acceptSlice.Less), applied by an insertion sort as Go's sort.Sort is for short lists. */
function before(a: Clause, b: Clause): boolean {
  if (a.q > b.q) return true;
  if (a.type !== '*' && b.type === '*') return true;
  return a.subType !== '*' && b.subType === '*';
}

function parseAccept(header: string): Clause[] {
  const clauses: Clause[] = [];
  for (const part of header.split(',')) {
    const c = parseClause(part);
    if (c !== undefined) clauses.push(c);
  }
  for (let i = 1; i < clauses.length; i++) {
    for (let j = i; j > 0 && before(clauses[j]!, clauses[j - 1]!); j--) {
      [clauses[j], clauses[j - 1]] = [clauses[j - 1]!, clauses[j]!];
    }
  }
  return clauses;
}

/** The format a clause names, if served. */
function served(c: Clause): Negotiated | undefined {
  const media = `${c.type}/${c.subType}`;
  const version = c.params.get('version') ?? '';
  if (
    media === 'application/vnd.google.protobuf' &&
    c.params.get('proto') === 'io.prometheus.client.MetricFamily' &&
    c.params.get('encoding') === 'delimited'
  ) {
    return { format: 'protobuf', contentType: PROTOBUF_CONTENT_TYPE };
  }
  if (media === 'text/plain' && (version === '0.0.4' || version === '')) {
    return { format: 'text', contentType: TEXT_CONTENT_TYPE };
  }
  if (media === 'application/openmetrics-text' && ['1.0.0', '0.0.1', ''].includes(version)) {
    return {
      format: 'openmetrics',
      contentType: openMetricsContentType(version === '1.0.0' ? '1.0.0' : '0.0.1'),
    };
  }
  return undefined;
}

export function negotiate(accept: string | undefined): Negotiated {
  let escaping = 'underscores';
  for (const c of parseAccept(accept ?? '')) {
    if (c.q <= 0) continue;
    const asked = c.params.get('escaping');
    if (asked !== undefined && ESCAPING.has(asked)) escaping = asked;
    const found = served(c);
    if (found) return { ...found, contentType: `${found.contentType}; escaping=${escaping}` };
  }
  return { format: 'text', contentType: `${TEXT_CONTENT_TYPE}; escaping=${escaping}` };
}
