/**
 * nfnetlink (linux/netfilter/nfnetlink.h): the nfgenmsg that follows the netlink header, the
 * subsystem/operation split of the message type, and the attribute walk with big-endian scalar
 * readers that every ctnetlink decoder uses.
 */
import { ConntrackError } from '../errors.js';
import { align4, NLMSG_HDRLEN, readU16h, writeU16h } from './nlmsg.js';

export const NFGENMSG_LEN = 4;
const NFNETLINK_V0 = 0;

export const NFNL_SUBSYS_CTNETLINK = 1;
/** @kernel unused here, kept so that the list reads like the header */
export const NFNL_SUBSYS_CTNETLINK_EXP = 2;

export const NFNLGRP_CONNTRACK_NEW = 1;
export const NFNLGRP_CONNTRACK_UPDATE = 2;
export const NFNLGRP_CONNTRACK_DESTROY = 3;

export const NLA_HDRLEN = 4;
export const NLA_F_NESTED = 0x8000;
const NLA_F_NET_BYTEORDER = 0x4000;
export const NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff;

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

/**
 * Walks the attributes in [start, end): after each `next()` that returns true, `type`, `nested`,
 * `start` and `end` describe one attribute whose length has been checked, so decoders read
 * payloads without bounds checks beyond the expected scalar size. A cursor rather than a callback
 * keeps the hot event path free of closures and of an object per attribute.
 */
export class AttributeCursor {
  type = 0;
  nested = false;
  start = 0;
  end = 0;
  private off: number;

  constructor(
    /** The whole datagram; attribute bounds are absolute offsets into it. */
    readonly buffer: Buffer,
    from: number,
    private readonly limit: number,
    /** Names the enclosing attribute in error messages. */
    readonly where: string,
  ) {
    this.off = from;
  }

  next(): boolean {
    const { buffer: buf, off, limit } = this;
    if (off >= limit) return false;
    if (limit - off < NLA_HDRLEN) {
      throw new ConntrackError(
        'CT_ERR_TRUNCATED',
        `${this.where}: ${limit - off} bytes left, too few for an attribute header`,
        { offset: off },
      );
    }
    const len = readU16h(buf, off);
    const rawType = readU16h(buf, off + 2);
    if (len < NLA_HDRLEN || off + len > limit) {
      throw new ConntrackError(
        'CT_ERR_TRUNCATED',
        `${this.where}: attribute type ${rawType & NLA_TYPE_MASK} declares length ${len}, ${limit - off} bytes left`,
        { offset: off },
      );
    }
    this.type = rawType & NLA_TYPE_MASK;
    this.nested = (rawType & NLA_F_NESTED) !== 0;
    this.start = off + NLA_HDRLEN;
    this.end = off + len;
    // The last attribute of a nest may be unpadded; overshooting `limit` just ends the walk.
    this.off = off + align4(len);
    return true;
  }

  /** Checks a fixed-size scalar payload and returns its offset in `buffer`. */
  fixed(name: string, size: number): number {
    notNested(name, this.nested, this.start);
    expectLength(name, this.start, this.end, size);
    return this.start;
  }

  u8(name: string): number {
    return this.buffer[this.fixed(name, 1)]!;
  }

  u16(name: string): number {
    return this.buffer.readUInt16BE(this.fixed(name, 2));
  }

  u32(name: string): number {
    return this.buffer.readUInt32BE(this.fixed(name, 4));
  }

  u64(name: string): bigint {
    return this.buffer.readBigUInt64BE(this.fixed(name, 8));
  }

  /** NUL-terminated string attribute (helper names, security contexts). */
  string(name: string): string {
    notNested(name, this.nested, this.start);
    let stop = this.start;
    while (stop < this.end && this.buffer[stop] !== 0) stop++;
    return this.buffer.toString('utf8', this.start, stop);
  }

  bytes(name: string): Buffer {
    notNested(name, this.nested, this.start);
    return Buffer.from(this.buffer.subarray(this.start, this.end));
  }

  /** A cursor over this attribute's children; a nest without the flag is accepted (pre-5.2 kernels). */
  enter(name: string): AttributeCursor {
    return new AttributeCursor(this.buffer, this.start, this.end, name);
  }
}

function expectLength(name: string, pstart: number, pend: number, want: number): void {
  if (pend - pstart !== want) {
    throw new ConntrackError(
      'CT_ERR_ATTR_LENGTH',
      `${name}: payload of ${pend - pstart} bytes, expected ${want}`,
      { offset: pstart - NLA_HDRLEN },
    );
  }
}

function notNested(name: string, nested: boolean, pstart: number): void {
  if (nested) {
    throw new ConntrackError('CT_ERR_NESTING', `${name}: scalar attribute carries the nested flag`, {
      offset: pstart - NLA_HDRLEN,
    });
  }
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
