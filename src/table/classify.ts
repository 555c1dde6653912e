/**
 * How a flow is labelled: family, protocol name and state. TCP, SCTP and DCCP report their own
 * state machine; protocols without one (UDP, ICMP, GRE, ...) are UNREPLIED, REPLIED or ASSURED
 * from the status flags, as `conntrack -L` shows them. States are small numbers on the hot path
 * (the protocol's own state number, or GENERIC_STATES' index) and names only for the labels.
 */
import {
  IPPROTO_DCCP,
  IPPROTO_GRE,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_SCTP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPPROTO_UDPLITE,
} from '../ctnetlink/constants.js';
import { DCCP_STATES, SCTP_STATES, stateName, TCP_STATES } from '../ctnetlink/states.js';
import { IPS_ASSURED, IPS_SEEN_REPLY } from '../ctnetlink/status.js';
import type { FlowSummary } from '../ctnetlink/summary.js';
import { AF_INET, AF_INET6 } from '../netlink/nfnetlink.js';

export type Family = 'ipv4' | 'ipv6';

const PROTOCOL_NAMES: Readonly<Record<number, string>> = {
  [IPPROTO_TCP]: 'tcp',
  [IPPROTO_UDP]: 'udp',
  [IPPROTO_ICMP]: 'icmp',
  [IPPROTO_ICMPV6]: 'icmpv6',
  [IPPROTO_SCTP]: 'sctp',
  [IPPROTO_DCCP]: 'dccp',
  [IPPROTO_GRE]: 'gre',
  [IPPROTO_UDPLITE]: 'udplite',
};

/** States of protocols without a state machine, by code. */
const GENERIC_STATES = ['UNREPLIED', 'REPLIED', 'ASSURED'] as const;
const UNREPLIED = 0;
const REPLIED = 1;
const ASSURED = 2;

/** The state is not in the message (an UPDATE or DESTROY without CTA_PROTOINFO or CTA_STATUS). */
const STATE_UNKNOWN = -1;

/** (family, protocols) whose series are exported on every host, even at 0. */
export const ALWAYS_EXPORTED: readonly (readonly [number, readonly number[]])[] = [
  [AF_INET, [IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP]],
  [AF_INET6, [IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMPV6]],
];

export function familyName(family: number): Family {
  return family === AF_INET6 ? 'ipv6' : 'ipv4';
}

/** Known protocols by name; any other protocol number as its decimal string (at most 256). */
export function protocolName(proto: number): string {
  return PROTOCOL_NAMES[proto] ?? String(proto);
}

function stateNames(proto: number): readonly string[] {
  switch (proto) {
    case IPPROTO_TCP:
      return TCP_STATES;
    case IPPROTO_SCTP:
      return SCTP_STATES;
    case IPPROTO_DCCP:
      return DCCP_STATES;
    default:
      return GENERIC_STATES;
  }
}

function hasStateMachine(proto: number): boolean {
  return proto === IPPROTO_TCP || proto === IPPROTO_SCTP || proto === IPPROTO_DCCP;
}

/** The protocol's tuple has source and destination ports. */
export function hasPorts(proto: number): boolean {
  return (
    proto === IPPROTO_TCP ||
    proto === IPPROTO_UDP ||
    proto === IPPROTO_UDPLITE ||
    proto === IPPROTO_SCTP ||
    proto === IPPROTO_DCCP
  );
}

/** The protocol's tuple has an ICMP id, type and code instead of ports. */
export function isIcmp(proto: number): boolean {
  return proto === IPPROTO_ICMP || proto === IPPROTO_ICMPV6;
}

/** The label of state `code` of `proto`. */
export function stateLabel(proto: number, code: number): string {
  return stateName(stateNames(proto), code);
}

/** The state codes a protocol can be in, for series exported before any flow reaches them. */
export function statesOf(proto: number): readonly number[] {
  const n = stateNames(proto).length;
  // NONE (code 0) is never visible in the table for protocols with a state machine.
  const first = hasStateMachine(proto) ? 1 : 0;
  const out: number[] = [];
  for (let c = first; c < n; c++) out.push(c);
  return out;
}

function genericState(status: number): number {
  if (status & IPS_ASSURED) return ASSURED;
  return status & IPS_SEEN_REPLY ? REPLIED : UNREPLIED;
}

/** The flow's state code, or STATE_UNKNOWN when the message does not say. */
export function stateCode(s: Pick<FlowSummary, 'proto' | 'protoState' | 'status'>): number {
  // A state number the exporter does not know counts as one code per protocol, UNKNOWN.
  if (hasStateMachine(s.proto)) return Math.min(s.protoState, stateNames(s.proto).length);
  return s.status < 0 ? STATE_UNKNOWN : genericState(s.status);
}

/** One number per (family, protocol, state): the key of the shadow table's group map. */
export function groupKey(family: number, proto: number, code: number): number {
  return (family === AF_INET6 ? 1 << 16 : 0) | ((proto & 0xff) << 8) | (code & 0xff);
}
