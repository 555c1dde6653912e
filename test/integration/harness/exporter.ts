/** The built exporter (dist/src/main.js) running inside a test namespace. */
import type { ChildProcess } from 'node:child_process';
import { type Netns, waitFor } from './netns.js';
import { Scrape } from './promtext.js';

export const LISTEN = '127.0.0.1:9466';

export class ExporterProcess {
  stderr = '';
  stdout = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(
    private readonly ns: Netns,
    readonly child: ChildProcess,
  ) {
    child.stdout!.on('data', (d: Buffer) => {
      this.stdout += d.toString();
    });
    child.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
    this.exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
  }

  /**
   * Starts the exporter and waits until it says the first dump is merged: /readyz over plain
   * HTTP on LISTEN, or `ready` when the test listens elsewhere or speaks TLS.
   */
  static async start(
    ns: Netns,
    flags: string[] = [],
    options: {
      listen?: string[];
      ready?: (exp: ExporterProcess) => boolean;
      /** A cgroup's cgroup.procs: the exporter runs in that cgroup from its first byte. */
      cgroupProcs?: string;
    } = {},
  ): Promise<ExporterProcess> {
    const listen = options.listen ?? [LISTEN];
    const args = [...listen.map((a) => `--web.listen-address=${a}`), '--log.format=json', ...flags];
    const child =
      options.cgroupProcs === undefined
        ? ns.spawnNode('src/main.js', args)
        : ns.spawnNodeInCgroup(options.cgroupProcs, 'src/main.js', args);
    const exp = new ExporterProcess(ns, child);
    const ready = options.ready ?? ((e: ExporterProcess) => e.get('/readyz').status === 200);
    await waitFor('the exporter to become ready', () => {
      if (child.exitCode !== null)
        throw new Error(`exporter exited ${child.exitCode}: ${exp.stderr}${exp.stdout}`);
      return ready(exp) ? true : undefined;
    });
    return exp;
  }

  get(path: string): { status: number; body: string } {
    return this.ns.httpGet(`http://${LISTEN}${path}`);
  }

  scrape(): Scrape {
    const res = this.get('/metrics');
    if (res.status !== 200) throw new Error(`/metrics answered ${res.status}: ${res.body}`);
    return new Scrape(res.body);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    await this.exited;
  }
}
