/**
 * The programs the dashboard and rule tests run: promtool (Debian package prometheus), jsonnet and
 * jsonnetfmt (Debian package jsonnet). Found, or the tests skip with the reason; under CI=true a
 * missing one fails the test instead, naming the package to install.
 */
import { spawnSync } from 'node:child_process';
import type { TestContext } from 'node:test';

const PACKAGE = { promtool: 'prometheus', jsonnet: 'jsonnet', jsonnetfmt: 'jsonnet' } as const;
type Tool = keyof typeof PACKAGE;

const found = new Map<Tool, boolean>();

function have(tool: Tool): boolean {
  let ok = found.get(tool);
  if (ok === undefined) {
    ok = spawnSync(tool, ['--version'], { stdio: 'ignore' }).status === 0;
    found.set(tool, ok);
  }
  return ok;
}

/** Returns false (and skips the test) when the tool is missing outside CI; throws under CI=true. */
export function needTool(t: TestContext, tool: Tool): boolean {
  if (have(tool)) return true;
  const why = `${tool} not found: apt-get install ${PACKAGE[tool]}`;
  if (process.env['CI'] === 'true') throw new Error(`${why} (CI=true: a missing tool is a failure)`);
  t.skip(why);
  return false;
}

export function run(tool: Tool, args: string[], cwd?: string): { status: number; output: string } {
  const r = spawnSync(tool, args, { encoding: 'utf8', cwd });
  return { status: r.status ?? -1, output: `${r.stdout}${r.stderr}` };
}

export function promtool(args: string[], cwd?: string): { status: number; output: string } {
  return run('promtool', args, cwd);
}
