/**
 * conntrack-tools as the reference: what `conntrack -L`, `-E`, `-S` and `-C` print for a namespace,
 * parsed into the shape our tests compare against. One parser of a flow line (parseToolLine) serves
 * the kernel tests and scripts/capture-fixtures.ts, which builds the byte fixtures' expectations.
 */
import type { Netns } from './netns.js';

/** One direction's tuple as printed; a key the tool did not print is absent. */
export interface ToolTuple {
  src: string;
  dst: string;
  proto: number;
  srcPort?: number;
  dstPort?: number;
  icmpId?: number;
  icmpType?: number;
  icmpCode?: number;
}

/** Decimal strings: the kernel's counters are 64-bit. */
export interface ToolCounters {
  packets: string;
  bytes: string;
}

/** Everything one flow line of `conntrack -L` or `-E` with `-o extended,id` (and more) says. */
export interface ToolEntry {
  /** The line as printed, trimmed. */
  line: string;
  /** `-E`: `[NEW]`, `[UPDATE]` or `[DESTROY]`. */
  event: 'new' | 'update' | 'destroy' | undefined;
  /** `-E -o timestamp`: seconds.microseconds when the tool received the event. */
  receivedAt: string | undefined;
  family: 'ipv4' | 'ipv6';
  /** The protocol's name as printed (`tcp`, `icmpv6`, `unknown`). */
  protocol: string;
  proto: number;
  timeout: number | undefined;
  /** The kernel's state: printed for TCP, SCTP and DCCP only. */
  state: string | undefined;
  orig: ToolTuple;
  reply: ToolTuple;
  /** With nf_conntrack_acct=1. */
  countersOrig: ToolCounters | undefined;
  countersReply: ToolCounters | undefined;
  /** `[UNREPLIED]`, `[ASSURED]`, ... without the brackets. */
  flags: Set<string>;
  /** The key=value pairs after both tuples: mark, zone, use, id, helper, labels, delta-time, ... */
  fields: Map<string, string>;
  /** `-o ktimestamp`: whole seconds since the epoch (the tool must print them with TZ=UTC). */
  start: number | undefined;
  stop: number | undefined;
  /** The conntrack id (`-o id`). */
  id: number;
}

const EVENT_NAMES = { NEW: 'new', UPDATE: 'update', DESTROY: 'destroy' } as const;

/** `Wed Nov 25 03:04:57 2026`, as `-o ktimestamp` prints it with TZ=UTC, in seconds. */
function utcSeconds(text: string): number {
  const ms = Date.parse(`${text.replace(/^\w+ /, '')} UTC`);
  if (Number.isNaN(ms)) throw new Error(`unparsable conntrack timestamp: ${text}`);
  return ms / 1000;
}

/**
 * Reads the tuple that starts at tok[i] (with its counters, and the flags printed among them) and
 * returns it with the index after it. A tuple ends where a key repeats (the reply's `src=`, or for
 * ICMP the conntrack `id=` after the echo `id=`) or a key that is not a tuple's begins.
 */
function readTuple(tok: readonly string[], i: number, proto: number, flags: Set<string>) {
  const keys = ['src', 'dst', 'packets', 'bytes'];
  keys.push(...(proto === 1 || proto === 58 ? ['type', 'code', 'id'] : ['sport', 'dport']));
  const seen = new Map<string, string>();
  for (; i < tok.length; i++) {
    const t = tok[i]!;
    if (t.startsWith('[')) {
      flags.add(t.slice(1, -1));
      continue;
    }
    const k = t.slice(0, t.indexOf('='));
    if (!keys.includes(k) || seen.has(k)) break;
    seen.set(k, t.slice(k.length + 1));
  }
  const counters = seen.has('packets')
    ? { packets: seen.get('packets')!, bytes: seen.get('bytes') ?? '' }
    : undefined;
  return { tuple: toolTuple(seen, proto), counters, next: i };
}

/** A tuple from its `key=value` fields; a port or ICMP field only when the tool printed it. */
function toolTuple(seen: ReadonlyMap<string, string>, proto: number): ToolTuple {
  const num = (k: string) => (seen.has(k) ? Number(seen.get(k)) : undefined);
  const tuple: ToolTuple = { src: seen.get('src') ?? '', dst: seen.get('dst') ?? '', proto };
  const sport = num('sport');
  const dport = num('dport');
  const type = num('type');
  const code = num('code');
  const id = num('id');
  if (sport !== undefined) tuple.srcPort = sport;
  if (dport !== undefined) tuple.dstPort = dport;
  if (id !== undefined) tuple.icmpId = id;
  if (type !== undefined) tuple.icmpType = type;
  if (code !== undefined) tuple.icmpCode = code;
  return tuple;
}

/**
 * Parses one flow line of `conntrack -L -o extended,id[,ktimestamp][,labels]` or
 * `conntrack -E -o extended,id[,timestamp][,ktimestamp][,labels]`, e.g.
 * `[1795636877.101696]\t    [NEW] ipv4     2 tcp      6 120 SYN_SENT src=127.0.0.1 dst=127.0.0.1 sport=52166 dport=5000 [UNREPLIED] src=127.0.0.1 dst=127.0.0.1 sport=5000 dport=52166 mark=16 id=4042505163`.
 * Any other line (the tool's summary, an empty line) is undefined; a flow line without `id=`
 * throws, since every caller matches flows by id.
 */
export function parseToolLine(line: string): ToolEntry | undefined {
  let rest = line.trim();
  let receivedAt: string | undefined;
  let event: ToolEntry['event'];
  const rx = /^\[(\d+\.\d+)\]\s+/.exec(rest);
  if (rx) {
    receivedAt = rx[1];
    rest = rest.slice(rx[0].length);
  }
  const ev = /^\[(NEW|UPDATE|DESTROY)\]\s+/.exec(rest);
  if (ev) {
    event = EVENT_NAMES[ev[1] as keyof typeof EVENT_NAMES];
    rest = rest.slice(ev[0].length);
  }
  let start: number | undefined;
  let stop: number | undefined;
  rest = rest.replace(/\[(start|stop)=([^\]]+)\]/g, (_m, k: string, v: string) => {
    if (k === 'start') start = utcSeconds(v);
    else stop = utcSeconds(v);
    return '';
  });
  const tok = rest.split(/\s+/).filter(Boolean);
  if (tok[0] !== 'ipv4' && tok[0] !== 'ipv6') return undefined;
  const family = tok[0];
  const protocol = tok[2] ?? '';
  const proto = Number(tok[3]);
  let i = 4;
  let timeout: number | undefined;
  let state: string | undefined;
  if (/^\d+$/.test(tok[i] ?? '')) timeout = Number(tok[i++]);
  if (/^[A-Z_0-9]+$/.test(tok[i] ?? '')) state = tok[i++];
  const flags = new Set<string>();
  const orig = readTuple(tok, i, proto, flags);
  const reply = readTuple(tok, orig.next, proto, flags);
  const fields = new Map<string, string>();
  for (const t of tok.slice(reply.next)) {
    if (t.startsWith('[')) flags.add(t.slice(1, -1));
    const eq = t.indexOf('=');
    if (eq > 0) fields.set(t.slice(0, eq), t.slice(eq + 1));
  }
  const id = fields.get('id');
  if (id === undefined) throw new Error(`conntrack printed no id= (run it with -o id): ${line}`);
  return {
    line: line.trim(),
    event,
    receivedAt,
    family,
    protocol,
    proto,
    timeout,
    state,
    orig: orig.tuple,
    reply: reply.tuple,
    countersOrig: orig.counters,
    countersReply: reply.counters,
    flags,
    fields,
    start,
    stop,
    id: Number(id),
  };
}

/** What the kernel tests compare with the exporter: a flow as `conntrack_flows` and top-K count it. */
export interface ToolFlow {
  id: number;
  family: 'ipv4' | 'ipv6';
  protocol: string;
  /** The kernel's state for TCP/SCTP/DCCP; UNREPLIED/REPLIED/ASSURED from the flags otherwise. */
  state: string;
  /** The original tuple's addresses and ports. */
  src: string;
  dst: string;
  sport: number | undefined;
  dport: number | undefined;
  /** ICMP and ICMPv6: the original tuple's type. */
  icmpType: number | undefined;
  mark: number | undefined;
  zone: number | undefined;
}

/** A numeric field printed after the tuples (`mark`, `zone`, `use`), undefined when not printed. */
export function numericField(e: ToolEntry, key: string): number | undefined {
  const v = e.fields.get(key);
  return v === undefined ? undefined : Number(v);
}

/** The ToolFlow of one line of `conntrack -L -o extended,id`, undefined for any other line. */
export function parseListLine(line: string): ToolFlow | undefined {
  const e = parseToolLine(line);
  if (!e) return undefined;
  const generic = e.flags.has('ASSURED') ? 'ASSURED' : e.flags.has('UNREPLIED') ? 'UNREPLIED' : 'REPLIED';
  return {
    id: e.id,
    family: e.family,
    protocol: e.protocol,
    state: e.state ?? generic,
    src: e.orig.src,
    dst: e.orig.dst,
    sport: e.orig.srcPort,
    dport: e.orig.dstPort,
    icmpType: e.orig.icmpType,
    mark: numericField(e, 'mark'),
    zone: numericField(e, 'zone'),
  };
}

/** Every flow of the namespace, IPv4 and IPv6 (conntrack -L lists both families). */
export function listFlows(ns: Netns): ToolFlow[] {
  const out = ns.run('conntrack', ['-L', '-o', 'extended,id']);
  return out.split('\n').flatMap((l) => parseListLine(l) ?? []);
}

/** `family/protocol/state` -> count, the key our tests compare conntrack_flows with. */
export function countByState(flows: readonly { family: string; protocol: string; state: string }[]) {
  const out = new Map<string, number>();
  for (const f of flows) {
    const k = `${f.family}/${f.protocol}/${f.state}`;
    out.set(k, (out.get(k) ?? 0) + 1);
  }
  return out;
}

/**
 * One line of `conntrack -S`, `cpu=0 found=0 invalid=5 ... chaintoolong=0`: the CPU and its
 * counters by the names printed (`chaintoolong` as printed); undefined for any other line.
 */
export function parseCpuStatsLine(line: string): { cpu: number; stats: Map<string, number> } | undefined {
  const m = /^cpu=(\d+)\s+(.*)$/.exec(line.trim());
  if (!m) return undefined;
  const stats = new Map<string, number>();
  for (const kv of m[2]!.trim().split(/\s+/)) {
    const [k, v] = kv.split('=');
    if (k !== undefined && v !== undefined) stats.set(k, Number(v));
  }
  return { cpu: Number(m[1]), stats };
}

/** `conntrack -S`: per-CPU counters by the kernel's names. */
export function cpuStats(ns: Netns): Map<number, Map<string, number>> {
  const lines = ns.run('conntrack', ['-S']).split('\n');
  return new Map(lines.flatMap((l) => parseCpuStatsLine(l) ?? []).map((c) => [c.cpu, c.stats]));
}

/** `conntrack -C`: the kernel's entry count for the namespace. */
export function count(ns: Netns): number {
  return Number(ns.run('conntrack', ['-C']).trim());
}
