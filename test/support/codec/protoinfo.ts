/**
 * CTA_PROTOINFO: the state machines of TCP, SCTP and DCCP with what ctnetlink adds to each.
 * Decode and encode side by side.
 */
import * as K from '../../../src/ctnetlink/constants.js';
import type { AttributeCursor } from '../../../src/netlink/attributes.js';
import { encodeAttr, encodeNested, encodeU8, encodeU32, encodeU64 } from './nlattr.js';

export interface TcpInfo {
  /** TCP_CONNTRACK_* number; see src/ctnetlink/states.ts for names. */
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

export interface ProtoInfo {
  tcp: TcpInfo | undefined;
  sctp: SctpInfo | undefined;
  dccp: DccpInfo | undefined;
}

/** Decodes CTA_PROTOINFO's members into `p`. */
export function decodeProtoinfo(c: AttributeCursor, p: ProtoInfo): void {
  while (c.next()) {
    switch (c.type) {
      case K.CTA_PROTOINFO_TCP: // CTA_PROTOINFO_TCP: nest
        p.tcp = decodeTcp(c.enter('CTA_PROTOINFO_TCP'));
        break;
      case K.CTA_PROTOINFO_SCTP: // CTA_PROTOINFO_SCTP: nest
        p.sctp = decodeSctp(c.enter('CTA_PROTOINFO_SCTP'));
        break;
      case K.CTA_PROTOINFO_DCCP: // CTA_PROTOINFO_DCCP: nest
        p.dccp = decodeDccp(c.enter('CTA_PROTOINFO_DCCP'));
        break;
    }
  }
}

export function encodeProtoinfo(p: ProtoInfo): Buffer {
  const inner: Buffer[] = [];
  if (p.tcp) inner.push(encodeTcp(p.tcp));
  if (p.sctp) inner.push(encodeSctp(p.sctp));
  if (p.dccp) inner.push(encodeDccp(p.dccp));
  return encodeNested(K.CTA_PROTOINFO, inner);
}

/** TCP protoinfo in `state` with none of its optional attributes. */
export function emptyTcpInfo(state: number): TcpInfo {
  return {
    state,
    wscaleOrig: undefined,
    wscaleReply: undefined,
    flagsOrig: undefined,
    flagsOrigMask: undefined,
    flagsReply: undefined,
    flagsReplyMask: undefined,
  };
}

function decodeTcp(c: AttributeCursor): TcpInfo {
  const t = emptyTcpInfo(0);
  while (c.next()) {
    switch (c.type) {
      case K.CTA_PROTOINFO_TCP_STATE: // CTA_PROTOINFO_TCP_STATE: u8, TCP_CONNTRACK_*
        t.state = c.u8('CTA_PROTOINFO_TCP_STATE');
        break;
      case K.CTA_PROTOINFO_TCP_WSCALE_ORIGINAL: // CTA_PROTOINFO_TCP_WSCALE_ORIGINAL: u8
        t.wscaleOrig = c.u8('CTA_PROTOINFO_TCP_WSCALE_ORIGINAL');
        break;
      case K.CTA_PROTOINFO_TCP_WSCALE_REPLY: // CTA_PROTOINFO_TCP_WSCALE_REPLY: u8
        t.wscaleReply = c.u8('CTA_PROTOINFO_TCP_WSCALE_REPLY');
        break;
      case K.CTA_PROTOINFO_TCP_FLAGS_ORIGINAL: {
        // CTA_PROTOINFO_TCP_FLAGS_ORIGINAL: struct nf_ct_tcp_flags { u8 flags, mask }
        const at = c.fixed('CTA_PROTOINFO_TCP_FLAGS_ORIGINAL', 2);
        t.flagsOrig = c.buf[at]!;
        t.flagsOrigMask = c.buf[at + 1]!;
        break;
      }
      case K.CTA_PROTOINFO_TCP_FLAGS_REPLY: {
        // CTA_PROTOINFO_TCP_FLAGS_REPLY: struct nf_ct_tcp_flags { u8 flags, mask }
        const at = c.fixed('CTA_PROTOINFO_TCP_FLAGS_REPLY', 2);
        t.flagsReply = c.buf[at]!;
        t.flagsReplyMask = c.buf[at + 1]!;
        break;
      }
    }
  }
  return t;
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

function decodeSctp(c: AttributeCursor): SctpInfo {
  const s: SctpInfo = { state: 0, vtagOrig: undefined, vtagReply: undefined };
  while (c.next()) {
    switch (c.type) {
      case K.CTA_PROTOINFO_SCTP_STATE: // CTA_PROTOINFO_SCTP_STATE: u8, SCTP_CONNTRACK_*
        s.state = c.u8('CTA_PROTOINFO_SCTP_STATE');
        break;
      case K.CTA_PROTOINFO_SCTP_VTAG_ORIGINAL: // CTA_PROTOINFO_SCTP_VTAG_ORIGINAL: u32
        s.vtagOrig = c.u32('CTA_PROTOINFO_SCTP_VTAG_ORIGINAL');
        break;
      case K.CTA_PROTOINFO_SCTP_VTAG_REPLY: // CTA_PROTOINFO_SCTP_VTAG_REPLY: u32
        s.vtagReply = c.u32('CTA_PROTOINFO_SCTP_VTAG_REPLY');
        break;
    }
  }
  return s;
}

function encodeSctp(s: SctpInfo): Buffer {
  const c: Buffer[] = [encodeU8(K.CTA_PROTOINFO_SCTP_STATE, s.state)];
  if (s.vtagOrig !== undefined) c.push(encodeU32(K.CTA_PROTOINFO_SCTP_VTAG_ORIGINAL, s.vtagOrig));
  if (s.vtagReply !== undefined) c.push(encodeU32(K.CTA_PROTOINFO_SCTP_VTAG_REPLY, s.vtagReply));
  return encodeNested(K.CTA_PROTOINFO_SCTP, c);
}

function decodeDccp(c: AttributeCursor): DccpInfo {
  const d: DccpInfo = { state: 0, role: undefined, handshakeSeq: undefined };
  while (c.next()) {
    switch (c.type) {
      case K.CTA_PROTOINFO_DCCP_STATE: // CTA_PROTOINFO_DCCP_STATE: u8, CT_DCCP_*
        d.state = c.u8('CTA_PROTOINFO_DCCP_STATE');
        break;
      case K.CTA_PROTOINFO_DCCP_ROLE: // CTA_PROTOINFO_DCCP_ROLE: u8
        d.role = c.u8('CTA_PROTOINFO_DCCP_ROLE');
        break;
      case K.CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ: // CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ: u64
        d.handshakeSeq = c.u64('CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ');
        break;
      case K.CTA_PROTOINFO_DCCP_PAD: // CTA_PROTOINFO_DCCP_PAD: aligns the u64, carries nothing
        break;
    }
  }
  return d;
}

function encodeDccp(d: DccpInfo): Buffer {
  const c: Buffer[] = [encodeU8(K.CTA_PROTOINFO_DCCP_STATE, d.state)];
  if (d.role !== undefined) c.push(encodeU8(K.CTA_PROTOINFO_DCCP_ROLE, d.role));
  if (d.handshakeSeq !== undefined) c.push(encodeU64(K.CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ, d.handshakeSeq));
  return encodeNested(K.CTA_PROTOINFO_DCCP, c);
}
