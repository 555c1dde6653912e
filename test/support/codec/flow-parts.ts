/**
 * The nests of a flow besides its tuples and CTA_PROTOINFO: counters, timestamps, NAT ranges,
 * sequence adjustment, synproxy, and the nests that hold one string (helper, security context).
 * Decode and encode side by side.
 */
import { formatIPv4, formatIPv6, parseAddress } from '../../../src/ctnetlink/address.js';
import * as K from '../../../src/ctnetlink/constants.js';
import type { AttributeCursor } from '../../../src/netlink/attributes.js';
import { encodeAttr, encodeNested, encodeString, encodeU16, encodeU32, encodeU64 } from './nlattr.js';

export interface Counters {
  packets: bigint;
  bytes: bigint;
}

export function decodeCounters(c: AttributeCursor): Counters {
  const out: Counters = { packets: 0n, bytes: 0n };
  while (c.next()) {
    switch (c.type) {
      case K.CTA_COUNTERS_PACKETS: // CTA_COUNTERS_PACKETS: u64
        out.packets = c.u64('CTA_COUNTERS_PACKETS');
        break;
      case K.CTA_COUNTERS_BYTES: // CTA_COUNTERS_BYTES: u64
        out.bytes = c.u64('CTA_COUNTERS_BYTES');
        break;
      case K.CTA_COUNTERS32_PACKETS: // CTA_COUNTERS32_PACKETS: u32, old kernels
        out.packets = BigInt(c.u32('CTA_COUNTERS32_PACKETS'));
        break;
      case K.CTA_COUNTERS32_BYTES: // CTA_COUNTERS32_BYTES: u32, old kernels
        out.bytes = BigInt(c.u32('CTA_COUNTERS32_BYTES'));
        break;
      case K.CTA_COUNTERS_PAD: // CTA_COUNTERS_PAD: aligns the 64-bit values, carries nothing
        break;
    }
  }
  return out;
}

export function encodeCounters(type: number, c: Counters): Buffer {
  return encodeNested(type, [
    encodeU64(K.CTA_COUNTERS_PACKETS, c.packets),
    encodeU64(K.CTA_COUNTERS_BYTES, c.bytes),
  ]);
}

/** Nanoseconds since the epoch (CLOCK_REALTIME). */
export interface Timestamps {
  timestampStart: bigint | undefined;
  timestampStop: bigint | undefined;
}

export function decodeTimestamp(c: AttributeCursor, t: Timestamps): void {
  while (c.next()) {
    switch (c.type) {
      case K.CTA_TIMESTAMP_START: // CTA_TIMESTAMP_START: u64 ns
        t.timestampStart = c.u64('CTA_TIMESTAMP_START');
        break;
      case K.CTA_TIMESTAMP_STOP: // CTA_TIMESTAMP_STOP: u64 ns, in DESTROY events
        t.timestampStop = c.u64('CTA_TIMESTAMP_STOP');
        break;
      case K.CTA_TIMESTAMP_PAD: // CTA_TIMESTAMP_PAD: aligns the u64s, carries nothing
        break;
    }
  }
}

export function encodeTimestamp(t: Timestamps): Buffer {
  const ts: Buffer[] = [];
  if (t.timestampStart !== undefined) ts.push(encodeU64(K.CTA_TIMESTAMP_START, t.timestampStart));
  if (t.timestampStop !== undefined) ts.push(encodeU64(K.CTA_TIMESTAMP_STOP, t.timestampStop));
  return encodeNested(K.CTA_TIMESTAMP, ts);
}

export interface NatRange {
  minIp: string | undefined;
  maxIp: string | undefined;
  minPort: number | undefined;
  maxPort: number | undefined;
}

export function decodeNat(c: AttributeCursor): NatRange {
  const n: NatRange = { minIp: undefined, maxIp: undefined, minPort: undefined, maxPort: undefined };
  while (c.next()) {
    switch (c.type) {
      case K.CTA_NAT_V4_MINIP: // CTA_NAT_V4_MINIP: 4 bytes
        n.minIp = formatIPv4(c.buf, c.fixed('CTA_NAT_V4_MINIP', 4));
        break;
      case K.CTA_NAT_V4_MAXIP: // CTA_NAT_V4_MAXIP: 4 bytes
        n.maxIp = formatIPv4(c.buf, c.fixed('CTA_NAT_V4_MAXIP', 4));
        break;
      case K.CTA_NAT_V6_MINIP: // CTA_NAT_V6_MINIP: 16 bytes
        n.minIp = formatIPv6(c.buf, c.fixed('CTA_NAT_V6_MINIP', 16));
        break;
      case K.CTA_NAT_V6_MAXIP: // CTA_NAT_V6_MAXIP: 16 bytes
        n.maxIp = formatIPv6(c.buf, c.fixed('CTA_NAT_V6_MAXIP', 16));
        break;
      case K.CTA_NAT_PROTO: {
        // CTA_NAT_PROTO: nest of CTA_PROTONAT_PORT_MIN and _MAX, u16 each
        const p = c.enter('CTA_NAT_PROTO');
        while (p.next()) {
          if (p.type === K.CTA_PROTONAT_PORT_MIN) n.minPort = p.u16('CTA_PROTONAT_PORT_MIN');
          else if (p.type === K.CTA_PROTONAT_PORT_MAX) n.maxPort = p.u16('CTA_PROTONAT_PORT_MAX');
        }
        break;
      }
    }
  }
  return n;
}

export function encodeNat(type: number, n: NatRange): Buffer {
  const c: Buffer[] = [];
  const v6 = (n.minIp ?? n.maxIp ?? '').includes(':');
  if (n.minIp !== undefined) {
    c.push(encodeAttr(v6 ? K.CTA_NAT_V6_MINIP : K.CTA_NAT_V4_MINIP, parseAddress(n.minIp)));
  }
  if (n.maxIp !== undefined) {
    c.push(encodeAttr(v6 ? K.CTA_NAT_V6_MAXIP : K.CTA_NAT_V4_MAXIP, parseAddress(n.maxIp)));
  }
  if (n.minPort !== undefined || n.maxPort !== undefined) {
    const p: Buffer[] = [];
    if (n.minPort !== undefined) p.push(encodeU16(K.CTA_PROTONAT_PORT_MIN, n.minPort));
    if (n.maxPort !== undefined) p.push(encodeU16(K.CTA_PROTONAT_PORT_MAX, n.maxPort));
    c.push(encodeNested(K.CTA_NAT_PROTO, p));
  }
  return encodeNested(type, c);
}

export interface SeqAdj {
  correctionPos: number | undefined;
  offsetBefore: number | undefined;
  offsetAfter: number | undefined;
}

export function decodeSeqAdj(c: AttributeCursor): SeqAdj {
  const s: SeqAdj = { correctionPos: undefined, offsetBefore: undefined, offsetAfter: undefined };
  while (c.next()) {
    switch (c.type) {
      case K.CTA_SEQADJ_CORRECTION_POS: // CTA_SEQADJ_CORRECTION_POS: u32
        s.correctionPos = c.u32('CTA_SEQADJ_CORRECTION_POS');
        break;
      case K.CTA_SEQADJ_OFFSET_BEFORE: // CTA_SEQADJ_OFFSET_BEFORE: u32
        s.offsetBefore = c.u32('CTA_SEQADJ_OFFSET_BEFORE');
        break;
      case K.CTA_SEQADJ_OFFSET_AFTER: // CTA_SEQADJ_OFFSET_AFTER: u32
        s.offsetAfter = c.u32('CTA_SEQADJ_OFFSET_AFTER');
        break;
    }
  }
  return s;
}

export function encodeSeqAdj(type: number, s: SeqAdj): Buffer {
  const c: Buffer[] = [];
  if (s.correctionPos !== undefined) c.push(encodeU32(K.CTA_SEQADJ_CORRECTION_POS, s.correctionPos));
  if (s.offsetBefore !== undefined) c.push(encodeU32(K.CTA_SEQADJ_OFFSET_BEFORE, s.offsetBefore));
  if (s.offsetAfter !== undefined) c.push(encodeU32(K.CTA_SEQADJ_OFFSET_AFTER, s.offsetAfter));
  return encodeNested(type, c);
}

export interface Synproxy {
  isn: number | undefined;
  its: number | undefined;
  tsoff: number | undefined;
}

export function decodeSynproxy(c: AttributeCursor): Synproxy {
  const s: Synproxy = { isn: undefined, its: undefined, tsoff: undefined };
  while (c.next()) {
    switch (c.type) {
      case K.CTA_SYNPROXY_ISN: // CTA_SYNPROXY_ISN: u32
        s.isn = c.u32('CTA_SYNPROXY_ISN');
        break;
      case K.CTA_SYNPROXY_ITS: // CTA_SYNPROXY_ITS: u32
        s.its = c.u32('CTA_SYNPROXY_ITS');
        break;
      case K.CTA_SYNPROXY_TSOFF: // CTA_SYNPROXY_TSOFF: u32
        s.tsoff = c.u32('CTA_SYNPROXY_TSOFF');
        break;
    }
  }
  return s;
}

export function encodeSynproxy(p: Synproxy): Buffer {
  const s: Buffer[] = [];
  if (p.isn !== undefined) s.push(encodeU32(K.CTA_SYNPROXY_ISN, p.isn));
  if (p.its !== undefined) s.push(encodeU32(K.CTA_SYNPROXY_ITS, p.its));
  if (p.tsoff !== undefined) s.push(encodeU32(K.CTA_SYNPROXY_TSOFF, p.tsoff));
  return encodeNested(K.CTA_SYNPROXY, s);
}

/** A nest holding one string member (CTA_HELP's CTA_HELP_NAME, CTA_SECCTX's CTA_SECCTX_NAME). */
export function decodeSingleString(c: AttributeCursor, type: number, name: string): string {
  let out = '';
  while (c.next()) {
    // Other members (CTA_HELP_INFO: the helper's private data) are skipped.
    if (c.type === type) out = c.string(name);
  }
  return out;
}

export function encodeSingleString(nest: number, type: number, s: string): Buffer {
  return encodeNested(nest, [encodeString(type, s)]);
}
