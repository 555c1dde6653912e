/**
 * Command line -> frozen Config, in the Prometheus exporters' flag style. Every mistake stops
 * start-up with a ConntrackError (CT_ERR_CONFIG) whose message names the flag.
 */
import { parseArgs } from 'node:util';
import { ConntrackError } from './errors.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'json' | 'text';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export interface Config {
  /** One socket each (--web.listen-address, repeatable). */
  readonly listen: readonly ListenAddress[];
  /** exporter-toolkit web config (TLS, basic auth, headers); undefined: plain HTTP, no auth. */
  readonly webConfigFile: string | undefined;
  readonly telemetryPath: string;
  /** Scrapes of the telemetry path in flight at once; more are answered 503. 0: no limit. */
  readonly webMaxRequests: number;
  /** Leave out the Node.js process metrics (process_*, nodejs_*), as exporter-toolkit's flag. */
  readonly webDisableExporterMetrics: boolean;
  readonly logLevel: LogLevel;
  readonly logFormat: LogFormat;
  /** Requested SO_RCVBUF of the event socket, bytes. */
  readonly rcvbuf: number;
  /** Periodic resync interval in ms; 0 = off. */
  readonly resyncIntervalMs: number;
  /** Shortest re-dump interval while silent flows remain (longer for big tables); 0 = never. */
  readonly silentResyncMs: number;
  /** Share of one CPU the silent re-dumps may take on average (0 < x <= 1). */
  readonly silentCpuBudget: number;
  /** Re-dump interval while flows that predate the event subscription remain; 0 = never. */
  /** Series per attribution dimension besides the remainder; 0 turns attribution off. */
  readonly topK: number;
  /** Prefix lengths that aggregate sources in the attribution metrics. */
  readonly topSourcePrefixV4: number;
  readonly topSourcePrefixV6: number;
  /** --nat.port-range: the ports source NAT rules translate to, the most flows one mapping holds. */
  readonly natPortRange: { readonly first: number; readonly last: number };
  /** --memory.limit in bytes: 0 turns the budget off; undefined takes the memory cgroup's. */
  readonly memoryLimit: number | undefined;
  /** Follow every network namespace on the node (--netns.all). */
  readonly netnsAll: boolean;
  /** At most this many namespaces followed in --netns.all mode. */
  readonly netnsMax: number;
  /** Rescan for namespaces this often (ms) in --netns.all mode. */
  readonly netnsScanMs: number;
  readonly action: 'run' | 'help' | 'version';
}

export const DEFAULT_PORT = 9466;
/** Attribution emits 5 x (K + 1) series at most: K is capped to keep that bounded. */
const MAX_TOP_K = 1000;
/** Each waiting scrape holds a socket and a response; beyond this a "limit" is no limit. */
const MAX_WEB_REQUESTS = 10_000;

export const FLAGS = {
  'web.listen-address': {
    type: 'string',
    multiple: true,
    default: [`:${DEFAULT_PORT}`],
    help: 'Address to listen on: host:port, [ipv6]:port or :port (all addresses). Repeat the flag to listen on several.',
  },
  'web.config.file': {
    type: 'string',
    default: '',
    help: "Path to a web config file in exporter-toolkit's format: TLS, client certificates, basic authentication, response headers (see README).",
  },
  'web.telemetry-path': { type: 'string', default: '/metrics', help: 'Path under which to expose metrics.' },
  'web.max-requests': {
    type: 'string',
    default: '40',
    help: 'Maximum number of parallel scrape requests. Use 0 to disable. Over it, a scrape is answered 503 at once.',
  },
  'web.disable-exporter-metrics': {
    type: 'boolean',
    default: false,
    help: 'Exclude metrics about the exporter itself (process_*, nodejs_*).',
  },
  'log.level': {
    type: 'string',
    default: 'info',
    help: 'Only log messages with this severity or above: debug, info, warn, error.',
  },
  'log.format': {
    type: 'string',
    default: 'auto',
    help: 'Log format: json, text (human-readable), or auto (text on a terminal, json otherwise).',
  },
  'netlink.rcvbuf': {
    type: 'string',
    default: '16MiB',
    help: 'Receive buffer of the event socket (bytes, or with KiB/MiB/GiB), set with SO_RCVBUFFORCE so net.core.rmem_max does not cap it. Too small a buffer loses events under bursts (counted, then repaired by a resync).',
  },
  'resync.interval': {
    type: 'string',
    default: '0',
    help: 'Re-dump the table this often to repair any drift, e.g. 10m, 1h; 0 turns it off.',
  },
  'resync.silent-interval': {
    type: 'string',
    default: '5s',
    help: 'Silent flows (created while no process listened to events, with nf_conntrack_events=2, the default: before the exporter started or while it restarted) send no events: re-dump at most this often while any remain, and less often on big tables (the re-dumps take at most 2% of one CPU); 0 turns it off.',
  },
  'resync.silent-budget': {
    type: 'string',
    default: '2%',
    help: 'Share of one CPU the silent re-dumps may take on average (0.1% to 100%): the interval is at least the last dump duration divided by it. More budget, fresher states of silent flows on big tables.',
  },
  'top.k': {
    type: 'string',
    default: '10',
    help: `Who fills the table: export the top K sources, destinations, zones, marks and creators of new flows, plus one remainder series each (0..${MAX_TOP_K}); 0 turns attribution off and then it costs nothing per flow.`,
  },
  'top.source-prefix-ipv4': {
    type: 'string',
    default: '32',
    help: 'Aggregate IPv4 sources by this prefix length (0..32), so a scan from a /24 shows as one row.',
  },
  'top.source-prefix-ipv6': {
    type: 'string',
    default: '64',
    help: 'Aggregate IPv6 sources by this prefix length (0..128). 64: one host or subscriber owns a /64 and can use any address in it.',
  },
  'nat.port-range': {
    type: 'string',
    default: '1024-65535',
    help: 'The port range of the source NAT rules (first-last): a source NAT mapping (NAT address, destination address and port, protocol) holds at most this many flows, and its utilisation is its flows over this count. 1024-65535 is masquerade\'s and kube-proxy\'s without a range; match "snat to ADDR:FIRST-LAST" rules (see README).',
  },
  'memory.limit': {
    type: 'string',
    default: '',
    help: "Memory limit of the exporter (bytes, or with KiB/MiB/GiB/TiB); by default the memory cgroup's (v2 memory.max, v1 memory.limit_in_bytes). At 80% of it attribution takes no new keys (their flows count in other), below 70% again; the table and kernel counts are never degraded. Against this flag the process's RSS is compared, against the cgroup's its usage. 0 turns the budget off.",
  },
  'netns.all': {
    type: 'boolean',
    default: false,
    help: 'Follow every network namespace on the node that has a conntrack table in use (/var/run/netns/* and /proc/*/ns/net); per-namespace series get a netns label. Needs CAP_SYS_ADMIN (setns) and CAP_NET_BROADCAST besides CAP_NET_ADMIN.',
  },
  'netns.max': {
    type: 'string',
    default: '256',
    help: 'With --netns.all, follow at most this many namespaces; the excess is counted in conntrack_netns_skipped.',
  },
  'netns.scan-interval': {
    type: 'string',
    default: '10s',
    help: 'With --netns.all, look for new and gone namespaces, and probe idle ones for entries, this often (and at once when /var/run/netns changes).',
  },
  version: { type: 'boolean', default: false, help: 'Print the version and exit.' },
  help: { type: 'boolean', default: false, help: 'Print this help and exit.' },
} as const;

function configError(flag: string, message: string): ConntrackError {
  return new ConntrackError('CT_ERR_CONFIG', `--${flag}: ${message}`);
}

function parseListenAddress(value: string): ListenAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || !(port >= 0 && port <= 65535)) {
    throw configError('web.listen-address', `"${value}" is not host:port, [ipv6]:port or :port`);
  }
  const host = m[1] ?? m[2] ?? '';
  return { host: host === '' ? '::' : host, port };
}

const UNITS: Readonly<Record<string, number>> = { B: 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** A size in bytes, or with a binary unit (KiB, or K as a shorthand). */
function parseSize(flag: string, value: string): number {
  const m = /^(\d+)\s*(B|KiB|MiB|GiB|TiB|K|M|G|T)?$/i.exec(value.trim());
  if (!m) throw configError(flag, `"${value}" is not a size (e.g. 262144, 256KiB, 4MiB)`);
  return Number(m[1]) * UNITS[(m[2] ?? 'B').toUpperCase().replace('IB', '')]!;
}

function parseBytes(flag: string, value: string): number {
  const n = parseSize(flag, value);
  // The addon refuses more (a RangeError): 1 GiB of queued events is already far beyond a burst.
  if (n < 1024 || n > 2 ** 30) throw configError(flag, `${value} is outside 1KiB..1GiB`);
  return n;
}

/** --memory.limit: empty for the cgroup's, 0 for none, else at least 16MiB (less than Node.js itself takes). */
function parseMemoryLimit(flag: string, value: string): number | undefined {
  if (value.trim() === '') return undefined;
  const n = parseSize(flag, value);
  if (n !== 0 && (n < 16 * 1024 ** 2 || n > 1024 ** 4))
    throw configError(flag, `${value} is outside 16MiB..1TiB (0 turns the budget off)`);
  return n;
}

/** --nat.port-range: FIRST-LAST (or one port), within 1..65535. */
function parsePortRange(flag: string, value: string): { first: number; last: number } {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(value.trim());
  const first = m ? Number(m[1]) : Number.NaN;
  const last = m ? Number(m[2] ?? m[1]) : Number.NaN;
  if (!(first >= 1 && first <= last && last <= 65535)) {
    throw configError(flag, `"${value}" is not a port range FIRST-LAST within 1..65535 (e.g. 1024-65535)`);
  }
  return Object.freeze({ first, last });
}

function parseDuration(flag: string, value: string): number {
  if (value.trim() === '0') return 0;
  const m = /^(\d+)(ms|s|m|h)$/.exec(value.trim());
  if (!m) throw configError(flag, `"${value}" is not a duration (e.g. 0, 30s, 10m, 1h)`);
  const mult = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
  const ms = Number(m[1]) * mult;
  if (ms > 0 && ms < 1000) throw configError(flag, `${value} is shorter than 1s`);
  return ms;
}

function parsePercent(flag: string, value: string): number {
  const m = /^(\d+(?:\.\d+)?)%$/.exec(value.trim());
  const pct = m ? Number(m[1]) : Number.NaN;
  if (!(pct >= 0.1 && pct <= 100))
    throw configError(flag, `"${value}" is not a percentage from 0.1% to 100%`);
  return pct / 100;
}

function parseInteger(flag: string, value: string, min: number, max: number): number {
  if (!/^\d+$/.test(value.trim())) throw configError(flag, `"${value}" is not a whole number`);
  const n = Number(value.trim());
  if (n < min || n > max) throw configError(flag, `${value} is outside ${min}..${max}`);
  return n;
}

function parsePositiveDuration(flag: string, value: string): number {
  const ms = parseDuration(flag, value);
  if (ms === 0) throw configError(flag, 'must be longer than 0');
  return ms;
}

function oneOf<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw configError(flag, `"${value}" is not one of ${allowed.join(', ')}`);
  }
  return value as T;
}

export function parseConfig(argv: readonly string[], isTTY = false): Config {
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  try {
    values = parseArgs({
      args: [...argv],
      options: Object.fromEntries(
        Object.entries(FLAGS).map(([name, f]) => [
          name,
          { type: f.type, default: f.default, multiple: 'multiple' in f && f.multiple },
        ]),
      ) as Record<
        string,
        { type: 'string' | 'boolean'; default: string | boolean | string[]; multiple: boolean }
      >,
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    // parseArgs names the offending option in its message; keep it, drop the stack.
    const message = err instanceof Error ? err.message : String(err);
    throw new ConntrackError('CT_ERR_CONFIG', message.split('\n')[0] ?? message, { cause: err });
  }
  const str = (k: keyof typeof FLAGS): string => String(values[k]);

  const listen = (values['web.listen-address'] as string[]).map(parseListenAddress);
  const telemetryPath = str('web.telemetry-path');
  if (!/^\/[\w\-./]*$/.test(telemetryPath) || ['/', '/healthz', '/readyz'].includes(telemetryPath)) {
    throw configError(
      'web.telemetry-path',
      `"${telemetryPath}" must be a path like /metrics, not /, /healthz or /readyz`,
    );
  }
  const format = oneOf('log.format', str('log.format'), ['json', 'text', 'auto'] as const);
  return Object.freeze({
    listen: Object.freeze(listen),
    webConfigFile: str('web.config.file') === '' ? undefined : str('web.config.file'),
    telemetryPath,
    webMaxRequests: parseInteger('web.max-requests', str('web.max-requests'), 0, MAX_WEB_REQUESTS),
    webDisableExporterMetrics: values['web.disable-exporter-metrics'] === true,
    logLevel: oneOf('log.level', str('log.level'), ['debug', 'info', 'warn', 'error'] as const),
    logFormat: format === 'auto' ? (isTTY ? 'text' : 'json') : format,
    rcvbuf: parseBytes('netlink.rcvbuf', str('netlink.rcvbuf')),
    resyncIntervalMs: parseDuration('resync.interval', str('resync.interval')),
    silentResyncMs: parseDuration('resync.silent-interval', str('resync.silent-interval')),
    silentCpuBudget: parsePercent('resync.silent-budget', str('resync.silent-budget')),
    topK: parseInteger('top.k', str('top.k'), 0, MAX_TOP_K),
    topSourcePrefixV4: parseInteger('top.source-prefix-ipv4', str('top.source-prefix-ipv4'), 0, 32),
    topSourcePrefixV6: parseInteger('top.source-prefix-ipv6', str('top.source-prefix-ipv6'), 0, 128),
    natPortRange: parsePortRange('nat.port-range', str('nat.port-range')),
    memoryLimit: parseMemoryLimit('memory.limit', str('memory.limit')),
    netnsAll: values['netns.all'] === true,
    netnsMax: parseInteger('netns.max', str('netns.max'), 1, 100_000),
    netnsScanMs: parsePositiveDuration('netns.scan-interval', str('netns.scan-interval')),
    action: values['help'] ? 'help' : values['version'] ? 'version' : 'run',
  });
}

export function usage(): string {
  const lines = Object.entries(FLAGS).map(([name, f]) => {
    const shown = Array.isArray(f.default) ? f.default.join(', ') : f.default;
    const def = f.type === 'boolean' || shown === '' ? '' : ` (default: ${shown})`;
    return `  --${name}${f.type === 'string' ? '=VALUE' : ''}\n      ${f.help}${def}`;
  });
  return `usage: conntrack-exporter [flags]\n\nServes Prometheus metrics about netfilter connection tracking.\n\nFlags:\n${lines.join('\n')}\n`;
}
