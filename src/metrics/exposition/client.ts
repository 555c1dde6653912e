/**
 * The client library's own metrics (the Node.js process metrics, the build info gauge) as the
 * model: what their get() returns, read, never rendered by the client. The client's OpenMetrics
 * rendering renames counters in place (`metric.name` loses `_total`), so a metric object it has
 * rendered as OpenMetrics would come out wrong in the text format; here nothing is renamed.
 */
import type { FamilyData, HistogramPoint, Labels, ScalarPoint } from './model.js';

/** What the client's metrics answer to get(). */
export interface ClientMetricData {
  name: string;
  help: string;
  type: string;
  values: {
    value: number;
    labels: Record<string, string | number | undefined>;
    metricName?: string;
    sharedLabels?: Record<string, string | number | undefined>;
  }[];
}

function labelsOf(v: ClientMetricData['values'][number], without?: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const all of [v.labels, v.sharedLabels ?? {}]) {
    for (const name in all) {
      const value = all[name];
      if (name !== without && value !== undefined) out[name] = String(value);
    }
  }
  return out;
}

interface Building {
  labels: Labels;
  bounds: number[];
  cumulative: number[];
  count: number;
  sum: number;
}

/** `_bucket`, `_sum` and `_count` samples grouped back into one point per label set. */
function histogramPoints(m: ClientMetricData): HistogramPoint[] {
  const points = new Map<string, Building>();
  for (const v of m.values) {
    const labels = labelsOf(v, 'le');
    const key = JSON.stringify(labels);
    let p = points.get(key);
    if (p === undefined) {
      p = { labels, bounds: [], cumulative: [], count: 0, sum: 0 };
      points.set(key, p);
    }
    const suffix = (v.metricName ?? m.name).slice(m.name.length);
    const le = Number(v.labels['le'] ?? v.sharedLabels?.['le']);
    if (suffix === '_bucket' && Number.isFinite(le)) {
      p.bounds.push(le);
      p.cumulative.push(v.value);
    } else if (suffix === '_sum') p.sum = v.value;
    else if (suffix === '_count') p.count = v.value;
  }
  return [...points.values()];
}

export function fromClient(m: ClientMetricData): FamilyData {
  const { name, help } = m;
  switch (m.type) {
    case 'histogram':
      return { name, help, type: 'histogram', points: histogramPoints(m) };
    case 'counter':
    case 'gauge': {
      const points: ScalarPoint[] = m.values.map((v) => ({ labels: labelsOf(v), value: v.value }));
      return { name, help, type: m.type, points };
    }
    default:
      // The process metrics have no summary; one added would need its own points.
      throw new TypeError(`${name}: metric type ${m.type} is not rendered`);
  }
}
