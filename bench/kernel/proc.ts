/**
 * What a process costs, read from /proc: CPU time of the process itself (all its threads, not its
 * children), so other load on the machine does not count, and its resident memory.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { sleep } from '../../test/integration/harness/netns.js';

const TICKS_PER_SECOND = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

/** utime + stime in seconds (fields 14 and 15 of /proc/PID/stat, after the command name). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state), so field N is fields[N - 3]
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

/**
 * Waits until the process has used at most `idleShare` of a CPU over the last `windowMs`: it has
 * drained what was queued for it (and any follow-up work it schedules within the window). Idle
 * housekeeping timers stay well below the threshold; a consumer still draining uses a whole CPU.
 */
export async function waitQuiet(pid: number, what: string, windowMs = 2000, idleShare = 0.05): Promise<void> {
  const stepMs = 250;
  const history: number[] = [cpuSeconds(pid)];
  const deadline = Date.now() + 180_000;
  for (;;) {
    await sleep(stepMs);
    history.push(cpuSeconds(pid));
    const span = windowMs / stepMs;
    if (history.length > span && history.at(-1)! - history.at(-1 - span)! <= (idleShare * windowMs) / 1000)
      return;
    if (Date.now() > deadline) throw new Error(`${what} did not go idle within 180 s`);
  }
}
