/** The part of a decoded flow the kernel tests compare, as one JSON-friendly record. */
import { familyName, protocolName, stateCode, stateLabel } from '../../../src/table/classify.js';
import type { Flow } from '../../support/codec/flow.js';

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

/** The state label the exporter gives the flow, or undefined when the message does not say. */
function stateOf(f: Flow, proto: number): string | undefined {
  const protoState = f.tcp?.state ?? f.sctp?.state ?? f.dccp?.state ?? -1;
  const code = stateCode({ proto, protoState, status: f.status ?? -1 });
  return code < 0 ? undefined : stateLabel(proto, code);
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
