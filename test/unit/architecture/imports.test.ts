/**
 * The shape of src/, checked: the data flow from kernel message to /metrics line reads from the
 * folder layout, so a module imports only from its own folder and from folders below it in that
 * flow, and no chain of imports comes back to where it started.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from '../../paths.js';

const SRC = join(ROOT, 'src');

/**
 * Layers, lowest first: a folder may import from its own layer's folder and from lower layers.
 * Top-level files are named by their file name.
 */
const LAYERS: readonly (readonly string[])[] = [
  ['errors.ts'],
  ['config.ts', 'netlink'],
  ['log.ts'],
  ['ctnetlink'],
  ['table', 'kernel'],
  ['attribution', 'sync'],
  ['namespace'],
  ['metrics'],
  ['http'],
  ['app.ts'],
  ['main.ts'],
];

const layerOf = (unit: string): number => {
  const i = LAYERS.findIndex((l) => l.includes(unit));
  if (i < 0) throw new Error(`${unit} is in no layer: add it to LAYERS`);
  return i;
};

/** src/a/b.ts -> 'a'; src/app.ts -> 'app.ts'. */
const unitOf = (file: string): string => {
  const [first = ''] = relative(SRC, file).split('/');
  return first;
};

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;'"()=]*?(?:from\s+)?'(\.{1,2}\/[^']+)'/g)) {
    out.push(normalize(join(dirname(file), m[1]!.replace(/\.js$/, '.ts'))));
  }
  return out;
}

const files = sources(SRC);
const graph = new Map(files.map((f) => [f, importsOf(f)]));

describe('src/ layout', () => {
  it('every relative import names a file that exists', () => {
    for (const [file, deps] of graph) {
      for (const d of deps) assert.ok(graph.has(d), `${relative(SRC, file)} imports ${relative(SRC, d)}`);
    }
  });

  it('imports go down the data flow, never up', () => {
    const upward: string[] = [];
    for (const [file, deps] of graph) {
      const from = unitOf(file);
      for (const d of deps) {
        const to = unitOf(d);
        if (to !== from && layerOf(to) >= layerOf(from))
          upward.push(`${relative(SRC, file)} -> ${relative(SRC, d)}`);
      }
    }
    assert.deepEqual(upward, []);
  });

  it('has no import cycle', () => {
    const state = new Map<string, 'open' | 'done'>();
    const cycles: string[] = [];
    const visit = (f: string, path: string[]): void => {
      if (state.get(f) === 'done') return;
      if (state.get(f) === 'open') {
        cycles.push([...path.slice(path.indexOf(f)), f].map((x) => relative(SRC, x)).join(' -> '));
        return;
      }
      state.set(f, 'open');
      for (const d of graph.get(f) ?? []) visit(d, [...path, f]);
      state.set(f, 'done');
    };
    for (const f of files) visit(f, []);
    assert.deepEqual(cycles, []);
  });
});
