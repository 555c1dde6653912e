/** Builders for decoded flows, for tests of logic above the decoder. */
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP } from '../../../src/ctnetlink/constants.js';
import { TCP_STATES } from '../../../src/ctnetlink/states.js';
import {
  IPS_ASSURED,
  IPS_CONFIRMED,
  IPS_DST_NAT,
  IPS_SEEN_REPLY,
  IPS_SRC_NAT,
} from '../../../src/ctnetlink/status.js';
import { AF_INET, AF_INET6 } from '../../../src/netlink/nfnetlink.js';
import { emptyFlow, type Flow } from '../../support/codec/flow.js';
import { emptyTcpInfo } from '../../support/codec/protoinfo.js';

/** Flows with different ids get different source ports, as on a real host. */
function withTuple(f: Flow, proto: number, id: number): Flow {
  const v6 = f.family === AF_INET6;
  const icmpish = proto === IPPROTO_ICMP;
  f.orig = {
    family: f.family,
    src: v6 ? '::1' : '127.0.0.1',
    dst: v6 ? '::1' : '127.0.0.1',
    proto,
    srcPort: icmpish ? undefined : 32768 + (id % 28000),
    dstPort: icmpish ? undefined : 80,
    icmpId: icmpish ? id % 65536 : undefined,
    icmpType: icmpish ? 8 : undefined,
    icmpCode: icmpish ? 0 : undefined,
    zone: undefined,
  };
  return f;
}

export function tcp(id: number, state: (typeof TCP_STATES)[number], family = AF_INET): Flow {
  const f = withTuple(emptyFlow(family), IPPROTO_TCP, id);
  f.id = id;
  f.status = IPS_CONFIRMED;
  f.tcp = emptyTcpInfo(TCP_STATES.indexOf(state));
  return f;
}

export type Generic = 'UNREPLIED' | 'REPLIED' | 'ASSURED';

const STATUS: Record<Generic, number> = {
  UNREPLIED: IPS_CONFIRMED,
  REPLIED: IPS_CONFIRMED | IPS_SEEN_REPLY,
  ASSURED: IPS_CONFIRMED | IPS_SEEN_REPLY | IPS_ASSURED,
};

export function udp(id: number, state: Generic, family = AF_INET): Flow {
  const f = withTuple(emptyFlow(family), IPPROTO_UDP, id);
  f.id = id;
  f.status = STATUS[state];
  return f;
}

export function icmp(id: number, state: Generic): Flow {
  const f = withTuple(emptyFlow(AF_INET), IPPROTO_ICMP, id);
  f.id = id;
  f.status = STATUS[state];
  return f;
}

/** A DESTROY as the kernel sends it: no protoinfo, maybe timestamps. */
export function destroyed(f: Flow, startNs?: bigint, stopNs?: bigint): Flow {
  const d = { ...f, tcp: undefined };
  if (startNs !== undefined) d.timestampStart = startNs;
  if (stopNs !== undefined) d.timestampStop = stopNs;
  return d;
}

/** A controllable clock in seconds. */
export class FakeClock {
  constructor(public now = 1_000_000) {}
  readonly read = (): number => this.now;
  advance(seconds: number): void {
    this.now += seconds;
  }
}

/**
 * `f` translated as the kernel does it: the reply tuple is the inverted original with `snat` (the
 * NAT address and port the reply goes back to) and `dnat` (the address and port the flow was sent
 * to) applied, and IPS_SRC_NAT / IPS_DST_NAT set for each.
 */
export function translated(
  f: Flow,
  nat: { snat?: { address: string; port: number }; dnat?: { address: string; port: number } },
): Flow {
  const o = f.orig!;
  f.reply = {
    ...o,
    src: nat.dnat?.address ?? o.dst,
    dst: nat.snat?.address ?? o.src,
    srcPort: o.dstPort === undefined ? undefined : (nat.dnat?.port ?? o.dstPort),
    dstPort: o.srcPort === undefined ? undefined : (nat.snat?.port ?? o.srcPort),
    icmpType: o.icmpType === undefined ? undefined : 0,
  };
  f.status = (f.status ?? 0) | (nat.snat ? IPS_SRC_NAT : 0) | (nat.dnat ? IPS_DST_NAT : 0);
  return f;
}

/** `f` with its original destination (and port) changed: another server or service. */
export function to(f: Flow, dst: string, dstPort?: number): Flow {
  f.orig = { ...f.orig!, dst, dstPort: dstPort ?? f.orig!.dstPort };
  return f;
}
