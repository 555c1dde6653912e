/** A small reader for the Prometheus text format, enough to look up samples by name and labels. */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseText(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

export class Scrape {
  readonly samples: Sample[];
  constructor(readonly text: string) {
    this.samples = parseText(text);
  }

  all(name: string, match: Record<string, string> = {}): Sample[] {
    return this.samples.filter(
      (s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v),
    );
  }

  /** The one sample with these labels; throws if absent, so a missing series fails loudly. */
  value(name: string, match: Record<string, string> = {}): number {
    const found = this.all(name, match);
    if (found.length !== 1) {
      throw new Error(`${found.length} samples of ${name}${JSON.stringify(match)}; want exactly 1`);
    }
    return found[0]!.value;
  }

  sum(name: string, match: Record<string, string> = {}): number {
    return this.all(name, match).reduce((n, s) => n + s.value, 0);
  }
}
