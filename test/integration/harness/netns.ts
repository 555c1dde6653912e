/**
 * Network namespaces for kernel tests: each test gets its own conntrack table (the table is per
 * namespace), traffic stays on its loopback, and the namespace is deleted afterwards.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';

export { ROOT } from '../../paths.js';

import { ROOT } from '../../paths.js';

/** Repository root, from dist/test/integration/harness. */
export const DIST = `${ROOT}dist/`;

/**
 * Conntrack only tracks a namespace's traffic once a rule there needs it; `ct state new` in the
 * output hook does. Ports 9 (discard) are dropped on input: a SYN or datagram to them is never
 * answered, which leaves a half-open TCP flow and an unreplied UDP flow without ICMP errors.
 * The test's own HTTP (exporter 9466, Prometheus 9090 and a second one on 9091) is not tracked: scrapes would otherwise
 * add the very flows they count, and race with conntrack -L.
 */
export const UNTRACKED_PORTS = [9466, 9090, 9091];
export const TRACKING_RULESET = `table inet ctx {
  chain raw {
    type filter hook output priority raw; policy accept;
    tcp dport { ${UNTRACKED_PORTS.join(', ')} } notrack
    tcp sport { ${UNTRACKED_PORTS.join(', ')} } notrack
  }
  chain out {
    type filter hook output priority 0; policy accept;
    ct state new counter
  }
  chain in {
    type filter hook input priority 0; policy accept;
    tcp dport 9 drop
    udp dport 9 drop
  }
}
`;

let serial = 0;

/** One flow harness/traffic.ts made: the action, address and the ports it used. */
export interface MadeFlow {
  action: string;
  addr: string;
  sport: number;
  dport: number;
}

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

export class Netns {
  private deleted = false;
  private readonly children = new Set<ChildProcess>();

  private constructor(readonly name: string) {}

  /** Creates `ctx-<tag>-<pid>-<n>`, brings lo up and loads the ruleset. */
  static create(tag: string, ruleset = TRACKING_RULESET): Netns {
    return Netns.named(`ctx-${tag}-${process.pid}-${serial++}`, ruleset);
  }

  /** Creates the namespace `name` (one the test makes unique: cni-<uuid>), as create() does. */
  static named(name: string, ruleset = TRACKING_RULESET): Netns {
    const ns = new Netns(name);
    mustRun('ip', ['netns', 'add', ns.name]);
    try {
      mustRun('ip', ['-n', ns.name, 'link', 'set', 'lo', 'up']);
      ns.run('nft', ['-f', '-'], ruleset);
    } catch (err) {
      ns.delete();
      throw err;
    }
    return ns;
  }

  /** Runs a command inside the namespace; throws with its stderr when it fails. */
  run(cmd: string, args: string[], input?: string): string {
    return mustRun('ip', ['netns', 'exec', this.name, cmd, ...args], input).stdout;
  }

  /** Like run, but returns the status instead of throwing. */
  tryRun(cmd: string, args: string[]): RunResult {
    return runCmd('ip', ['netns', 'exec', this.name, cmd, ...args]);
  }

  /** Runs one of our compiled scripts (path relative to dist/) inside the namespace. */
  node(script: string, args: string[]): string {
    return this.run(process.execPath, [`${DIST}${script}`, ...args]);
  }

  /** GET `url` from inside the namespace (harness/http-get.ts): status and body. */
  httpGet(url: string): { status: number; body: string } {
    const out = this.node('test/integration/harness/http-get.js', [url]);
    const nl = out.indexOf('\n');
    return { status: Number(out.slice(0, nl)), body: out.slice(nl + 1) };
  }

  /** Starts a long-running process inside the namespace; it is killed by delete(). */
  spawn(cmd: string, args: string[]): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.name, cmd, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /** Makes flows with harness/traffic.ts inside the namespace; returns what it made. */
  traffic(...actions: string[]): MadeFlow[] {
    return JSON.parse(this.node('test/integration/harness/traffic.js', actions)) as MadeFlow[];
  }

  spawnNode(script: string, args: string[]): ChildProcess {
    return this.spawn(process.execPath, [`${DIST}${script}`, ...args]);
  }

  /**
   * Runs one of our compiled scripts inside the namespace and inside a cgroup (its PID written to
   * `procs` before it starts, so all its memory is charged there); killed by delete(). Through
   * nsenter, which enters the network namespace only: `ip netns exec` also remounts /sys, which
   * hides /sys/fs/cgroup from the process.
   */
  spawnNodeInCgroup(procs: string, script: string, args: string[]): ChildProcess {
    const child = spawn(
      'nsenter',
      [
        `--net=/run/netns/${this.name}`,
        'sh',
        '-c',
        'echo $$ > "$0" && exec "$@"',
        procs,
        process.execPath,
        `${DIST}${script}`,
        ...args,
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /**
   * Runs harness/traffic.ts with `hold=` (and any other) actions and leaves it running, so the held
   * TCP connections stay open until the process is killed; resolves once it has made every flow.
   */
  async holdTraffic(...actions: string[]): Promise<ChildProcess> {
    const child = this.spawnNode('test/integration/harness/traffic.js', actions);
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`traffic ${actions.join(' ')} exited ${code}`)));
    });
    return child;
  }

  /** Ends the processes this namespace started (by PID), then deletes it. Safe to call twice. */
  delete(): void {
    for (const child of this.children) {
      if (child.pid !== undefined && child.exitCode === null) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    if (this.deleted) return;
    this.deleted = true;
    runCmd('ip', ['netns', 'del', this.name]);
  }
}

export function runCmd(cmd: string, args: string[], input?: string): RunResult {
  const res = spawnSync(cmd, args, { encoding: 'utf8', input, maxBuffer: 256 * 1024 * 1024 });
  if (res.error) throw res.error;
  return { status: res.status ?? -1, stdout: res.stdout, stderr: res.stderr };
}

export function mustRun(cmd: string, args: string[], input?: string): RunResult {
  const res = runCmd(cmd, args, input);
  if (res.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${res.status}: ${res.stderr.trim()}`);
  }
  return res;
}

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Collects a spawned child's output until it has exited and its output streams are closed. */
export function finished(child: ChildProcess): Promise<Finished> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}
