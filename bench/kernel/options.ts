/** Flags of `npm run bench:kernel -- [flags]`, each also settable by an environment variable. */

const SCENARIOS = ['udp', 'tcp', 'dump'] as const;
export type Scenario = (typeof SCENARIOS)[number];

/** Extra exporter flags for both exporter instances (BENCH_EXPORTER_FLAGS, space-separated), e.g. `--top.k=0`. */
export function exporterFlags(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env['BENCH_EXPORTER_FLAGS'] ?? '').split(/\s+/).filter((f) => f !== '');
}

export interface Options {
  /** UDP flood: distinct new flows, and the pace in flows per second. */
  flows: number;
  rate: number;
  /** TCP churn: connect/accept/close cycles, and the pace in connections per second. */
  tcpConns: number;
  tcpRate: number;
  scenarios: Scenario[];
  /** Seconds of exporter idle CPU measured with an empty table. */
  idleSeconds: number;
  /** Repetitions of each timed dump (`conntrack -L`, exporter start-up); the median is reported. */
  dumpRepeats: number;
  /** GETs of /metrics at full table; the median is reported. */
  scrapes: number;
  out: string;
}

const DEFAULTS: Options = {
  flows: 1_000_000,
  rate: 100_000,
  tcpConns: 100_000,
  tcpRate: 10_000,
  scenarios: [...SCENARIOS],
  idleSeconds: 10,
  dumpRepeats: 3,
  scrapes: 10,
  out: 'dist/bench-kernel.json',
};

/** A small fast run for development: 100k flows, 20k connections, single dumps. */
const QUICK: Partial<Options> = {
  flows: 100_000,
  tcpConns: 20_000,
  idleSeconds: 3,
  dumpRepeats: 1,
  scrapes: 5,
};

const NUMERIC = {
  flows: ['--flows', 'BENCH_FLOWS'],
  rate: ['--rate', 'BENCH_RATE'],
  tcpConns: ['--tcp-conns', 'BENCH_TCP_CONNS'],
  tcpRate: ['--tcp-rate', 'BENCH_TCP_RATE'],
  idleSeconds: ['--idle-seconds', 'BENCH_IDLE_SECONDS'],
  dumpRepeats: ['--dump-repeats', 'BENCH_DUMP_REPEATS'],
  scrapes: ['--scrapes', 'BENCH_SCRAPES'],
} as const satisfies Record<string, readonly [string, string]>;

export const USAGE = `usage: npm run bench:kernel -- [--quick] [flags]   (as root)
  --quick                 small fast run (100k flows, 20k connections, single dumps)
  --flows=N               UDP flood flows, also the dump table size   [1000000]  BENCH_FLOWS
  --rate=N                UDP flows per second                         [100000]   BENCH_RATE
  --tcp-conns=N           TCP churn connections                        [100000]   BENCH_TCP_CONNS
  --tcp-rate=N            TCP connections per second                   [10000]    BENCH_TCP_RATE
  --scenarios=LIST        any of udp,tcp,dump                          [udp,tcp,dump] BENCH_SCENARIOS
  --idle-seconds=N        exporter idle CPU window                     [10]       BENCH_IDLE_SECONDS
  --dump-repeats=N        timed dumps of each kind (median)            [3]        BENCH_DUMP_REPEATS
  --scrapes=N             /metrics GETs at full table (median)         [10]       BENCH_SCRAPES
  --out=PATH              JSON result                                  [dist/bench-kernel.json]
Numbers accept _ separators and k/M suffixes (100k, 1M).`;

export class UsageError extends Error {}

function parseCount(name: string, text: string): number {
  const m = /^(\d[\d_]*)([kM]?)$/.exec(text.trim());
  const n = m
    ? Number(m[1]!.replaceAll('_', '')) * (m[2] === 'k' ? 1e3 : m[2] === 'M' ? 1e6 : 1)
    : Number.NaN;
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new UsageError(`${name}: want a positive integer, got '${text}'`);
  return n;
}

function parseScenarios(name: string, text: string): Scenario[] {
  const list = text.split(',').map((s) => s.trim());
  for (const s of list) {
    if (!(SCENARIOS as readonly string[]).includes(s)) {
      throw new UsageError(`${name}: unknown scenario '${s}', want some of ${SCENARIOS.join(',')}`);
    }
  }
  return SCENARIOS.filter((s) => list.includes(s));
}

/** The --name=value flags by name, and whether --quick was given; 'help' for --help or -h. */
function splitArgs(argv: string[]): { flags: Map<string, string>; quick: boolean } | 'help' {
  const flags = new Map<string, string>();
  let quick = false;
  for (const arg of argv) {
    if (arg === '--help' || arg === '-h') return 'help';
    if (arg === '--quick') {
      quick = true;
      continue;
    }
    const eq = arg.indexOf('=');
    if (!arg.startsWith('--') || eq < 0)
      throw new UsageError(`unknown argument '${arg}' (flags are --name=value)`);
    flags.set(arg.slice(0, eq), arg.slice(eq + 1));
  }
  return { flags, quick };
}

export function parseOptions(argv: string[], env: NodeJS.ProcessEnv): Options | 'help' {
  const args = splitArgs(argv);
  if (args === 'help') return 'help';
  const { flags } = args;
  const quick = args.quick || env['BENCH_QUICK'] === '1';
  const opts: Options = { ...DEFAULTS, ...(quick ? QUICK : {}) };
  for (const [key, [flag, envName]] of Object.entries(NUMERIC)) {
    const text = flags.get(flag) ?? env[envName];
    flags.delete(flag);
    if (text !== undefined) opts[key as keyof typeof NUMERIC] = parseCount(flag, text);
  }
  const scenarios = flags.get('--scenarios') ?? env['BENCH_SCENARIOS'];
  if (scenarios !== undefined) opts.scenarios = parseScenarios('--scenarios', scenarios);
  flags.delete('--scenarios');
  opts.out = flags.get('--out') ?? opts.out;
  flags.delete('--out');
  const unknown = [...flags.keys()];
  if (unknown.length > 0) throw new UsageError(`unknown flag ${unknown.join(', ')}`);
  return opts;
}
