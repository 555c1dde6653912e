/** The part of a decoded flow the kernel tests compare, as one JSON-friendly record. */
import type { Flow } from '../../../src/ctnetlink/flow.js';
import { familyName, protocolName, stateOf } from '../../../src/table/classify.js';

export interface FlowSummary {
  id: number | undefined;
  family: string;
  protocol: string;
  state: string | undefined;
  src: string;
  dst: string;
  sport: number | undefined;
  dport: number | undefined;
  replySrc: string;
  replySport: number | undefined;
  icmpType: number | undefined;
  icmpId: number | undefined;
  status: number | undefined;
  tcpState: number | undefined;
  mark: number | undefined;
  use: number | undefined;
  timeout: number | undefined;
}

export function summarize(f: Flow): FlowSummary {
  const proto = f.orig?.proto ?? 0;
  return {
    id: f.id,
    family: familyName(f.family),
    protocol: protocolName(proto),
    state: stateOf(f, proto),
    src: f.orig?.src ?? '',
    dst: f.orig?.dst ?? '',
    sport: f.orig?.srcPort,
    dport: f.orig?.dstPort,
    replySrc: f.reply?.src ?? '',
    replySport: f.reply?.srcPort,
    icmpType: f.orig?.icmpType,
    icmpId: f.orig?.icmpId,
    status: f.status,
    tcpState: f.tcp?.state,
    mark: f.mark,
    use: f.use,
    timeout: f.timeout,
  };
}
