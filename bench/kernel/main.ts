/**
 * `npm run bench:kernel` (root): what conntrack events cost, measured against the real kernel.
 *
 * In one network namespace, each consumer runs alone against the same paced flood (UDP NEW flood,
 * then TCP connect/close churn): a minimal C consumer (the floor), `conntrack -E` with its default
 * buffer and with 64 MiB, and the built exporter. Then, with a table of --flows flows, the exporter's
 * memory, scrape latency and start-up dump against `conntrack -L`. Prints one markdown table and
 * writes it, with the raw figures, to dist/bench-kernel.json. See bench/kernel/README.md.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { dirname, resolve } from 'node:path';
import { ConntrackMax } from '../../test/integration/harness/conntrack-max.js';
import { DIST, finished, ROOT, sleep } from '../../test/integration/harness/netns.js';
import { ConntrackEvents, type Consumer, Exporter, Floor } from './consumers.js';
import { BenchNamespace, buildC, type FloodReport } from './kernel.js';
import { exporterFlags, type Options, parseOptions, USAGE, UsageError } from './options.js';
import { cpuSeconds, rssBytes, waitQuiet } from './proc.js';
import {
  type DumpResult,
  type Load,
  type Machine,
  markdown,
  median,
  type RawRun,
  type Results,
  type ScenarioResult,
  summarise,
} from './report.js';

const TCP_PORT = 5001;
const SECOND_EXPORTER = '127.0.0.1:9090'; // untracked by the harness ruleset, like 9466

interface Bins {
  floor: string;
  flood: string;
}

/** Undo steps run in reverse on normal exit, error, SIGINT/SIGTERM; each runs once. */
const cleanups: Array<() => void> = [];
function cleanUp(): void {
  for (let step = cleanups.pop(); step; step = cleanups.pop()) {
    try {
      step();
    } catch (err) {
      process.stderr.write(`cleanup: ${err instanceof Error ? err.message : String(err)}\n`);
    }
  }
}

function log(msg: string): void {
  process.stderr.write(`[bench:kernel] ${msg}\n`);
}

/** The machine cannot run the bench; the message says what to do. */
class SetupError extends Error {}

function preflight(): void {
  if (process.getuid?.() !== 0) {
    throw new SetupError('must run as root: it creates a network namespace and may raise nf_conntrack_max');
  }
  for (const [tool, pkg] of [
    ['gcc', 'gcc'],
    ['ip', 'iproute2'],
    ['nft', 'nftables'],
    ['conntrack', 'conntrack'],
  ]) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
      throw new SetupError(`\`${tool}\` not found: apt-get install ${pkg}`);
    }
  }
  if (!existsSync(`${DIST}src/main.js`))
    throw new SetupError('dist/src/main.js missing: run `npm run build` first');
}

function machine(): Machine {
  const cpu = cpus();
  const out = (cmd: string, args: string[]): string =>
    spawnSync(cmd, args, { encoding: 'utf8', cwd: ROOT }).stdout?.trim() ?? '';
  return {
    cpus: cpu.length,
    cpuModel: cpu[0]?.model ?? 'unknown',
    kernel: release(),
    node: process.version,
    conntrack: out('conntrack', ['--version']).replace(' (conntrack-tools)', '') || 'conntrack ?',
    commit: out('git', ['describe', '--always', '--dirty']) || 'unknown',
    date: `${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`,
  };
}

function floodArgs(load: Load): string[] {
  const args = [load.kind, String(load.count), String(load.rate)];
  return load.kind === 'tcp' ? [...args, String(TCP_PORT)] : args;
}

/** One consumer, already subscribed and idle, against one flood. */
async function measure(bench: BenchNamespace, bins: Bins, consumer: Consumer, load: Load): Promise<RawRun> {
  await waitQuiet(consumer.pid, consumer.name);
  const cpu0 = cpuSeconds(consumer.pid);
  const stopCollector = load.kind === 'tcp' ? bench.collectEvery(1000) : undefined;
  let flood: FloodReport;
  try {
    flood = await bench.flood(bins.flood, floodArgs(load));
  } finally {
    await stopCollector?.();
  }
  // UDP flows outlive the run, so the table's count is what the kernel created; TCP flows are all
  // gone once their TIME_WAIT is collected, each with its DESTROY.
  const flows = load.kind === 'udp' ? bench.count() : flood.done;
  if (load.kind === 'tcp') await bench.collectExpired();
  await waitQuiet(consumer.pid, consumer.name);
  const cpu = Math.round((cpuSeconds(consumer.pid) - cpu0) * 1000) / 1000; // clock ticks, without float dust
  const socket = bench.eventSocket();
  return {
    consumer: consumer.name,
    flood,
    flows,
    received: await consumer.received(),
    socket,
    cpuSeconds: cpu,
  };
}

async function eventScenario(
  bench: BenchNamespace,
  bins: Bins,
  tmp: string,
  load: Load,
): Promise<ScenarioResult> {
  const starters: Array<() => Promise<Consumer>> = [
    () => Floor.start(bench, bins.floor),
    () => ConntrackEvents.start(bench, `${tmp}/events.txt`),
    () => ConntrackEvents.start(bench, `${tmp}/events.txt`, 64 << 20),
    () => Exporter.start(bench),
  ];
  const runs: RawRun[] = [];
  for (const start of starters) {
    await bench.flush();
    const consumer = await start();
    try {
      log(`${load.kind}: ${consumer.name}`);
      const run = await measure(bench, bins, consumer, load);
      runs.push(run);
      const r = run.received;
      log(
        `  ${r.new} new, ${r.update} update, ${r.destroy} destroy, ${run.socket.drops} dropped; ${run.cpuSeconds} s CPU`,
      );
    } finally {
      await consumer.stop();
    }
  }
  return summarise(load, runs);
}

/** Runs `probe.js` inside the namespace and returns its stdout. */
async function probe(bench: BenchNamespace, args: string[]): Promise<string> {
  const res = await finished(bench.ns.spawnNode('bench/kernel/probe.js', args));
  if (res.code !== 0) throw new Error(`probe ${args.join(' ')} exited ${res.code}: ${res.stderr.trim()}`);
  return res.stdout.trim();
}

async function timeConntrackList(bench: BenchNamespace): Promise<number> {
  const t0 = process.hrtime.bigint();
  const res = await finished(bench.ns.spawn('sh', ['-c', 'exec conntrack -L >/dev/null']));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (res.code !== 0) throw new Error(`conntrack -L exited ${res.code}: ${res.stderr.trim()}`);
  return seconds;
}

/** Spawns a second exporter and times it until its /readyz answers 200 (seen from inside the namespace). */
async function timeExporterStartup(bench: BenchNamespace): Promise<number> {
  const poller = bench.ns.spawnNode('bench/kernel/probe.js', ['ready', `http://${SECOND_EXPORTER}/readyz`]);
  const readyAt = finished(poller);
  await sleep(300); // the poller is up before the exporter starts
  const t0 = process.hrtime.bigint();
  const child = bench.ns.spawnNode('src/main.js', [
    `--web.listen-address=${SECOND_EXPORTER}`,
    '--log.format=json',
    ...exporterFlags(),
  ]);
  const exit = finished(child);
  try {
    const first = await Promise.race([
      readyAt.then((r) => ({ ready: r })),
      exit.then((r) => ({ exited: r })),
    ]);
    if ('exited' in first)
      throw new Error(`the second exporter exited ${first.exited.code}: ${first.exited.stderr}`);
    if (first.ready.code !== 0)
      throw new Error(`probe ready exited ${first.ready.code}: ${first.ready.stderr}`);
    const seconds = Number(BigInt(first.ready.stdout.trim()) - t0) / 1e9;
    if (seconds <= 0)
      throw new Error('the second exporter was ready before it started: something else answers');
    return seconds;
  } finally {
    poller.kill('SIGTERM');
    child.kill('SIGTERM');
    await Promise.all([readyAt, exit]);
  }
}

async function dumpScenario(bench: BenchNamespace, bins: Bins, opts: Options): Promise<DumpResult> {
  await bench.flush();
  const exporter = await Exporter.start(bench);
  try {
    const pid = exporter.pid;
    await waitQuiet(pid, 'exporter');
    log(`dump: exporter idle CPU over ${opts.idleSeconds} s`);
    const idle0 = cpuSeconds(pid);
    await sleep(opts.idleSeconds * 1000);
    const idleCpuSeconds = Math.round((cpuSeconds(pid) - idle0) * 1000) / 1000;
    const rssIdleBytes = rssBytes(pid);

    log(`dump: filling the table with ${opts.flows} flows`);
    await bench.flood(bins.flood, floodArgs({ kind: 'udp', count: opts.flows, rate: opts.rate }));
    await waitQuiet(pid, 'exporter');
    const flows = bench.count();
    const rssFullBytes = rssBytes(pid);

    const scrapeMs = JSON.parse(
      await probe(bench, ['get', 'http://127.0.0.1:9466/metrics', String(opts.scrapes)]),
    ) as number[];
    const listSeconds: number[] = [];
    const startupSeconds: number[] = [];
    for (let i = 0; i < opts.dumpRepeats; i++) {
      log(`dump: conntrack -L and a second exporter's start-up (${i + 1}/${opts.dumpRepeats})`);
      listSeconds.push(await timeConntrackList(bench));
      startupSeconds.push(await timeExporterStartup(bench));
    }
    return {
      flows,
      idleSeconds: opts.idleSeconds,
      idleCpuSeconds,
      rssIdleBytes,
      rssFullBytes,
      bytesPerFlow: (rssFullBytes - rssIdleBytes) / flows,
      scrapeMs,
      scrapeMedianMs: median(scrapeMs),
      listSeconds,
      listMedianSeconds: median(listSeconds),
      startupSeconds,
      startupMedianSeconds: median(startupSeconds),
      startupRatio: median(startupSeconds) / median(listSeconds),
    };
  } finally {
    await exporter.stop();
  }
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2), process.env);
  if (opts === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  preflight();
  const binDir = `${DIST}bench/kernel/bin`;
  mkdirSync(binDir, { recursive: true });
  const bins: Bins = { floor: buildC('ctfloor', binDir), flood: buildC('flood', binDir) };

  const tmp = mkdtempSync(existsSync('/dev/shm') ? '/dev/shm/ctx-bench-' : `${binDir}/tmp-`);
  cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));
  const limit = new ConntrackMax();
  cleanups.push(limit.restore);
  const before = Number(limit.original);
  const max = limit.atLeast(Math.ceil(Math.max(opts.flows, opts.tcpConns) * 1.1) + 10_000);
  if (max !== before) log(`nf_conntrack_max raised from ${before} to ${max} for the bench`);
  const bench = BenchNamespace.create();
  cleanups.push(() => bench.delete());
  log(`namespace ${bench.ns.name}`);

  const results: Results = { machine: machine(), options: opts };
  const udp: Load = { kind: 'udp', count: opts.flows, rate: opts.rate };
  const tcp: Load = { kind: 'tcp', count: opts.tcpConns, rate: opts.tcpRate };
  if (opts.scenarios.includes('udp')) results.udp = await eventScenario(bench, bins, tmp, udp);
  if (opts.scenarios.includes('tcp')) results.tcp = await eventScenario(bench, bins, tmp, tcp);
  if (opts.scenarios.includes('dump')) results.dump = await dumpScenario(bench, bins, opts);
  await bench.flush();
  cleanUp();

  const table = markdown(results);
  process.stdout.write(`\n${table}`);
  const out = resolve(ROOT, opts.out);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify({ ...results, markdown: table }, null, 2)}\n`);
  log(`wrote ${out}`);
}

process.on('exit', cleanUp);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: cleaning up`);
    cleanUp();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}

try {
  await main();
} catch (err) {
  if (err instanceof UsageError) process.stderr.write(`bench:kernel: ${err.message}\n\n${USAGE}\n`);
  else if (err instanceof SetupError) process.stderr.write(`bench:kernel: ${err.message}\n`);
  else process.stderr.write(`bench:kernel failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
} finally {
  cleanUp();
}
