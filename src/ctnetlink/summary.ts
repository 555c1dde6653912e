/**
 * The lean decoder of the event and dump paths: from one ctnetlink flow message it reads only what
 * the shadow table needs, into one reused FlowSummary of plain numbers (no strings, no objects,
 * no bigints per message). Lengths and nesting are checked by the attribute cursor
 * (netlink/attributes.ts), and malformed input throws ConntrackError, which callers count and
 * skip; attributes the table does not need are stepped over unread. The full decoder, for tests
 * and tools, is test/support/codec/flow.ts.
 */
import { ConntrackError } from '../errors.js';
import { AttributeCursor, NLA_HDRLEN } from '../netlink/attributes.js';
import { attributesStart } from '../netlink/nfnetlink.js';
import { NLMSG_HDRLEN } from '../netlink/nlmsg.js';
import {
  CTA_ID,
  CTA_IP_V4_DST,
  CTA_IP_V4_SRC,
  CTA_IP_V6_DST,
  CTA_IP_V6_SRC,
  CTA_MARK,
  CTA_PROTO_DST_PORT,
  CTA_PROTO_ICMP_CODE,
  CTA_PROTO_ICMP_ID,
  CTA_PROTO_ICMP_TYPE,
  CTA_PROTO_ICMPV6_CODE,
  CTA_PROTO_ICMPV6_ID,
  CTA_PROTO_ICMPV6_TYPE,
  CTA_PROTO_NUM,
  CTA_PROTO_SRC_PORT,
  CTA_PROTOINFO,
  CTA_PROTOINFO_DCCP,
  CTA_PROTOINFO_SCTP,
  CTA_PROTOINFO_TCP,
  CTA_STATUS,
  CTA_TIMESTAMP,
  CTA_TIMESTAMP_EVENT,
  CTA_TIMESTAMP_START,
  CTA_TIMESTAMP_STOP,
  CTA_TUPLE_IP,
  CTA_TUPLE_ORIG,
  CTA_TUPLE_PROTO,
  CTA_TUPLE_REPLY,
  CTA_TUPLE_ZONE,
  CTA_ZONE,
} from './constants.js';
import { IPS_DST_NAT, IPS_SRC_NAT } from './status.js';

/** The state attribute is the first of each CTA_PROTOINFO_{TCP,DCCP,SCTP} nest: type 1 in all three. */
const PROTOINFO_STATE = 1;

/** What the table needs of one flow message. Reused: read it before decoding the next message. */
export class FlowSummary {
  /** The buffer the address offsets point into. */
  buf: Buffer = Buffer.alloc(0);
  /** nfgen_family: AF_INET or AF_INET6. */
  family = 0;
  /** CTA_ID; -1 when absent. */
  id = -1;
  /** The original tuple's IP protocol; -1 when the message has no original tuple. */
  proto = -1;
  /** 32-bit hash of the original tuple (addresses, ports or ICMP id/type/code, tuple zone). */
  tupleHash = 0;
  /** CTA_PROTOINFO state of TCP, SCTP or DCCP; -1 when absent. */
  protoState = -1;
  /** CTA_STATUS (IPS_* bits); -1 when absent. */
  status = -1;
  /** CTA_TIMESTAMP_START / _STOP in seconds since the epoch; NaN when absent. */
  start = Number.NaN;
  stop = Number.NaN;
  /** CTA_TIMESTAMP_EVENT (Linux 6.18+): when the kernel generated the event, in seconds; NaN when absent. */
  eventTime = Number.NaN;
  /** CTA_MARK; -1 when absent. */
  mark = -1;
  /** CTA_ZONE; 0 when absent (the default zone). */
  zone = 0;
  /** Offsets in `buf` of the original source and destination address; -1 when absent. */
  srcAt = -1;
  dstAt = -1;
  /** 4 (IPv4) or 16 (IPv6); 0 when absent. */
  addrLen = 0;
  /** Original source and destination port; ICMP: id and (type << 8 | code). */
  srcPort = 0;
  dstPort = 0;
  /**
   * The reply tuple, decoded only for translated flows (CTA_STATUS with IPS_SRC_NAT or
   * IPS_DST_NAT): `replySrcAt` is -1 for every other flow, and then the other three fields are
   * stale (left from an earlier message), so an untranslated flow costs one store more than before.
   * Offsets in `buf` (addresses of the original tuple's length); ports as in the original tuple.
   */
  replySrcAt = -1;
  replyDstAt = -1;
  replySrcPort = 0;
  replyDstPort = 0;

  reset(buf: Buffer, family: number): void {
    this.buf = buf;
    this.family = family;
    this.id = -1;
    this.proto = -1;
    this.tupleHash = 0;
    this.protoState = -1;
    this.status = -1;
    this.start = Number.NaN;
    this.stop = Number.NaN;
    this.eventTime = Number.NaN;
    this.mark = -1;
    this.zone = 0;
    this.srcAt = -1;
    this.dstAt = -1;
    this.addrLen = 0;
    this.srcPort = 0;
    this.dstPort = 0;
    this.replySrcAt = -1;
  }
}

/** The status bits that say a flow is translated: its reply tuple is not the inverted original. */
export const NAT_BITS = IPS_SRC_NAT | IPS_DST_NAT;

/** The walk of the event path: one root cursor and its children, reused for every message. */
const cursor = new AttributeCursor('big-endian');

function mix(h: number, v: number): number {
  return Math.imul(h ^ v, 0x01000193);
}

function mixAddress(buf: Buffer, h0: number, at: number, len: number): number {
  let h = h0;
  for (let i = 0; i < len; i += 4) h = mix(h, buf.readUInt32BE(at + i));
  return h;
}

/**
 * Decodes the flow message in buf[start, end) (netlink header included) into `out`. Throws
 * ConntrackError, and nothing else, on malformed input, and on a flow without CTA_ID or original
 * tuple: the kernel puts both in every event and dump entry (ctnetlink_fill_info,
 * ctnetlink_conntrack_event), and the shadow table cannot key a flow without them.
 */
export function summarizeFlow(buf: Buffer, start: number, end: number, out: FlowSummary): void {
  const c = cursor.reset(buf, attributesStart(start, end), end, 'flow');
  out.reset(buf, buf[start + NLMSG_HDRLEN]!);
  // The kernel puts the reply tuple before CTA_STATUS: remember where it is, read it after the
  // walk only if the status says the flow is translated.
  let replyAt = -1;
  while (c.next()) {
    switch (c.type) {
      case CTA_TUPLE_ORIG:
        tuple(c.enter('CTA_TUPLE_ORIG'), out);
        break;
      case CTA_TUPLE_REPLY:
        replyAt = c.start - NLA_HDRLEN;
        break;
      case CTA_STATUS:
        out.status = c.u32('CTA_STATUS');
        break;
      case CTA_PROTOINFO:
        protoinfo(c.enter('CTA_PROTOINFO'), out);
        break;
      case CTA_ID:
        out.id = c.u32('CTA_ID');
        break;
      case CTA_MARK:
        out.mark = c.u32('CTA_MARK');
        break;
      case CTA_ZONE:
        out.zone = c.u16('CTA_ZONE');
        break;
      case CTA_TIMESTAMP:
        timestamp(c.enter('CTA_TIMESTAMP'), out);
        break;
      case CTA_TIMESTAMP_EVENT:
        out.eventTime = c.u64Number('CTA_TIMESTAMP_EVENT') / 1e9;
        break;
      default:
        break;
    }
  }
  if (out.id < 0) throw new ConntrackError('CT_ERR_MISSING_ATTR', 'flow without CTA_ID', { offset: start });
  if (out.proto < 0) {
    throw new ConntrackError('CT_ERR_MISSING_ATTR', 'flow without CTA_TUPLE_ORIG protocol', {
      offset: start,
    });
  }
  if (replyAt >= 0 && out.status > 0 && (out.status & NAT_BITS) !== 0) replyTuple(buf, replyAt, end, out);
}

/** Reused for the reply tuple of translated flows. */
const replyCursor = new AttributeCursor('big-endian');

/**
 * CTA_TUPLE_REPLY at buf[at, end): its addresses and ports (ICMP: id and type << 8 | code) into
 * the reply fields, read by the original tuple's own readers (which write the original's fields,
 * put back after). Its protocol and zone are the original's. A reply tuple without both addresses
 * of the original's family leaves the flow without one (replySrcAt -1).
 */
function replyTuple(buf: Buffer, at: number, end: number, out: FlowSummary): void {
  const { srcAt, dstAt, addrLen, srcPort, dstPort } = out;
  out.srcAt = -1;
  out.dstAt = -1;
  out.addrLen = 0;
  out.srcPort = 0;
  out.dstPort = 0;
  const r = replyCursor.reset(buf, at, end, 'flow');
  r.next();
  const c = r.enter('CTA_TUPLE_REPLY');
  while (c.next()) {
    if (c.type === CTA_TUPLE_IP) tupleIp(c.enter('CTA_TUPLE_IP'), out);
    else if (c.type === CTA_TUPLE_PROTO) tupleProto(c.enter('CTA_TUPLE_PROTO'), out, -1);
  }
  if (out.srcAt >= 0 && out.dstAt >= 0 && out.addrLen === addrLen) {
    out.replySrcAt = out.srcAt;
    out.replyDstAt = out.dstAt;
    out.replySrcPort = out.srcPort;
    out.replyDstPort = out.dstPort;
  }
  out.srcAt = srcAt;
  out.dstAt = dstAt;
  out.addrLen = addrLen;
  out.srcPort = srcPort;
  out.dstPort = dstPort;
}

function tuple(c: AttributeCursor, out: FlowSummary): void {
  const from = c.start;
  let proto = -1;
  let zone = 0;
  while (c.next()) {
    if (c.type === CTA_TUPLE_IP) tupleIp(c.enter('CTA_TUPLE_IP'), out);
    else if (c.type === CTA_TUPLE_PROTO) proto = tupleProto(c.enter('CTA_TUPLE_PROTO'), out, proto);
    else if (c.type === CTA_TUPLE_ZONE) zone = c.u16('CTA_TUPLE_ZONE');
  }
  if (proto < 0) {
    throw new ConntrackError('CT_ERR_MISSING_ATTR', 'CTA_TUPLE_ORIG without CTA_PROTO_NUM', {
      offset: from - NLA_HDRLEN,
    });
  }
  const buf = c.buf;
  out.proto = proto;
  let h = mix(mix(mix(0x811c9dc5, proto), out.srcPort), out.dstPort);
  h = mix(h, zone);
  if (out.srcAt >= 0) h = mixAddress(buf, h, out.srcAt, out.addrLen);
  if (out.dstAt >= 0) h = mixAddress(buf, h ^ 0x5bd1e995, out.dstAt, out.addrLen);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  out.tupleHash = (h ^ (h >>> 12)) >>> 0;
}

/** CTA_TUPLE_IP of the original tuple: where the addresses are, and their length. */
function tupleIp(c: AttributeCursor, out: FlowSummary): void {
  while (c.next()) {
    if (c.type === CTA_IP_V4_SRC) out.srcAt = c.fixed('CTA_IP_V4_SRC', 4);
    else if (c.type === CTA_IP_V4_DST) out.dstAt = c.fixed('CTA_IP_V4_DST', 4);
    else if (c.type === CTA_IP_V6_SRC) out.srcAt = c.fixed('CTA_IP_V6_SRC', 16);
    else if (c.type === CTA_IP_V6_DST) out.dstAt = c.fixed('CTA_IP_V6_DST', 16);
    else continue;
    out.addrLen = c.end - c.start;
  }
}

/**
 * CTA_TUPLE_PROTO of the original tuple: ports, or ICMP id and (type << 8 | code). Returns
 * CTA_PROTO_NUM, or `proto` (what the caller had) when the nest does not carry it.
 */
function tupleProto(c: AttributeCursor, out: FlowSummary, proto: number): number {
  let num = proto;
  while (c.next()) {
    switch (c.type) {
      case CTA_PROTO_NUM:
        num = c.u8('CTA_PROTO_NUM');
        break;
      case CTA_PROTO_SRC_PORT:
        out.srcPort = c.u16('CTA_PROTO_SRC_PORT');
        break;
      case CTA_PROTO_DST_PORT:
        out.dstPort = c.u16('CTA_PROTO_DST_PORT');
        break;
      case CTA_PROTO_ICMP_ID:
      case CTA_PROTO_ICMPV6_ID:
        out.srcPort = c.u16('CTA_PROTO_ICMP_ID');
        break;
      case CTA_PROTO_ICMP_TYPE:
      case CTA_PROTO_ICMPV6_TYPE:
        out.dstPort = (out.dstPort & 0xff) | (c.u8('CTA_PROTO_ICMP_TYPE') << 8);
        break;
      case CTA_PROTO_ICMP_CODE:
      case CTA_PROTO_ICMPV6_CODE:
        out.dstPort = (out.dstPort & 0xff00) | c.u8('CTA_PROTO_ICMP_CODE');
        break;
      default:
        break;
    }
  }
  return num;
}

function protoinfo(c: AttributeCursor, out: FlowSummary): void {
  while (c.next()) {
    const t = c.type;
    if (t !== CTA_PROTOINFO_TCP && t !== CTA_PROTOINFO_SCTP && t !== CTA_PROTOINFO_DCCP) continue;
    const p = c.enter('CTA_PROTOINFO state');
    while (p.next()) {
      if (p.type === PROTOINFO_STATE) out.protoState = p.u8('CTA_PROTOINFO state');
    }
  }
}

function timestamp(c: AttributeCursor, out: FlowSummary): void {
  while (c.next()) {
    if (c.type === CTA_TIMESTAMP_START) out.start = c.u64Number('CTA_TIMESTAMP_START') / 1e9;
    else if (c.type === CTA_TIMESTAMP_STOP) out.stop = c.u64Number('CTA_TIMESTAMP_STOP') / 1e9;
  }
}
