/**
 * Netlink messages (linux/netlink.h): the 16-byte nlmsghdr, its flags, NLMSG_ERROR payloads, and
 * host-order readers. Header fields are host byte order. Messages are walked by framing.ts,
 * their attributes by attributes.ts.
 */
import { endianness } from 'node:os';
import { ConntrackError } from '../errors.js';

export const NLMSG_HDRLEN = 16;

export const NLMSG_NOOP = 0x1;
export const NLMSG_ERROR = 0x2;
export const NLMSG_DONE = 0x3;
/** @kernel unused here, kept so that the list reads like the header */
export const NLMSG_OVERRUN = 0x4;

export const NLM_F_REQUEST = 0x01;
/** @internal marks dump replies: the exporter ends them by DONE or ACK; tests build them with it */
export const NLM_F_MULTI = 0x02;
export const NLM_F_ACK = 0x04;
/** @kernel unused here, kept so that the list reads like the header */
export const NLM_F_ECHO = 0x08;
export const NLM_F_DUMP_INTR = 0x10;
/** @kernel unused here, kept so that the list reads like the header */
export const NLM_F_DUMP_FILTERED = 0x20;
// GET requests
const NLM_F_ROOT = 0x100;
const NLM_F_MATCH = 0x200;
export const NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;
// NEW requests (and, in ctnetlink events, the mark of a NEW event)
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;

const LE = endianness() === 'LE';

export function readU16h(buf: Buffer, off: number): number {
  return LE ? buf.readUInt16LE(off) : buf.readUInt16BE(off);
}

export function readU32h(buf: Buffer, off: number): number {
  return LE ? buf.readUInt32LE(off) : buf.readUInt32BE(off);
}

export function writeU16h(buf: Buffer, value: number, off: number): void {
  if (LE) buf.writeUInt16LE(value, off);
  else buf.writeUInt16BE(value, off);
}

export function writeU32h(buf: Buffer, value: number, off: number): void {
  if (LE) buf.writeUInt32LE(value, off);
  else buf.writeUInt32BE(value, off);
}

export function align4(n: number): number {
  return (n + 3) & ~3;
}

/** NLMSG_ERROR payload: a negative errno (0 is an ACK) followed by the offending header. */
export function readErrorCode(buf: Buffer, start: number, end: number): number {
  if (end - start < NLMSG_HDRLEN + 4) {
    throw new ConntrackError('CT_ERR_TRUNCATED', 'NLMSG_ERROR shorter than its errno field', {
      offset: start,
    });
  }
  return LE ? buf.readInt32LE(start + NLMSG_HDRLEN) : buf.readInt32BE(start + NLMSG_HDRLEN);
}

/** Builds one netlink message; the socket layer fills in the port id. */
export function encodeMessage(type: number, flags: number, seq: number, payload: Buffer): Buffer {
  const buf = Buffer.alloc(NLMSG_HDRLEN + align4(payload.length));
  writeU32h(buf, NLMSG_HDRLEN + payload.length, 0);
  writeU16h(buf, type, 4);
  writeU16h(buf, flags, 6);
  writeU32h(buf, seq, 8);
  payload.copy(buf, NLMSG_HDRLEN);
  return buf;
}
