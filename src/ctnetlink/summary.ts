/**
 * The lean decoder of the event and dump paths: from one ctnetlink flow message it reads only what
 * the shadow table needs, into one reused FlowSummary of plain numbers (no strings, no objects,
 * no bigints per message). Lengths and nesting are checked like the strict decoder (flow.ts) does,
 * and malformed input throws ConntrackError, which callers count and skip; attributes the table
 * does not need are stepped over unread. flow.ts remains the full decoder for tests and tools.
 */
import { ConntrackError } from '../errors.js';
import { attributesStart, NLA_F_NESTED, NLA_HDRLEN, NLA_TYPE_MASK } from '../netlink/nfnetlink.js';
import { NLMSG_HDRLEN, readU16h } from '../netlink/nlmsg.js';
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
  CTA_TUPLE_ZONE,
  CTA_ZONE,
} from './constants.js';

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
  }
}

/** Set by nextAttr(): the attribute's nesting, payload bounds and the next attribute's offset. */
let aNested = false;
let aNext = 0;
let aStart = 0;
let aEnd = 0;

/**
 * Reads the attribute header at `off` (inside a region ending at `limit`), checks its length and
 * returns its type (flags masked off). Module state instead of an object keeps it allocation-free.
 */
function nextAttr(buf: Buffer, off: number, limit: number, where: string): number {
  if (limit - off < NLA_HDRLEN) {
    throw new ConntrackError(
      'CT_ERR_TRUNCATED',
      `${where}: ${limit - off} bytes left, too few for an attribute header`,
      {
        offset: off,
      },
    );
  }
  const len = readU16h(buf, off);
  const raw = readU16h(buf, off + 2);
  if (len < NLA_HDRLEN || off + len > limit) {
    throw new ConntrackError(
      'CT_ERR_TRUNCATED',
      `${where}: attribute type ${raw & NLA_TYPE_MASK} declares length ${len}, ${limit - off} bytes left`,
      { offset: off },
    );
  }
  aNested = (raw & NLA_F_NESTED) !== 0;
  aStart = off + NLA_HDRLEN;
  aEnd = off + len;
  aNext = off + ((len + 3) & ~3);
  return raw & NLA_TYPE_MASK;
}

function scalar(size: number, where: string): number {
  if (aNested) {
    throw new ConntrackError('CT_ERR_NESTING', `${where}: scalar attribute carries the nested flag`, {
      offset: aStart - NLA_HDRLEN,
    });
  }
  if (aEnd - aStart !== size) {
    throw new ConntrackError(
      'CT_ERR_ATTR_LENGTH',
      `${where}: payload of ${aEnd - aStart} bytes, expected ${size}`,
      {
        offset: aStart - NLA_HDRLEN,
      },
    );
  }
  return aStart;
}

/** u64 nanoseconds (big-endian) as seconds; a double keeps current dates to about 0.2 µs. */
function seconds(buf: Buffer, at: number): number {
  return (buf.readUInt32BE(at) * 4294967296 + buf.readUInt32BE(at + 4)) / 1e9;
}

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
  const first = attributesStart(start, end);
  out.reset(buf, buf[start + NLMSG_HDRLEN]!);
  let off = first;
  while (off < end) {
    const t = nextAttr(buf, off, end, 'flow');
    off = aNext;
    switch (t) {
      case CTA_TUPLE_ORIG:
        tuple(buf, aStart, aEnd, out);
        break;
      case CTA_STATUS:
        out.status = buf.readUInt32BE(scalar(4, 'CTA_STATUS'));
        break;
      case CTA_PROTOINFO:
        protoinfo(buf, aStart, aEnd, out);
        break;
      case CTA_ID:
        out.id = buf.readUInt32BE(scalar(4, 'CTA_ID'));
        break;
      case CTA_MARK:
        out.mark = buf.readUInt32BE(scalar(4, 'CTA_MARK'));
        break;
      case CTA_ZONE:
        out.zone = buf.readUInt16BE(scalar(2, 'CTA_ZONE'));
        break;
      case CTA_TIMESTAMP:
        timestamp(buf, aStart, aEnd, out);
        break;
      case CTA_TIMESTAMP_EVENT:
        out.eventTime = seconds(buf, scalar(8, 'CTA_TIMESTAMP_EVENT'));
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
}

function tuple(buf: Buffer, from: number, to: number, out: FlowSummary): void {
  let proto = -1;
  let zone = 0;
  let off = from;
  while (off < to) {
    const t = nextAttr(buf, off, to, 'CTA_TUPLE_ORIG');
    off = aNext;
    if (t === CTA_TUPLE_IP) tupleIp(buf, aStart, aEnd, out);
    else if (t === CTA_TUPLE_PROTO) proto = tupleProto(buf, aStart, aEnd, out, proto);
    else if (t === CTA_TUPLE_ZONE) zone = buf.readUInt16BE(scalar(2, 'CTA_TUPLE_ZONE'));
  }
  if (proto < 0) {
    throw new ConntrackError('CT_ERR_TRUNCATED', 'CTA_TUPLE_ORIG without CTA_PROTO_NUM', { offset: from });
  }
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
function tupleIp(buf: Buffer, from: number, to: number, out: FlowSummary): void {
  let off = from;
  while (off < to) {
    const t = nextAttr(buf, off, to, 'CTA_TUPLE_IP');
    off = aNext;
    if (t === CTA_IP_V4_SRC) out.srcAt = scalar(4, 'CTA_IP_V4_SRC');
    else if (t === CTA_IP_V4_DST) out.dstAt = scalar(4, 'CTA_IP_V4_DST');
    else if (t === CTA_IP_V6_SRC) out.srcAt = scalar(16, 'CTA_IP_V6_SRC');
    else if (t === CTA_IP_V6_DST) out.dstAt = scalar(16, 'CTA_IP_V6_DST');
    else continue;
    out.addrLen = aEnd - aStart;
  }
}

/**
 * CTA_TUPLE_PROTO of the original tuple: ports, or ICMP id and (type << 8 | code). Returns
 * CTA_PROTO_NUM, or `proto` (what the caller had) when the nest does not carry it.
 */
function tupleProto(buf: Buffer, from: number, to: number, out: FlowSummary, proto: number): number {
  let num = proto;
  let off = from;
  while (off < to) {
    const t = nextAttr(buf, off, to, 'CTA_TUPLE_PROTO');
    off = aNext;
    switch (t) {
      case CTA_PROTO_NUM:
        num = buf[scalar(1, 'CTA_PROTO_NUM')]!;
        break;
      case CTA_PROTO_SRC_PORT:
        out.srcPort = buf.readUInt16BE(scalar(2, 'CTA_PROTO_SRC_PORT'));
        break;
      case CTA_PROTO_DST_PORT:
        out.dstPort = buf.readUInt16BE(scalar(2, 'CTA_PROTO_DST_PORT'));
        break;
      case CTA_PROTO_ICMP_ID:
      case CTA_PROTO_ICMPV6_ID:
        out.srcPort = buf.readUInt16BE(scalar(2, 'CTA_PROTO_ICMP_ID'));
        break;
      case CTA_PROTO_ICMP_TYPE:
      case CTA_PROTO_ICMPV6_TYPE:
        out.dstPort = (out.dstPort & 0xff) | (buf[scalar(1, 'CTA_PROTO_ICMP_TYPE')]! << 8);
        break;
      case CTA_PROTO_ICMP_CODE:
      case CTA_PROTO_ICMPV6_CODE:
        out.dstPort = (out.dstPort & 0xff00) | buf[scalar(1, 'CTA_PROTO_ICMP_CODE')]!;
        break;
      default:
        break;
    }
  }
  return num;
}

function protoinfo(buf: Buffer, from: number, to: number, out: FlowSummary): void {
  let off = from;
  while (off < to) {
    const t = nextAttr(buf, off, to, 'CTA_PROTOINFO');
    off = aNext;
    if (t !== CTA_PROTOINFO_TCP && t !== CTA_PROTOINFO_SCTP && t !== CTA_PROTOINFO_DCCP) continue;
    const nestEnd = aEnd;
    let o = aStart;
    while (o < nestEnd) {
      const t = nextAttr(buf, o, nestEnd, 'CTA_PROTOINFO state');
      o = aNext;
      if (t === PROTOINFO_STATE) out.protoState = buf[scalar(1, 'CTA_PROTOINFO state')]!;
    }
  }
}

function timestamp(buf: Buffer, from: number, to: number, out: FlowSummary): void {
  let off = from;
  while (off < to) {
    const t = nextAttr(buf, off, to, 'CTA_TIMESTAMP');
    off = aNext;
    if (t === CTA_TIMESTAMP_START) out.start = seconds(buf, scalar(8, 'CTA_TIMESTAMP_START'));
    else if (t === CTA_TIMESTAMP_STOP) out.stop = seconds(buf, scalar(8, 'CTA_TIMESTAMP_STOP'));
  }
}
