/**
 * The Prometheus text format 0.0.4, byte for byte as the client library wrote it before (the
 * golden fixture proves it): HELP and TYPE per family, a blank line between families, `le`
 * first among a bucket's labels, numbers as JavaScript prints them.
 */
import type { FamilyData, HistogramPoint, Labels } from './model.js';

/** HELP text: backslash and newline escaped. */
export const escapeHelp = (s: string): string => s.replaceAll('\\', '\\\\').replaceAll('\n', '\\n');

/** A label value: backslash, newline and double quote escaped. */
export const escapeLabelValue = (s: string): string => escapeHelp(s).replaceAll('"', '\\"');

export function textNumber(v: number): string {
  if (Number.isFinite(v)) return `${v}`;
  if (Number.isNaN(v)) return 'NaN';
  return v > 0 ? '+Inf' : '-Inf';
}

/** `{a="x",b="y"}`, with `first` (a bucket's le) before the others; '' without labels. */
export function labelText(labels: Labels, first?: string): string {
  let out = first ?? '';
  for (const name in labels) {
    if (out !== '') out += ',';
    out += `${name}="${escapeLabelValue(labels[name]!)}"`;
  }
  return out === '' ? '' : `{${out}}`;
}

function histogramLines(name: string, p: HistogramPoint, lines: string[]): void {
  for (let i = 0; i < p.bounds.length; i++) {
    lines.push(`${name}_bucket${labelText(p.labels, `le="${p.bounds[i]}"`)} ${textNumber(p.cumulative[i]!)}`);
  }
  lines.push(`${name}_bucket${labelText(p.labels, 'le="+Inf"')} ${textNumber(p.count)}`);
  lines.push(`${name}_sum${labelText(p.labels)} ${textNumber(p.sum)}`);
  lines.push(`${name}_count${labelText(p.labels)} ${textNumber(p.count)}`);
}

export function textFormat(families: readonly FamilyData[]): string {
  const blocks: string[] = [];
  for (const f of families) {
    const lines = [`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`];
    if (f.type === 'histogram') {
      for (const p of f.points) histogramLines(f.name, p, lines);
    } else {
      for (const p of f.points) lines.push(`${f.name}${labelText(p.labels)} ${textNumber(p.value)}`);
    }
    blocks.push(lines.join('\n'));
  }
  return `${blocks.join('\n\n')}\n`;
}
