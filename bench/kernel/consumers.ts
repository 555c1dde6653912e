/**
 * The event consumers the bench compares, each started inside the bench namespace and asked
 * afterwards what it received: the C floor, `conntrack -E`, and the built exporter.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { ExporterProcess } from '../../test/integration/harness/exporter.js';
import { sleep, waitFor } from '../../test/integration/harness/netns.js';
import type { BenchNamespace } from './kernel.js';
import { exporterFlags } from './options.js';

export interface Received {
  new: number;
  update: number;
  destroy: number;
  /** Events lost as the consumer itself reports them; undefined if it cannot tell. */
  reportedLost: number | undefined;
  note?: string;
}

export interface Consumer {
  readonly name: string;
  readonly pid: number;
  /** What it has received so far; called once the bench has measured its CPU time. */
  received(): Promise<Received>;
  stop(): Promise<void>;
}

function pidOf(child: ChildProcess): number {
  if (child.pid === undefined) throw new Error('child process has no pid');
  return child.pid;
}

async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await exited;
}

/** bench/kernel/ctfloor.c: prints "ready", then a JSON line of counts per SIGUSR1. */
export class Floor implements Consumer {
  readonly name = 'C floor';
  private readonly lines: AsyncIterator<string>;

  private constructor(private readonly child: ChildProcess) {
    this.lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  }

  get pid(): number {
    return pidOf(this.child);
  }

  static async start(bench: BenchNamespace, bin: string): Promise<Floor> {
    const floor = new Floor(bench.ns.spawn(bin, []));
    const first = await floor.lines.next();
    if (first.done || first.value !== 'ready')
      throw new Error(`ctfloor did not start: ${String(first.value)}`);
    return floor;
  }

  async received(): Promise<Received> {
    this.child.kill('SIGUSR1');
    const line = await this.lines.next();
    if (line.done) throw new Error('ctfloor exited before reporting');
    const c = JSON.parse(line.value) as { new: number; update: number; destroy: number; drops: number };
    return { new: c.new, update: c.update, destroy: c.destroy, reportedLost: c.drops };
  }

  stop(): Promise<void> {
    return terminate(this.child);
  }
}

function occurrences(haystack: Buffer, needle: string): number {
  let n = 0;
  for (let i = haystack.indexOf(needle); i >= 0; i = haystack.indexOf(needle, i + needle.length)) n++;
  return n;
}

/**
 * `conntrack -E` writing its lines to a file on tmpfs, counted after the run: no second process
 * competes for the CPU while it runs. It flushes stdout after every event, so the file is complete
 * when it goes idle. It cannot tell how many events it lost, only that it hit ENOBUFS. Note that
 * conntrack-tools 1.4.7 applies --buffer-size to its request socket, not to the one subscribed to
 * events (`ss -f netlink -m` shows it), so there the option changes nothing.
 */
export class ConntrackEvents implements Consumer {
  private stderr = '';

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
    private readonly file: string,
  ) {
    child.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
  }

  get pid(): number {
    return pidOf(this.child);
  }

  /** `bufferSize` in bytes is passed as --buffer-size; undefined keeps conntrack's default. */
  static async start(bench: BenchNamespace, file: string, bufferSize?: number): Promise<ConntrackEvents> {
    const extra = bufferSize === undefined ? [] : ['--buffer-size', String(bufferSize)];
    const name =
      bufferSize === undefined ? 'conntrack -E' : `conntrack -E --buffer-size ${bufferSize >> 20}MiB`;
    // `exec` keeps the PID: the one whose CPU is measured is conntrack itself, not the shell.
    const child = bench.ns.spawn('sh', [
      '-c',
      'out=$1; shift; exec conntrack -E "$@" >"$out"',
      'sh',
      file,
      ...extra,
    ]);
    const ce = new ConntrackEvents(name, child, file);
    await waitFor('conntrack -E to open its netlink socket', () => {
      if (child.exitCode !== null) throw new Error(`conntrack -E exited ${child.exitCode}: ${ce.stderr}`);
      return ce.hasSocket() ? true : undefined;
    });
    await sleep(200); // its group subscription follows the socket at once
    return ce;
  }

  private hasSocket(): boolean {
    try {
      const dir = `/proc/${this.pid}/fd`;
      return readdirSync(dir).some((fd) => readlinkSync(`${dir}/${fd}`).startsWith('socket:'));
    } catch {
      return false;
    }
  }

  async received(): Promise<Received> {
    const out = readFileSync(this.file);
    const enobufs = occurrences(Buffer.from(this.stderr), 'ENOBUFS');
    return {
      new: occurrences(out, '[NEW]'),
      update: occurrences(out, '[UPDATE]'),
      destroy: occurrences(out, '[DESTROY]'),
      reportedLost: undefined,
      ...(enobufs > 0 ? { note: `hit ENOBUFS ${enobufs} times` } : {}),
    };
  }

  async stop(): Promise<void> {
    await terminate(this.child);
    rmSync(this.file, { force: true });
  }
}

/** The built exporter (dist/src/main.js) on 127.0.0.1:9466 with its default flags (plus BENCH_EXPORTER_FLAGS). */
export class Exporter implements Consumer {
  readonly name = 'exporter';

  private constructor(readonly process: ExporterProcess) {}

  get pid(): number {
    return pidOf(this.process.child);
  }

  static async start(bench: BenchNamespace): Promise<Exporter> {
    return new Exporter(await ExporterProcess.start(bench.ns, exporterFlags()));
  }

  async received(): Promise<Received> {
    const s = this.process.scrape();
    const events = (event: string): number => s.value('conntrack_events_total', { event });
    return {
      new: events('new'),
      update: events('update'),
      destroy: events('destroy'),
      reportedLost: s.value('conntrack_collector_events_lost_total'),
      note: `${s.sum('conntrack_collector_resyncs_total', { reason: 'overrun' })} overrun resyncs`,
    };
  }

  stop(): Promise<void> {
    return this.process.stop();
  }
}
