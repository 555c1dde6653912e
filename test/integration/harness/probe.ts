/** Drives ctprobe.js inside a namespace from a test and collects its JSON lines. */
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { type Netns, waitFor } from './netns.js';
import type { FlowSummary } from './summary.js';

export interface EventLine extends FlowSummary {
  event: 'new' | 'update' | 'destroy';
  flags: number;
}

export interface ProbeLine {
  ready?: boolean;
  rcvbuf?: number;
  overrun?: number;
  error?: string;
  message?: string;
  event?: string;
}

export class EventProbe {
  readonly events: EventLine[] = [];
  readonly other: ProbeLine[] = [];
  private stderr = '';

  private constructor(private readonly child: ChildProcess) {
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      const o = JSON.parse(line) as ProbeLine;
      if (o.event !== undefined) this.events.push(o as unknown as EventLine);
      else this.other.push(o);
    });
    child.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
  }

  static async start(ns: Netns, rcvbuf?: number): Promise<EventProbe> {
    const args = ['events'];
    if (rcvbuf !== undefined) args.push(String(rcvbuf));
    const probe = new EventProbe(ns.spawnNode('test/integration/harness/ctprobe.js', args));
    await waitFor('the event probe to subscribe', () => {
      if (probe.child.exitCode !== null) throw new Error(`ctprobe exited: ${probe.stderr}`);
      return probe.other.find((o) => o.ready) ? true : undefined;
    });
    return probe;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  get errors(): ProbeLine[] {
    return this.other.filter((o) => o.error !== undefined);
  }

  get lost(): number {
    return this.other.reduce((n, o) => n + (o.overrun ?? 0), 0);
  }

  /** Events of one flow, by its original source port (and protocol), in arrival order. */
  flow(protocol: string, sport: number | undefined): EventLine[] {
    return this.events.filter((e) => e.protocol === protocol && e.sport === sport);
  }

  async stop(): Promise<void> {
    if (!this.alive) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    await exited;
  }
}
