/**
 * One conntrack entry as ctnetlink describes it (a CT_NEW/CT_DELETE message body, from an event
 * or a dump). Every field is present on the object, undefined when the kernel did not send it, so
 * that all flows share one shape.
 */
import { AttributeCursor } from '../netlink/attributes.js';
import { attributesStart } from '../netlink/nfnetlink.js';
import { NLMSG_HDRLEN } from '../netlink/nlmsg.js';
import { formatIPv4, formatIPv6 } from './address.js';
import {
  CTA_COUNTERS_BYTES,
  CTA_COUNTERS_ORIG,
  CTA_COUNTERS_PACKETS,
  CTA_COUNTERS_PAD,
  CTA_COUNTERS_REPLY,
  CTA_COUNTERS32_BYTES,
  CTA_COUNTERS32_PACKETS,
  CTA_HELP,
  CTA_HELP_NAME,
  CTA_ID,
  CTA_LABELS,
  CTA_MARK,
  CTA_NAT_DST,
  CTA_NAT_PROTO,
  CTA_NAT_SRC,
  CTA_NAT_V4_MAXIP,
  CTA_NAT_V4_MINIP,
  CTA_NAT_V6_MAXIP,
  CTA_NAT_V6_MINIP,
  CTA_PROTOINFO,
  CTA_PROTOINFO_DCCP,
  CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ,
  CTA_PROTOINFO_DCCP_PAD,
  CTA_PROTOINFO_DCCP_ROLE,
  CTA_PROTOINFO_DCCP_STATE,
  CTA_PROTOINFO_SCTP,
  CTA_PROTOINFO_SCTP_STATE,
  CTA_PROTOINFO_SCTP_VTAG_ORIGINAL,
  CTA_PROTOINFO_SCTP_VTAG_REPLY,
  CTA_PROTOINFO_TCP,
  CTA_PROTOINFO_TCP_FLAGS_ORIGINAL,
  CTA_PROTOINFO_TCP_FLAGS_REPLY,
  CTA_PROTOINFO_TCP_STATE,
  CTA_PROTOINFO_TCP_WSCALE_ORIGINAL,
  CTA_PROTOINFO_TCP_WSCALE_REPLY,
  CTA_PROTONAT_PORT_MAX,
  CTA_PROTONAT_PORT_MIN,
  CTA_SECCTX,
  CTA_SECCTX_NAME,
  CTA_SECMARK,
  CTA_SEQ_ADJ_ORIG,
  CTA_SEQ_ADJ_REPLY,
  CTA_SEQADJ_CORRECTION_POS,
  CTA_SEQADJ_OFFSET_AFTER,
  CTA_SEQADJ_OFFSET_BEFORE,
  CTA_STATUS,
  CTA_SYNPROXY,
  CTA_SYNPROXY_ISN,
  CTA_SYNPROXY_ITS,
  CTA_SYNPROXY_TSOFF,
  CTA_TIMEOUT,
  CTA_TIMESTAMP,
  CTA_TIMESTAMP_EVENT,
  CTA_TIMESTAMP_PAD,
  CTA_TIMESTAMP_START,
  CTA_TIMESTAMP_STOP,
  CTA_TUPLE_MASTER,
  CTA_TUPLE_ORIG,
  CTA_TUPLE_REPLY,
  CTA_USE,
  CTA_ZONE,
} from './constants.js';
import { decodeTuple, type Tuple } from './tuple.js';

export interface TcpInfo {
  /** TCP_CONNTRACK_* number; see states.ts for names. */
  state: number;
  wscaleOrig: number | undefined;
  wscaleReply: number | undefined;
  /** struct nf_ct_tcp_flags: IP_CT_TCP_FLAG_* bits and the mask of bits that are meaningful. */
  flagsOrig: number | undefined;
  flagsOrigMask: number | undefined;
  flagsReply: number | undefined;
  flagsReplyMask: number | undefined;
}

export interface SctpInfo {
  state: number;
  vtagOrig: number | undefined;
  vtagReply: number | undefined;
}

export interface DccpInfo {
  state: number;
  role: number | undefined;
  handshakeSeq: bigint | undefined;
}

export interface Counters {
  packets: bigint;
  bytes: bigint;
}

export interface NatRange {
  minIp: string | undefined;
  maxIp: string | undefined;
  minPort: number | undefined;
  maxPort: number | undefined;
}

export interface SeqAdj {
  correctionPos: number | undefined;
  offsetBefore: number | undefined;
  offsetAfter: number | undefined;
}

export interface Synproxy {
  isn: number | undefined;
  its: number | undefined;
  tsoff: number | undefined;
}

export interface Flow {
  /** nfgen_family of the message: AF_INET or AF_INET6. */
  family: number;
  id: number | undefined;
  orig: Tuple | undefined;
  reply: Tuple | undefined;
  /** The master's original tuple, for related flows (FTP data, ICMP errors, ...). */
  master: Tuple | undefined;
  /** IPS_* bits; see status.ts. */
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
  while (c.next()) {
    switch (c.type) {
      case CTA_TUPLE_ORIG:
        f.orig = decodeTuple(c, 'CTA_TUPLE_ORIG');
        break;
      case CTA_TUPLE_REPLY:
        f.reply = decodeTuple(c, 'CTA_TUPLE_REPLY');
        break;
      case CTA_TUPLE_MASTER:
        f.master = decodeTuple(c, 'CTA_TUPLE_MASTER');
        break;
      case CTA_STATUS:
        f.status = c.u32('CTA_STATUS');
        break;
      case CTA_PROTOINFO:
        decodeProtoinfo(c.enter('CTA_PROTOINFO'), f);
        break;
      case CTA_HELP:
        f.helper = decodeSingleString(c.enter('CTA_HELP'), CTA_HELP_NAME, 'CTA_HELP_NAME');
        break;
      case CTA_NAT_SRC:
        f.natSrc = decodeNat(c.enter('CTA_NAT_SRC'));
        break;
      case CTA_NAT_DST:
        f.natDst = decodeNat(c.enter('CTA_NAT_DST'));
        break;
      case CTA_TIMEOUT:
        f.timeout = c.u32('CTA_TIMEOUT');
        break;
      case CTA_MARK:
        f.mark = c.u32('CTA_MARK');
        break;
      case CTA_COUNTERS_ORIG:
        f.countersOrig = decodeCounters(c.enter('CTA_COUNTERS_ORIG'));
        break;
      case CTA_COUNTERS_REPLY:
        f.countersReply = decodeCounters(c.enter('CTA_COUNTERS_REPLY'));
        break;
      case CTA_USE:
        f.use = c.u32('CTA_USE');
        break;
      case CTA_ID:
        f.id = c.u32('CTA_ID');
        break;
      case CTA_SEQ_ADJ_ORIG:
        f.seqAdjOrig = decodeSeqAdj(c.enter('CTA_SEQ_ADJ_ORIG'));
        break;
      case CTA_SEQ_ADJ_REPLY:
        f.seqAdjReply = decodeSeqAdj(c.enter('CTA_SEQ_ADJ_REPLY'));
        break;
      case CTA_SECMARK:
        f.secmark = c.u32('CTA_SECMARK');
        break;
      case CTA_ZONE:
        f.zone = c.u16('CTA_ZONE');
        break;
      case CTA_SECCTX:
        f.secctx = decodeSingleString(c.enter('CTA_SECCTX'), CTA_SECCTX_NAME, 'CTA_SECCTX_NAME');
        break;
      case CTA_TIMESTAMP:
        decodeTimestamp(c.enter('CTA_TIMESTAMP'), f);
        break;
      case CTA_LABELS:
        f.labels = c.bytes('CTA_LABELS');
        break;
      case CTA_TIMESTAMP_EVENT:
        f.timestampEvent = c.u64('CTA_TIMESTAMP_EVENT');
        break;
      case CTA_SYNPROXY:
        f.synproxy = decodeSynproxy(c.enter('CTA_SYNPROXY'));
        break;
    }
  }
  return f;
}

function decodeProtoinfo(c: AttributeCursor, f: Flow): void {
  while (c.next()) {
    switch (c.type) {
      case CTA_PROTOINFO_TCP:
        f.tcp = decodeTcp(c.enter('CTA_PROTOINFO_TCP'));
        break;
      case CTA_PROTOINFO_SCTP:
        f.sctp = decodeSctp(c.enter('CTA_PROTOINFO_SCTP'));
        break;
      case CTA_PROTOINFO_DCCP:
        f.dccp = decodeDccp(c.enter('CTA_PROTOINFO_DCCP'));
        break;
    }
  }
}

function decodeTcp(c: AttributeCursor): TcpInfo {
  const t: TcpInfo = {
    state: 0,
    wscaleOrig: undefined,
    wscaleReply: undefined,
    flagsOrig: undefined,
    flagsOrigMask: undefined,
    flagsReply: undefined,
    flagsReplyMask: undefined,
  };
  while (c.next()) {
    switch (c.type) {
      case CTA_PROTOINFO_TCP_STATE:
        t.state = c.u8('CTA_PROTOINFO_TCP_STATE');
        break;
      case CTA_PROTOINFO_TCP_WSCALE_ORIGINAL:
        t.wscaleOrig = c.u8('CTA_PROTOINFO_TCP_WSCALE_ORIGINAL');
        break;
      case CTA_PROTOINFO_TCP_WSCALE_REPLY:
        t.wscaleReply = c.u8('CTA_PROTOINFO_TCP_WSCALE_REPLY');
        break;
      case CTA_PROTOINFO_TCP_FLAGS_ORIGINAL: {
        const at = c.fixed('CTA_PROTOINFO_TCP_FLAGS_ORIGINAL', 2);
        t.flagsOrig = c.buf[at]!;
        t.flagsOrigMask = c.buf[at + 1]!;
        break;
      }
      case CTA_PROTOINFO_TCP_FLAGS_REPLY: {
        const at = c.fixed('CTA_PROTOINFO_TCP_FLAGS_REPLY', 2);
        t.flagsReply = c.buf[at]!;
        t.flagsReplyMask = c.buf[at + 1]!;
        break;
      }
    }
  }
  return t;
}

function decodeSctp(c: AttributeCursor): SctpInfo {
  const s: SctpInfo = { state: 0, vtagOrig: undefined, vtagReply: undefined };
  while (c.next()) {
    switch (c.type) {
      case CTA_PROTOINFO_SCTP_STATE:
        s.state = c.u8('CTA_PROTOINFO_SCTP_STATE');
        break;
      case CTA_PROTOINFO_SCTP_VTAG_ORIGINAL:
        s.vtagOrig = c.u32('CTA_PROTOINFO_SCTP_VTAG_ORIGINAL');
        break;
      case CTA_PROTOINFO_SCTP_VTAG_REPLY:
        s.vtagReply = c.u32('CTA_PROTOINFO_SCTP_VTAG_REPLY');
        break;
    }
  }
  return s;
}

function decodeDccp(c: AttributeCursor): DccpInfo {
  const d: DccpInfo = { state: 0, role: undefined, handshakeSeq: undefined };
  while (c.next()) {
    switch (c.type) {
      case CTA_PROTOINFO_DCCP_STATE:
        d.state = c.u8('CTA_PROTOINFO_DCCP_STATE');
        break;
      case CTA_PROTOINFO_DCCP_ROLE:
        d.role = c.u8('CTA_PROTOINFO_DCCP_ROLE');
        break;
      case CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ:
        d.handshakeSeq = c.u64('CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ');
        break;
      case CTA_PROTOINFO_DCCP_PAD:
        break; // aligns the u64, carries nothing
    }
  }
  return d;
}

function decodeCounters(c: AttributeCursor): Counters {
  const out: Counters = { packets: 0n, bytes: 0n };
  while (c.next()) {
    switch (c.type) {
      case CTA_COUNTERS_PACKETS:
        out.packets = c.u64('CTA_COUNTERS_PACKETS');
        break;
      case CTA_COUNTERS_BYTES:
        out.bytes = c.u64('CTA_COUNTERS_BYTES');
        break;
      case CTA_COUNTERS32_PACKETS:
        out.packets = BigInt(c.u32('CTA_COUNTERS32_PACKETS'));
        break;
      case CTA_COUNTERS32_BYTES:
        out.bytes = BigInt(c.u32('CTA_COUNTERS32_BYTES'));
        break;
      case CTA_COUNTERS_PAD:
        break; // aligns the 64-bit values, carries nothing
    }
  }
  return out;
}

function decodeTimestamp(c: AttributeCursor, f: Flow): void {
  while (c.next()) {
    switch (c.type) {
      case CTA_TIMESTAMP_START:
        f.timestampStart = c.u64('CTA_TIMESTAMP_START');
        break;
      case CTA_TIMESTAMP_STOP:
        f.timestampStop = c.u64('CTA_TIMESTAMP_STOP');
        break;
      case CTA_TIMESTAMP_PAD:
        break;
    }
  }
}

function decodeNat(c: AttributeCursor): NatRange {
  const n: NatRange = { minIp: undefined, maxIp: undefined, minPort: undefined, maxPort: undefined };
  while (c.next()) {
    switch (c.type) {
      case CTA_NAT_V4_MINIP:
        n.minIp = formatIPv4(c.buf, c.fixed('CTA_NAT_V4_MINIP', 4));
        break;
      case CTA_NAT_V4_MAXIP:
        n.maxIp = formatIPv4(c.buf, c.fixed('CTA_NAT_V4_MAXIP', 4));
        break;
      case CTA_NAT_V6_MINIP:
        n.minIp = formatIPv6(c.buf, c.fixed('CTA_NAT_V6_MINIP', 16));
        break;
      case CTA_NAT_V6_MAXIP:
        n.maxIp = formatIPv6(c.buf, c.fixed('CTA_NAT_V6_MAXIP', 16));
        break;
      case CTA_NAT_PROTO: {
        const p = c.enter('CTA_NAT_PROTO');
        while (p.next()) {
          if (p.type === CTA_PROTONAT_PORT_MIN) n.minPort = p.u16('CTA_PROTONAT_PORT_MIN');
          else if (p.type === CTA_PROTONAT_PORT_MAX) n.maxPort = p.u16('CTA_PROTONAT_PORT_MAX');
        }
        break;
      }
    }
  }
  return n;
}

function decodeSeqAdj(c: AttributeCursor): SeqAdj {
  const s: SeqAdj = { correctionPos: undefined, offsetBefore: undefined, offsetAfter: undefined };
  while (c.next()) {
    switch (c.type) {
      case CTA_SEQADJ_CORRECTION_POS:
        s.correctionPos = c.u32('CTA_SEQADJ_CORRECTION_POS');
        break;
      case CTA_SEQADJ_OFFSET_BEFORE:
        s.offsetBefore = c.u32('CTA_SEQADJ_OFFSET_BEFORE');
        break;
      case CTA_SEQADJ_OFFSET_AFTER:
        s.offsetAfter = c.u32('CTA_SEQADJ_OFFSET_AFTER');
        break;
    }
  }
  return s;
}

function decodeSynproxy(c: AttributeCursor): Synproxy {
  const s: Synproxy = { isn: undefined, its: undefined, tsoff: undefined };
  while (c.next()) {
    switch (c.type) {
      case CTA_SYNPROXY_ISN:
        s.isn = c.u32('CTA_SYNPROXY_ISN');
        break;
      case CTA_SYNPROXY_ITS:
        s.its = c.u32('CTA_SYNPROXY_ITS');
        break;
      case CTA_SYNPROXY_TSOFF:
        s.tsoff = c.u32('CTA_SYNPROXY_TSOFF');
        break;
    }
  }
  return s;
}

function decodeSingleString(c: AttributeCursor, type: number, name: string): string {
  let out = '';
  while (c.next()) {
    // Other members (CTA_HELP_INFO: the helper's private data) are skipped.
    if (c.type === type) out = c.string(name);
  }
  return out;
}
