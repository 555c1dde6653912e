/** promtool (Debian package prometheus): found, or the tests skip with the reason (fail under CI). */
import { spawnSync } from 'node:child_process';
import type { TestContext } from 'node:test';

export const HAVE_PROMTOOL = spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;

/** Returns false (and skips the test) when promtool is missing outside CI. */
export function needPromtool(t: TestContext): boolean {
  if (HAVE_PROMTOOL) return true;
  if (process.env['CI'] === 'true')
    throw new Error('promtool not found (apt-get install prometheus) and CI=true');
  t.skip('promtool not found: apt-get install prometheus');
  return false;
}

export function promtool(args: string[], cwd?: string): { status: number; output: string } {
  const r = spawnSync('promtool', args, { encoding: 'utf8', cwd });
  return { status: r.status ?? -1, output: `${r.stdout}${r.stderr}` };
}
