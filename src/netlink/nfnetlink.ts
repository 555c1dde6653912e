/**
 * nfnetlink (linux/netfilter/nfnetlink.h): the nfgenmsg that follows the netlink header and the
 * subsystem/operation split of the message type. Attributes are walked by netlink/attributes.ts;
 * their payloads are big-endian here.
 */
import { ConntrackError } from '../errors.js';
import { NLA_F_NESTED, NLA_HDRLEN } from './attributes.js';
import { align4, NLMSG_HDRLEN, writeU16h } from './nlmsg.js';

export const NFGENMSG_LEN = 4;
const NFNETLINK_V0 = 0;

export const NFNL_SUBSYS_CTNETLINK = 1;
/** @kernel unused here, kept so that the list reads like the header */
export const NFNL_SUBSYS_CTNETLINK_EXP = 2;

export const NFNLGRP_CONNTRACK_NEW = 1;
export const NFNLGRP_CONNTRACK_UPDATE = 2;
export const NFNLGRP_CONNTRACK_DESTROY = 3;

export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_INET6 = 10;

export function subsystemOf(type: number): number {
  return (type & 0xff00) >> 8;
}

export function operationOf(type: number): number {
  return type & 0x00ff;
}

export function messageType(subsystem: number, operation: number): number {
  return (subsystem << 8) | operation;
}

/** nfgenmsg for a request: family, version 0, res_id (big-endian) 0. */
export function encodeNfgenmsg(family: number, resId = 0): Buffer {
  const b = Buffer.alloc(NFGENMSG_LEN);
  b.writeUInt8(family, 0);
  b.writeUInt8(NFNETLINK_V0, 1);
  b.writeUInt16BE(resId, 2);
  return b;
}

/** Offset of the first attribute in a nfnetlink message starting at `start`. */
export function attributesStart(start: number, end: number): number {
  const first = start + NLMSG_HDRLEN + NFGENMSG_LEN;
  if (first > end) {
    throw new ConntrackError('CT_ERR_TRUNCATED', 'message too short for nfgenmsg', { offset: start });
  }
  return first;
}

/** Attribute encoders for requests and round-trip tests. */
export function encodeAttr(type: number, payload: Buffer): Buffer {
  const b = Buffer.alloc(align4(NLA_HDRLEN + payload.length));
  writeU16h(b, NLA_HDRLEN + payload.length, 0);
  writeU16h(b, type, 2);
  payload.copy(b, NLA_HDRLEN);
  return b;
}

export function encodeNested(type: number, children: Buffer[]): Buffer {
  return encodeAttr(type | NLA_F_NESTED, Buffer.concat(children));
}

export function encodeU8(type: number, v: number): Buffer {
  return encodeAttr(type, Buffer.from([v]));
}

export function encodeU16(type: number, v: number): Buffer {
  const p = Buffer.alloc(2);
  p.writeUInt16BE(v);
  return encodeAttr(type, p);
}

export function encodeU32(type: number, v: number): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(v);
  return encodeAttr(type, p);
}

export function encodeU64(type: number, v: bigint): Buffer {
  const p = Buffer.alloc(8);
  p.writeBigUInt64BE(v);
  return encodeAttr(type, p);
}

export function encodeString(type: number, s: string): Buffer {
  return encodeAttr(type, Buffer.from(`${s}\0`, 'utf8'));
}
