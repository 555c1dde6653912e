/** Results of the kernel bench: derived figures (loss, CPU per event, ratios) and the one table. */
import type { Received } from './consumers.js';
import type { EventSocket, FloodReport } from './kernel.js';
import type { Options } from './options.js';
import { exporterFlags } from './options.js';

export interface Machine {
  cpus: number;
  cpuModel: string;
  kernel: string;
  node: string;
  conntrack: string;
  commit: string;
  date: string;
}

export interface Load {
  kind: 'udp' | 'tcp';
  count: number;
  rate: number;
}

/** One consumer alone against one flood, as measured. */
export interface RawRun {
  consumer: string;
  flood: FloodReport;
  /** Flows the kernel created during the flood. */
  flows: number;
  received: Received;
  /** The consumer's event socket as the kernel reports it after the run. */
  socket: EventSocket;
  cpuSeconds: number;
}

export interface Run extends RawRun {
  expected: { new: number; update: number | undefined; destroy: number };
  receivedTotal: number;
  /** Events the kernel dropped at the consumer's socket. */
  lost: number;
  /** CPU seconds per 100k events the consumer received, and per 100k it was offered (received + lost). */
  cpuPer100kReceived: number;
  cpuPer100kOffered: number;
  /** The same divided by the floor's. */
  ratioReceived: number | undefined;
  ratioOffered: number | undefined;
}

export interface ScenarioResult {
  load: Load;
  runs: Run[];
}

export interface DumpResult {
  flows: number;
  idleSeconds: number;
  idleCpuSeconds: number;
  rssIdleBytes: number;
  rssFullBytes: number;
  bytesPerFlow: number;
  scrapeMs: number[];
  scrapeMedianMs: number;
  listSeconds: number[];
  listMedianSeconds: number;
  startupSeconds: number[];
  startupMedianSeconds: number;
  startupRatio: number;
}

export interface Results {
  machine: Machine;
  options: Options;
  udp?: ScenarioResult;
  tcp?: ScenarioResult;
  dump?: DumpResult;
}

const FLOOR = 'C floor';

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * What each consumer should have received and what it lost. Every flow is one NEW (and, for the
 * TCP churn, one DESTROY); how many UPDATEs a TCP flow makes is taken from the floor, per flow,
 * when the floor lost nothing. Loss is the kernel's drop counter of the consumer's event socket,
 * so received + lost is what the kernel offered it. CPU per event is given both ways: per event
 * received (the work per event handled) and per event offered (the cost of following the load,
 * which a consumer that loses events and re-dumps pays too).
 */
export function summarise(load: Load, raw: RawRun[]): ScenarioResult {
  const floor = raw.find((r) => r.consumer === FLOOR);
  const updatesPerFlow =
    load.kind === 'udp' ? 0 : floor?.socket.drops === 0 ? floor.received.update / floor.flows : undefined;
  const per100k = (cpu: number, events: number): number => (events > 0 ? (cpu / events) * 1e5 : Number.NaN);
  const runs = raw.map((r): Run => {
    const receivedTotal = r.received.new + r.received.update + r.received.destroy;
    return {
      ...r,
      expected: {
        new: r.flows,
        update: updatesPerFlow === undefined ? undefined : Math.round(updatesPerFlow * r.flows),
        destroy: load.kind === 'tcp' ? r.flows : 0,
      },
      receivedTotal,
      lost: r.socket.drops,
      cpuPer100kReceived: per100k(r.cpuSeconds, receivedTotal),
      cpuPer100kOffered: per100k(r.cpuSeconds, receivedTotal + r.socket.drops),
      ratioReceived: undefined,
      ratioOffered: undefined,
    };
  });
  const base = runs.find((r) => r.consumer === FLOOR);
  if (base && base.cpuPer100kReceived > 0) {
    for (const r of runs) {
      r.ratioReceived = r.cpuPer100kReceived / base.cpuPer100kReceived;
      r.ratioOffered = r.cpuPer100kOffered / base.cpuPer100kOffered;
    }
  }
  return { load, runs };
}

const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const fixed = (n: number, digits: number): string => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
const withRatio = (cost: number, ratio: number | undefined): string =>
  `${fixed(cost, 3)}${ratio === undefined ? '' : ` (${fixed(ratio, 2)}x)`}`;
const size = (bytes: number): string => (bytes >= 2 ** 20 ? mib(bytes) : `${(bytes / 1024).toFixed(0)} KiB`);

function loadLabel(s: ScenarioResult): string {
  const what = s.load.kind === 'udp' ? 'UDP NEW flood' : 'TCP churn (NEW, UPDATE, DESTROY)';
  const unit = s.load.kind === 'udp' ? 'flows' : 'connections';
  return `${what}, ${int(s.load.count)} ${unit} paced at ${int(s.load.rate)}/s`;
}

function scenarioRows(s: ScenarioResult, columns: string[]): string[][] {
  const label = loadLabel(s);
  const cells = (f: (r: Run) => string): string[] =>
    columns.map((c) => {
      const r = s.runs.find((x) => x.consumer === c);
      return r ? f(r) : '';
    });
  const expectedTotal = (r: Run): string =>
    r.expected.update === undefined ? '?' : int(r.expected.new + r.expected.update + r.expected.destroy);
  return [
    [`**${label}**`, ...columns.map(() => '')],
    ['events received / expected', ...cells((r) => `${int(r.receivedTotal)} / ${expectedTotal(r)}`)],
    [
      'events lost (kernel drops at the event socket)',
      ...cells((r) => {
        const pct = r.receivedTotal + r.lost > 0 ? (100 * r.lost) / (r.receivedTotal + r.lost) : 0;
        const notes = [r.received.note];
        if (r.received.reportedLost !== undefined && r.received.reportedLost !== r.lost) {
          notes.push(`reports ${int(r.received.reportedLost)}`);
        }
        const said = notes.filter((n) => n !== undefined).join('; ');
        return `${int(r.lost)}${pct >= 0.05 ? ` (${pct.toFixed(1)}%)` : ''}${said ? `; ${said}` : ''}`;
      }),
    ],
    ['event socket receive buffer (kernel, 2x requested)', ...cells((r) => size(r.socket.rcvbuf))],
    ['CPU seconds (whole run)', ...cells((r) => fixed(r.cpuSeconds, 2))],
    [
      'CPU s per 100k events received (x floor)',
      ...cells((r) => withRatio(r.cpuPer100kReceived, r.ratioReceived)),
    ],
    [
      'CPU s per 100k events offered, received + lost (x floor)',
      ...cells((r) => withRatio(r.cpuPer100kOffered, r.ratioOffered)),
    ],
    [
      'load achieved; generator CPU s',
      ...cells((r) => `${int(r.flood.done / r.flood.seconds)}/s; ${fixed(r.flood.cpuSeconds, 2)}`),
    ],
  ];
}

function dumpRows(d: DumpResult, columns: string[]): string[][] {
  const at = (column: string, text: string): string[] => columns.map((c) => (c === column ? text : ''));
  const n = int(d.flows);
  return [
    [`**Table of ${n} flows**`, ...columns.map(() => '')],
    [
      `RSS idle -> with ${n} flows (bytes per flow above idle)`,
      ...at('exporter', `${mib(d.rssIdleBytes)} -> ${mib(d.rssFullBytes)} (${int(d.bytesPerFlow)} B)`),
    ],
    [
      `dump: \`conntrack -L >/dev/null\`; exporter spawn until /readyz 200 (median of ${d.listSeconds.length})`,
      ...columns.map((c) =>
        c === 'conntrack -E'
          ? `\`conntrack -L\`: ${fixed(d.listMedianSeconds, 2)} s`
          : c === 'exporter'
            ? `${fixed(d.startupMedianSeconds, 2)} s (${fixed(d.startupRatio, 2)}x conntrack -L)`
            : '',
      ),
    ],
    [
      `/metrics GET at ${n} flows (median of ${d.scrapeMs.length})`,
      ...at('exporter', `${fixed(d.scrapeMedianMs, 1)} ms`),
    ],
    [`idle CPU over ${d.idleSeconds} s, empty table`, ...at('exporter', `${fixed(d.idleCpuSeconds, 3)} s`)],
  ];
}

export function markdown(res: Results): string {
  const m = res.machine;
  const columns = [...new Set([...(res.udp?.runs ?? []), ...(res.tcp?.runs ?? [])].map((r) => r.consumer))];
  for (const c of ['conntrack -E', 'exporter']) if (!columns.includes(c)) columns.push(c);
  const rows = [
    ['measure', ...columns.map((c) => (c.startsWith('conntrack') ? `\`${c}\`` : c))],
    ['---', ...columns.map(() => '---')],
    ...(res.udp ? scenarioRows(res.udp, columns) : []),
    ...(res.tcp ? scenarioRows(res.tcp, columns) : []),
    ...(res.dump ? dumpRows(res.dump, columns) : []),
  ];
  const machine =
    `Machine: ${m.cpus} x ${m.cpuModel}, kernel ${m.kernel}, Node.js ${m.node}, ${m.conntrack}; ` +
    `exporter at ${m.commit}${exporterFlags().length > 0 ? ` with ${exporterFlags().join(' ')}` : ' with its default flags'}; ${m.date}.`;
  const table = rows.map((r) => `| ${r.join(' | ')} |`).join('\n');
  return (
    `${machine}\n\n${table}\n\n` +
    'Each consumer runs alone against the same paced load, in a namespace, the table flushed before. CPU is ' +
    'its own utime+stime from /proc, from the start of the load until it has been idle for 2 s. Lost = the ' +
    "kernel's drop counter of its event socket. Expected TCP UPDATEs are the floor's per connection; " +
    'expired TCP flows are collected by a `conntrack -L` every second (see bench/kernel/README.md).\n'
  );
}
