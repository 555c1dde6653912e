/**
 * OpenMetrics 1.0 text, following prometheus/common's expfmt (MetricFamilyToOpenMetrics):
 * a counter family is named without `_total` and its samples with it (a counter whose name lacks
 * `_total` is typed `unknown`); `# UNIT` where the name ends in a base unit; floats always with a
 * dot or exponent (`1.0`), counts as integers; HELP escapes quotes too; `# EOF` at the end.
 *
 * No `_created` lines, as client_golang writes none unless asked: Prometheus 2 stores each as a
 * series of its own (one more per counter and histogram series), and what a counter's creation
 * would say is not known for most of ours (the kernel's counters start with its namespace).
 */
import { type FamilyData, familyName, type HistogramPoint, type Labels, unitOf } from './model.js';
import { escapeLabelValue } from './text.js';

/** expfmt's writeOpenMetricsFloat: Go's shortest form, with `.0` when it has neither dot nor exponent. */
export function omFloat(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? '+Inf' : '-Inf';
  const s = `${v}`;
  return /[.e]/.test(s) ? s : `${s}.0`;
}

function labels(l: Labels, le?: string): string {
  let out = '';
  for (const name in l) out += `${out === '' ? '' : ','}${name}="${escapeLabelValue(l[name]!)}"`;
  if (le !== undefined) out += `${out === '' ? '' : ','}le="${le}"`;
  return out === '' ? '' : `{${out}}`;
}

function histogramLines(name: string, p: HistogramPoint, out: string[]): void {
  for (let i = 0; i < p.bounds.length; i++) {
    out.push(`${name}_bucket${labels(p.labels, omFloat(p.bounds[i]!))} ${p.cumulative[i]!}`);
  }
  out.push(`${name}_bucket${labels(p.labels, '+Inf')} ${p.count}`);
  out.push(`${name}_sum${labels(p.labels)} ${omFloat(p.sum)}`);
  out.push(`${name}_count${labels(p.labels)} ${p.count}`);
}

export function openMetrics(families: readonly FamilyData[]): string {
  const out: string[] = [];
  for (const f of families) {
    const name = familyName(f);
    const typed = f.type === 'counter' && name === f.name ? 'unknown' : f.type;
    out.push(`# HELP ${name} ${escapeLabelValue(f.help)}`, `# TYPE ${name} ${typed}`);
    const unit = unitOf(f);
    if (unit !== undefined) out.push(`# UNIT ${name} ${unit}`);
    if (f.type === 'histogram') {
      for (const p of f.points) histogramLines(name, p, out);
    } else {
      for (const p of f.points) out.push(`${f.name}${labels(p.labels)} ${omFloat(p.value)}`);
    }
  }
  out.push('# EOF\n');
  return out.join('\n');
}
