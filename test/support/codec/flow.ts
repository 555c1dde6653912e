/**
 * The full codec of one conntrack entry as ctnetlink describes it (a CT_NEW/CT_DELETE message
 * body, from an event or a dump): decodeFlow reads every attribute, encodeFlow builds the message
 * the kernel would send. For tests, the benchmark and the fixture capture; the exporter itself
 * reads flows with the lean src/ctnetlink/summary.ts. Every field is present on a Flow, undefined
 * when the kernel did not send it, so that all flows share one shape.
 */
import * as K from '../../../src/ctnetlink/constants.js';
import type { EventType } from '../../../src/ctnetlink/event.js';
import { AttributeCursor } from '../../../src/netlink/attributes.js';
import {
  attributesStart,
  encodeNfgenmsg,
  messageType,
  NFNL_SUBSYS_CTNETLINK,
} from '../../../src/netlink/nfnetlink.js';
import {
  encodeMessage,
  NLM_F_CREATE,
  NLM_F_EXCL,
  NLM_F_MULTI,
  NLMSG_HDRLEN,
} from '../../../src/netlink/nlmsg.js';
import {
  type Counters,
  decodeCounters,
  decodeNat,
  decodeSeqAdj,
  decodeSingleString,
  decodeSynproxy,
  decodeTimestamp,
  encodeCounters,
  encodeNat,
  encodeSeqAdj,
  encodeSingleString,
  encodeSynproxy,
  encodeTimestamp,
  type NatRange,
  type SeqAdj,
  type Synproxy,
} from './flow-parts.js';
import { encodeAttr, encodeU16, encodeU32, encodeU64 } from './nlattr.js';
import { type DccpInfo, decodeProtoinfo, encodeProtoinfo, type SctpInfo, type TcpInfo } from './protoinfo.js';
import { decodeTuple, encodeTuple, type Tuple } from './tuple.js';

export interface Flow {
  /** nfgen_family of the message: AF_INET or AF_INET6. */
  family: number;
  id: number | undefined;
  orig: Tuple | undefined;
  reply: Tuple | undefined;
  /** The master's original tuple, for related flows (FTP data, ICMP errors, ...). */
  master: Tuple | undefined;
  /** IPS_* bits; see src/ctnetlink/status.ts. */
  status: number | undefined;
  /** Seconds until the kernel expires the entry. */
  timeout: number | undefined;
  mark: number | undefined;
  zone: number | undefined;
  use: number | undefined;
  tcp: TcpInfo | undefined;
  sctp: SctpInfo | undefined;
  dccp: DccpInfo | undefined;
  /** Present with net.netfilter.nf_conntrack_acct=1. */
  countersOrig: Counters | undefined;
  countersReply: Counters | undefined;
  /** Nanoseconds since the epoch (CLOCK_REALTIME); present with nf_conntrack_timestamp=1. */
  timestampStart: bigint | undefined;
  timestampStop: bigint | undefined;
  /** When the kernel generated this event (ns, CLOCK_REALTIME); events only, Linux 6.18+. */
  timestampEvent: bigint | undefined;
  helper: string | undefined;
  natSrc: NatRange | undefined;
  natDst: NatRange | undefined;
  seqAdjOrig: SeqAdj | undefined;
  seqAdjReply: SeqAdj | undefined;
  secmark: number | undefined;
  secctx: string | undefined;
  labels: Buffer | undefined;
  synproxy: Synproxy | undefined;
}

export function emptyFlow(family: number): Flow {
  return {
    family,
    id: undefined,
    orig: undefined,
    reply: undefined,
    master: undefined,
    status: undefined,
    timeout: undefined,
    mark: undefined,
    zone: undefined,
    use: undefined,
    tcp: undefined,
    sctp: undefined,
    dccp: undefined,
    countersOrig: undefined,
    countersReply: undefined,
    timestampStart: undefined,
    timestampStop: undefined,
    timestampEvent: undefined,
    helper: undefined,
    natSrc: undefined,
    natDst: undefined,
    seqAdjOrig: undefined,
    seqAdjReply: undefined,
    secmark: undefined,
    secctx: undefined,
    labels: undefined,
    synproxy: undefined,
  };
}

const cursor = new AttributeCursor('big-endian');

/**
 * Decodes the ctnetlink message in buf[start, end) (netlink header included). Throws
 * ConntrackError, and nothing else, on malformed input; attributes it does not know (at any depth)
 * are skipped.
 */
export function decodeFlow(buf: Buffer, start: number, end: number): Flow {
  const c = cursor.reset(buf, attributesStart(start, end), end, 'conntrack message');
  const f = emptyFlow(buf[start + NLMSG_HDRLEN]!);
  while (c.next()) decodeAttribute(c, f);
  return f;
}

/** One attribute of the message, in enum ctattr_type order. */
function decodeAttribute(c: AttributeCursor, f: Flow): void {
  switch (c.type) {
    case K.CTA_TUPLE_ORIG: // CTA_TUPLE_ORIG: nest, the original direction
      f.orig = decodeTuple(c, 'CTA_TUPLE_ORIG');
      break;
    case K.CTA_TUPLE_REPLY: // CTA_TUPLE_REPLY: nest, the reply direction
      f.reply = decodeTuple(c, 'CTA_TUPLE_REPLY');
      break;
    case K.CTA_STATUS: // CTA_STATUS: u32, IPS_* bits
      f.status = c.u32('CTA_STATUS');
      break;
    case K.CTA_PROTOINFO: // CTA_PROTOINFO: nest, the TCP/SCTP/DCCP state machine
      decodeProtoinfo(c.enter('CTA_PROTOINFO'), f);
      break;
    case K.CTA_HELP: // CTA_HELP: nest, the helper's name
      f.helper = decodeSingleString(c.enter('CTA_HELP'), K.CTA_HELP_NAME, 'CTA_HELP_NAME');
      break;
    case K.CTA_NAT_SRC: // CTA_NAT_SRC: nest, a source NAT range
      f.natSrc = decodeNat(c.enter('CTA_NAT_SRC'));
      break;
    case K.CTA_TIMEOUT: // CTA_TIMEOUT: u32, seconds until the entry expires
      f.timeout = c.u32('CTA_TIMEOUT');
      break;
    case K.CTA_MARK: // CTA_MARK: u32, the connmark
      f.mark = c.u32('CTA_MARK');
      break;
    case K.CTA_COUNTERS_ORIG: // CTA_COUNTERS_ORIG: nest, packets and bytes of the original direction
      f.countersOrig = decodeCounters(c.enter('CTA_COUNTERS_ORIG'));
      break;
    case K.CTA_COUNTERS_REPLY: // CTA_COUNTERS_REPLY: nest, packets and bytes of the reply direction
      f.countersReply = decodeCounters(c.enter('CTA_COUNTERS_REPLY'));
      break;
    case K.CTA_USE: // CTA_USE: u32, the entry's reference count
      f.use = c.u32('CTA_USE');
      break;
    case K.CTA_ID: // CTA_ID: u32, the entry's id (a hash: ids collide)
      f.id = c.u32('CTA_ID');
      break;
    case K.CTA_NAT_DST: // CTA_NAT_DST: nest, a destination NAT range
      f.natDst = decodeNat(c.enter('CTA_NAT_DST'));
      break;
    case K.CTA_TUPLE_MASTER: // CTA_TUPLE_MASTER: nest, the master's original tuple
      f.master = decodeTuple(c, 'CTA_TUPLE_MASTER');
      break;
    case K.CTA_SEQ_ADJ_ORIG: // CTA_SEQ_ADJ_ORIG: nest, sequence adjustment of the original direction
      f.seqAdjOrig = decodeSeqAdj(c.enter('CTA_SEQ_ADJ_ORIG'));
      break;
    case K.CTA_SEQ_ADJ_REPLY: // CTA_SEQ_ADJ_REPLY: nest, sequence adjustment of the reply direction
      f.seqAdjReply = decodeSeqAdj(c.enter('CTA_SEQ_ADJ_REPLY'));
      break;
    case K.CTA_SECMARK: // CTA_SECMARK: u32, obsolete
      f.secmark = c.u32('CTA_SECMARK');
      break;
    case K.CTA_ZONE: // CTA_ZONE: u16
      f.zone = c.u16('CTA_ZONE');
      break;
    case K.CTA_SECCTX: // CTA_SECCTX: nest, the security context's name
      f.secctx = decodeSingleString(c.enter('CTA_SECCTX'), K.CTA_SECCTX_NAME, 'CTA_SECCTX_NAME');
      break;
    case K.CTA_TIMESTAMP: // CTA_TIMESTAMP: nest, start and stop
      decodeTimestamp(c.enter('CTA_TIMESTAMP'), f);
      break;
    case K.CTA_LABELS: // CTA_LABELS: bit field of connlabels
      f.labels = c.bytes('CTA_LABELS');
      break;
    case K.CTA_SYNPROXY: // CTA_SYNPROXY: nest
      f.synproxy = decodeSynproxy(c.enter('CTA_SYNPROXY'));
      break;
    case K.CTA_TIMESTAMP_EVENT: // CTA_TIMESTAMP_EVENT: u64 ns, when the kernel generated the event
      f.timestampEvent = c.u64('CTA_TIMESTAMP_EVENT');
      break;
  }
}

export interface EncodeOptions {
  /** An event of this type, or (default) a dump reply part (CT_NEW with NLM_F_MULTI). */
  type?: EventType | 'dump';
  seq?: number;
}

/**
 * The inverse of decodeFlow, with the kernel's nesting (attribute order differs from
 * ctnetlink_fill_info's; netlink gives it no meaning). A NEW event carries NLM_F_CREATE|EXCL.
 */
export function encodeFlow(flow: Flow, opts: EncodeOptions = {}): Buffer {
  const type = opts.type ?? 'dump';
  const op = type === 'destroy' ? K.IPCTNL_MSG_CT_DELETE : K.IPCTNL_MSG_CT_NEW;
  const flags = type === 'new' ? NLM_F_CREATE | NLM_F_EXCL : type === 'dump' ? NLM_F_MULTI : 0;
  const payload = Buffer.concat([encodeNfgenmsg(flow.family), ...encodeAttributes(flow)]);
  return encodeMessage(messageType(NFNL_SUBSYS_CTNETLINK, op), flags, opts.seq ?? 0, payload);
}

// biome-ignore lint/complexity/noExcessiveCognitiveComplexity: a flat list, one line per optional Flow field (encoded when present); split, it would only be scattered.
function encodeAttributes(f: Flow): Buffer[] {
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
  if (f.helper !== undefined) a.push(encodeSingleString(K.CTA_HELP, K.CTA_HELP_NAME, f.helper));
  if (f.mark !== undefined) a.push(encodeU32(K.CTA_MARK, f.mark));
  if (f.secmark !== undefined) a.push(encodeU32(K.CTA_SECMARK, f.secmark));
  if (f.secctx !== undefined) a.push(encodeSingleString(K.CTA_SECCTX, K.CTA_SECCTX_NAME, f.secctx));
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
