/**
 * The inverse of decodeFlow: builds the ctnetlink message the kernel would send for a Flow, with
 * the kernel's nesting (attribute order differs from ctnetlink_fill_info's; netlink gives it no
 * meaning). Used by round-trip tests, the
 * fuzzer's seed corpus and the benchmark; the daemon itself never sends a conntrack entry.
 */
import {
  encodeAttr,
  encodeNested,
  encodeNfgenmsg,
  encodeString,
  encodeU8,
  encodeU16,
  encodeU32,
  encodeU64,
  messageType,
  NFNL_SUBSYS_CTNETLINK,
} from '../netlink/nfnetlink.js';
import { encodeMessage, NLM_F_CREATE, NLM_F_EXCL, NLM_F_MULTI } from '../netlink/nlmsg.js';
import { parseAddress } from './address.js';
import * as K from './constants.js';
import type { EventType } from './event.js';
import type { Counters, DccpInfo, Flow, NatRange, SctpInfo, SeqAdj, Synproxy, TcpInfo } from './flow.js';
import type { Tuple } from './tuple.js';

const IPPROTO_ICMPV6 = 58;

export interface EncodeOptions {
  /** An event of this type, or (default) a dump reply part (CT_NEW with NLM_F_MULTI). */
  type?: EventType | 'dump';
  seq?: number;
}

export function encodeFlow(flow: Flow, opts: EncodeOptions = {}): Buffer {
  const type = opts.type ?? 'dump';
  const op = type === 'destroy' ? K.IPCTNL_MSG_CT_DELETE : K.IPCTNL_MSG_CT_NEW;
  const flags = type === 'new' ? NLM_F_CREATE | NLM_F_EXCL : type === 'dump' ? NLM_F_MULTI : 0;
  const payload = Buffer.concat([encodeNfgenmsg(flow.family), ...encodeFlowAttrs(flow)]);
  return encodeMessage(messageType(NFNL_SUBSYS_CTNETLINK, op), flags, opts.seq ?? 0, payload);
}

// biome-ignore lint/complexity/noExcessiveCognitiveComplexity: a flat list, one line per optional Flow field (encoded when present); split, it would only be scattered.
function encodeFlowAttrs(f: Flow): Buffer[] {
  const a: Buffer[] = [];
  if (f.orig) a.push(encodeTuple(K.CTA_TUPLE_ORIG, f.orig));
  if (f.reply) a.push(encodeTuple(K.CTA_TUPLE_REPLY, f.reply));
  if (f.zone !== undefined) a.push(encodeU16(K.CTA_ZONE, f.zone));
  if (f.countersOrig) a.push(encodeCounters(K.CTA_COUNTERS_ORIG, f.countersOrig));
  if (f.countersReply) a.push(encodeCounters(K.CTA_COUNTERS_REPLY, f.countersReply));
  if (f.timestampStart !== undefined || f.timestampStop !== undefined) a.push(encodeTimestamp(f));
  if (f.status !== undefined) a.push(encodeU32(K.CTA_STATUS, f.status));
  if (f.timeout !== undefined) a.push(encodeU32(K.CTA_TIMEOUT, f.timeout));
  if (f.tcp || f.sctp || f.dccp) a.push(encodeProtoinfo(f));
  if (f.helper !== undefined) a.push(encodeNested(K.CTA_HELP, [encodeString(K.CTA_HELP_NAME, f.helper)]));
  if (f.mark !== undefined) a.push(encodeU32(K.CTA_MARK, f.mark));
  if (f.secmark !== undefined) a.push(encodeU32(K.CTA_SECMARK, f.secmark));
  if (f.secctx !== undefined) a.push(encodeNested(K.CTA_SECCTX, [encodeString(K.CTA_SECCTX_NAME, f.secctx)]));
  if (f.labels !== undefined) a.push(encodeAttr(K.CTA_LABELS, f.labels));
  if (f.master) a.push(encodeTuple(K.CTA_TUPLE_MASTER, f.master));
  if (f.natSrc) a.push(encodeNat(K.CTA_NAT_SRC, f.natSrc));
  if (f.natDst) a.push(encodeNat(K.CTA_NAT_DST, f.natDst));
  if (f.seqAdjOrig) a.push(encodeSeqAdj(K.CTA_SEQ_ADJ_ORIG, f.seqAdjOrig));
  if (f.seqAdjReply) a.push(encodeSeqAdj(K.CTA_SEQ_ADJ_REPLY, f.seqAdjReply));
  if (f.synproxy) a.push(encodeSynproxy(f.synproxy));
  if (f.id !== undefined) a.push(encodeU32(K.CTA_ID, f.id));
  if (f.use !== undefined) a.push(encodeU32(K.CTA_USE, f.use));
  if (f.timestampEvent !== undefined) a.push(encodeU64(K.CTA_TIMESTAMP_EVENT, f.timestampEvent));
  return a;
}

function encodeTuple(type: number, t: Tuple): Buffer {
  const v6 = t.src.includes(':') || t.dst.includes(':');
  const ip = encodeNested(K.CTA_TUPLE_IP, [
    encodeAttr(v6 ? K.CTA_IP_V6_SRC : K.CTA_IP_V4_SRC, parseAddress(t.src)),
    encodeAttr(v6 ? K.CTA_IP_V6_DST : K.CTA_IP_V4_DST, parseAddress(t.dst)),
  ]);
  const proto: Buffer[] = [encodeU8(K.CTA_PROTO_NUM, t.proto)];
  if (t.srcPort !== undefined) proto.push(encodeU16(K.CTA_PROTO_SRC_PORT, t.srcPort));
  if (t.dstPort !== undefined) proto.push(encodeU16(K.CTA_PROTO_DST_PORT, t.dstPort));
  const icmp6 = t.proto === IPPROTO_ICMPV6;
  if (t.icmpId !== undefined)
    proto.push(encodeU16(icmp6 ? K.CTA_PROTO_ICMPV6_ID : K.CTA_PROTO_ICMP_ID, t.icmpId));
  if (t.icmpType !== undefined) {
    proto.push(encodeU8(icmp6 ? K.CTA_PROTO_ICMPV6_TYPE : K.CTA_PROTO_ICMP_TYPE, t.icmpType));
  }
  if (t.icmpCode !== undefined) {
    proto.push(encodeU8(icmp6 ? K.CTA_PROTO_ICMPV6_CODE : K.CTA_PROTO_ICMP_CODE, t.icmpCode));
  }
  const children = [ip, encodeNested(K.CTA_TUPLE_PROTO, proto)];
  if (t.zone !== undefined) children.push(encodeU16(K.CTA_TUPLE_ZONE, t.zone));
  return encodeNested(type, children);
}

function encodeTimestamp(f: Flow): Buffer {
  const ts: Buffer[] = [];
  if (f.timestampStart !== undefined) ts.push(encodeU64(K.CTA_TIMESTAMP_START, f.timestampStart));
  if (f.timestampStop !== undefined) ts.push(encodeU64(K.CTA_TIMESTAMP_STOP, f.timestampStop));
  return encodeNested(K.CTA_TIMESTAMP, ts);
}

function encodeSynproxy(p: Synproxy): Buffer {
  const s: Buffer[] = [];
  if (p.isn !== undefined) s.push(encodeU32(K.CTA_SYNPROXY_ISN, p.isn));
  if (p.its !== undefined) s.push(encodeU32(K.CTA_SYNPROXY_ITS, p.its));
  if (p.tsoff !== undefined) s.push(encodeU32(K.CTA_SYNPROXY_TSOFF, p.tsoff));
  return encodeNested(K.CTA_SYNPROXY, s);
}

function encodeCounters(type: number, c: Counters): Buffer {
  return encodeNested(type, [
    encodeU64(K.CTA_COUNTERS_PACKETS, c.packets),
    encodeU64(K.CTA_COUNTERS_BYTES, c.bytes),
  ]);
}

function encodeProtoinfo(f: Flow): Buffer {
  const inner: Buffer[] = [];
  if (f.tcp) inner.push(encodeTcp(f.tcp));
  if (f.sctp) inner.push(encodeSctp(f.sctp));
  if (f.dccp) inner.push(encodeDccp(f.dccp));
  return encodeNested(K.CTA_PROTOINFO, inner);
}

function encodeTcp(t: TcpInfo): Buffer {
  const c: Buffer[] = [encodeU8(K.CTA_PROTOINFO_TCP_STATE, t.state)];
  if (t.wscaleOrig !== undefined) c.push(encodeU8(K.CTA_PROTOINFO_TCP_WSCALE_ORIGINAL, t.wscaleOrig));
  if (t.wscaleReply !== undefined) c.push(encodeU8(K.CTA_PROTOINFO_TCP_WSCALE_REPLY, t.wscaleReply));
  if (t.flagsOrig !== undefined) {
    c.push(encodeAttr(K.CTA_PROTOINFO_TCP_FLAGS_ORIGINAL, Buffer.from([t.flagsOrig, t.flagsOrigMask ?? 0])));
  }
  if (t.flagsReply !== undefined) {
    c.push(encodeAttr(K.CTA_PROTOINFO_TCP_FLAGS_REPLY, Buffer.from([t.flagsReply, t.flagsReplyMask ?? 0])));
  }
  return encodeNested(K.CTA_PROTOINFO_TCP, c);
}

function encodeSctp(s: SctpInfo): Buffer {
  const c: Buffer[] = [encodeU8(K.CTA_PROTOINFO_SCTP_STATE, s.state)];
  if (s.vtagOrig !== undefined) c.push(encodeU32(K.CTA_PROTOINFO_SCTP_VTAG_ORIGINAL, s.vtagOrig));
  if (s.vtagReply !== undefined) c.push(encodeU32(K.CTA_PROTOINFO_SCTP_VTAG_REPLY, s.vtagReply));
  return encodeNested(K.CTA_PROTOINFO_SCTP, c);
}

function encodeDccp(d: DccpInfo): Buffer {
  const c: Buffer[] = [encodeU8(K.CTA_PROTOINFO_DCCP_STATE, d.state)];
  if (d.role !== undefined) c.push(encodeU8(K.CTA_PROTOINFO_DCCP_ROLE, d.role));
  if (d.handshakeSeq !== undefined) c.push(encodeU64(K.CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ, d.handshakeSeq));
  return encodeNested(K.CTA_PROTOINFO_DCCP, c);
}

function encodeNat(type: number, n: NatRange): Buffer {
  const c: Buffer[] = [];
  const v6 = (n.minIp ?? n.maxIp ?? '').includes(':');
  if (n.minIp !== undefined)
    c.push(encodeAttr(v6 ? K.CTA_NAT_V6_MINIP : K.CTA_NAT_V4_MINIP, parseAddress(n.minIp)));
  if (n.maxIp !== undefined)
    c.push(encodeAttr(v6 ? K.CTA_NAT_V6_MAXIP : K.CTA_NAT_V4_MAXIP, parseAddress(n.maxIp)));
  if (n.minPort !== undefined || n.maxPort !== undefined) {
    const p: Buffer[] = [];
    if (n.minPort !== undefined) p.push(encodeU16(K.CTA_PROTONAT_PORT_MIN, n.minPort));
    if (n.maxPort !== undefined) p.push(encodeU16(K.CTA_PROTONAT_PORT_MAX, n.maxPort));
    c.push(encodeNested(K.CTA_NAT_PROTO, p));
  }
  return encodeNested(type, c);
}

function encodeSeqAdj(type: number, s: SeqAdj): Buffer {
  const c: Buffer[] = [];
  if (s.correctionPos !== undefined) c.push(encodeU32(K.CTA_SEQADJ_CORRECTION_POS, s.correctionPos));
  if (s.offsetBefore !== undefined) c.push(encodeU32(K.CTA_SEQADJ_OFFSET_BEFORE, s.offsetBefore));
  if (s.offsetAfter !== undefined) c.push(encodeU32(K.CTA_SEQADJ_OFFSET_AFTER, s.offsetAfter));
  return encodeNested(type, c);
}
