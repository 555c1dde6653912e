/**
 * nfnetlink (linux/netfilter/nfnetlink.h): the nfgenmsg that follows the netlink header and the
 * subsystem/operation split of the message type. Attributes are walked by netlink/attributes.ts;
 * their payloads are big-endian here.
 */
import { ConntrackError } from '../errors.js';
import { NLMSG_HDRLEN } from './nlmsg.js';

export const NFGENMSG_LEN = 4;
const NFNETLINK_V0 = 0;

export const NFNL_SUBSYS_CTNETLINK = 1;
/** The expectation subsystem: its dumps and per-CPU statistics (ctnetlink_exp). */
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
