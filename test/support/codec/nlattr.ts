/**
 * Attribute encoders, the inverse of src/netlink/attributes.ts, for nfnetlink (big-endian
 * payloads): what the codec's encoders build kernel-shaped messages from.
 */
import { NLA_F_NESTED, NLA_HDRLEN } from '../../../src/netlink/attributes.js';
import { align4, writeU16h } from '../../../src/netlink/nlmsg.js';

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
