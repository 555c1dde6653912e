/**
 * conntrack-tools as the reference: what `conntrack -L`, `-S` and `-C` print for a namespace,
 * parsed into the shape our tests compare against.
 */
import type { Netns } from './netns.js';

export interface ToolFlow {
  id: number;
  family: 'ipv4' | 'ipv6';
  protocol: string;
  protonum: number;
  /** The kernel's state for TCP/SCTP/DCCP; UNREPLIED/REPLIED/ASSURED from the flags otherwise. */
  state: string;
  src: string;
  dst: string;
  sport: number | undefined;
  dport: number | undefined;
  /** ICMP and ICMPv6: the original tuple's type. */
  icmpType: number | undefined;
  unreplied: boolean;
  assured: boolean;
  mark: number | undefined;
  zone: number | undefined;
  /** With nf_conntrack_acct=1: packets and bytes of the original and reply directions. */
  packets: [number, number] | undefined;
  bytes: [number, number] | undefined;
}

const STATEFUL = new Set(['tcp', 'sctp', 'dccp']);

/**
 * Parses one line of `conntrack -L -o extended,id`, e.g.
 * `ipv4 2 tcp 6 118 SYN_SENT src=127.0.0.1 dst=127.0.0.1 sport=45592 dport=9 [UNREPLIED] src=... mark=0 use=1 id=1239403510`
 */
export function parseListLine(line: string): ToolFlow | undefined {
  const t = line.trim().split(/\s+/);
  if (t.length < 6 || (t[0] !== 'ipv4' && t[0] !== 'ipv6')) return undefined;
  const protocol = t[2]!;
  const stateful = STATEFUL.has(protocol);
  const kv = new Map<string, string>();
  let srcSeen = 0;
  let id = 0;
  const flags = new Set<string>();
  const packets: number[] = [];
  const bytes: number[] = [];
  for (const tok of t.slice(stateful ? 6 : 5)) {
    if (tok.startsWith('[')) {
      flags.add(tok.slice(1, -1));
      continue;
    }
    const eq = tok.indexOf('=');
    if (eq < 0) continue;
    const k = tok.slice(0, eq);
    const v = tok.slice(eq + 1);
    if (k === 'src') srcSeen++;
    if (k === 'packets') packets.push(Number(v));
    if (k === 'bytes') bytes.push(Number(v));
    if (k === 'mark' || k === 'zone') kv.set(k, v);
    if (k === 'id' && srcSeen === 2 && kv.has('use')) id = Number(v); // conntrack id comes last
    if (srcSeen === 1 && !kv.has(k)) kv.set(k, v); // the original tuple
    if (k === 'use') kv.set('use', v);
  }
  const unreplied = flags.has('UNREPLIED');
  const assured = flags.has('ASSURED');
  const generic = assured ? 'ASSURED' : unreplied ? 'UNREPLIED' : 'REPLIED';
  const num = (k: string) => (kv.has(k) ? Number(kv.get(k)) : undefined);
  return {
    id,
    family: t[0],
    protocol,
    protonum: Number(t[3]),
    state: stateful ? t[5]! : generic,
    src: kv.get('src') ?? '',
    dst: kv.get('dst') ?? '',
    sport: num('sport'),
    dport: num('dport'),
    icmpType: num('type'),
    unreplied,
    assured,
    mark: num('mark'),
    zone: num('zone'),
    packets: packets.length === 2 ? [packets[0]!, packets[1]!] : undefined,
    bytes: bytes.length === 2 ? [bytes[0]!, bytes[1]!] : undefined,
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

/** `conntrack -S`: per-CPU counters by the kernel's names (`chaintoolong` as printed). */
export function cpuStats(ns: Netns): Map<number, Map<string, number>> {
  const out = new Map<number, Map<string, number>>();
  for (const line of ns.run('conntrack', ['-S']).split('\n')) {
    const m = /^cpu=(\d+)\s+(.*)$/.exec(line.trim());
    if (!m) continue;
    const stats = new Map<string, number>();
    for (const kv of m[2]!.trim().split(/\s+/)) {
      const [k, v] = kv.split('=');
      if (k !== undefined && v !== undefined) stats.set(k, Number(v));
    }
    out.set(Number(m[1]), stats);
  }
  return out;
}

/** `conntrack -C`: the kernel's entry count for the namespace. */
export function count(ns: Netns): number {
  return Number(ns.run('conntrack', ['-C']).trim());
}
