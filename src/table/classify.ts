/**
 * How a flow is labelled: family, protocol name and state. TCP, SCTP and DCCP report their own
 * state machine; protocols without one (UDP, ICMP, GRE, ...) are UNREPLIED, REPLIED or ASSURED
 * from the status flags, as `conntrack -L` shows them.
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
import type { Flow } from '../ctnetlink/flow.js';
import { DCCP_STATES, SCTP_STATES, stateName, TCP_STATES } from '../ctnetlink/states.js';
import { Status } from '../ctnetlink/status.js';
import { AF_INET6 } from '../netlink/nfnetlink.js';

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

export const GENERIC_STATES = ['UNREPLIED', 'REPLIED', 'ASSURED'] as const;

export function familyName(family: number): Family {
  return family === AF_INET6 ? 'ipv6' : 'ipv4';
}

/** Known protocols by name; any other protocol number as its decimal string (at most 256). */
export function protocolName(proto: number): string {
  return PROTOCOL_NAMES[proto] ?? String(proto);
}

/** The states a protocol can be in, for series exported before any flow reaches them. */
export function statesOf(proto: number): readonly string[] {
  switch (proto) {
    case IPPROTO_TCP:
      return TCP_STATES.slice(1); // NONE is never visible in the table
    case IPPROTO_SCTP:
      return SCTP_STATES.slice(1);
    case IPPROTO_DCCP:
      return DCCP_STATES.slice(1);
    default:
      return GENERIC_STATES;
  }
}

/**
 * The flow's state, or undefined when the message does not say (an UPDATE or DESTROY without
 * CTA_PROTOINFO or CTA_STATUS): the caller keeps what it knew.
 */
export function stateOf(flow: Flow, proto: number): string | undefined {
  switch (proto) {
    case IPPROTO_TCP:
      return flow.tcp ? stateName(TCP_STATES, flow.tcp.state) : undefined;
    case IPPROTO_SCTP:
      return flow.sctp ? stateName(SCTP_STATES, flow.sctp.state) : undefined;
    case IPPROTO_DCCP:
      return flow.dccp ? stateName(DCCP_STATES, flow.dccp.state) : undefined;
    default: {
      const s = flow.status;
      if (s === undefined) return undefined;
      if (Status.assured(s)) return 'ASSURED';
      return Status.seenReply(s) ? 'REPLIED' : 'UNREPLIED';
    }
  }
}
