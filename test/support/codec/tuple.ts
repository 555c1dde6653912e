/**
 * CTA_TUPLE_* (orig, reply, master): addresses, layer-4 protocol and its ids, tuple zone. Decode
 * and encode side by side.
 */
import { formatIPv4, formatIPv6, parseAddress } from '../../../src/ctnetlink/address.js';
import * as K from '../../../src/ctnetlink/constants.js';
import type { AttributeCursor } from '../../../src/netlink/attributes.js';
import { AF_INET, AF_INET6 } from '../../../src/netlink/nfnetlink.js';
import { encodeAttr, encodeNested, encodeU8, encodeU16 } from './nlattr.js';

export interface Tuple {
  /** AF_INET or AF_INET6, from the address attributes present. */
  family: number;
  src: string;
  dst: string;
  /** IP protocol number (CTA_PROTO_NUM). */
  proto: number;
  srcPort: number | undefined;
  dstPort: number | undefined;
  /** ICMP or ICMPv6 echo id, type and code. */
  icmpId: number | undefined;
  icmpType: number | undefined;
  icmpCode: number | undefined;
  zone: number | undefined;
}

function emptyTuple(): Tuple {
  return {
    family: 0,
    src: '',
    dst: '',
    proto: 0,
    srcPort: undefined,
    dstPort: undefined,
    icmpId: undefined,
    icmpType: undefined,
    icmpCode: undefined,
    zone: undefined,
  };
}

/** Decodes the nest the cursor stands on; attributes it does not know are skipped. */
export function decodeTuple(at: AttributeCursor, name: string): Tuple {
  const t = emptyTuple();
  const c = at.enter(name);
  while (c.next()) {
    switch (c.type) {
      case K.CTA_TUPLE_IP: // CTA_TUPLE_IP: nest of the addresses
        decodeIP(c.enter(`${name}.CTA_TUPLE_IP`), t);
        break;
      case K.CTA_TUPLE_PROTO: // CTA_TUPLE_PROTO: nest of the protocol and its ports or ICMP ids
        decodeProto(c.enter(`${name}.CTA_TUPLE_PROTO`), t);
        break;
      case K.CTA_TUPLE_ZONE: // CTA_TUPLE_ZONE: u16, the zone of this direction
        t.zone = c.u16('CTA_TUPLE_ZONE');
        break;
    }
  }
  return t;
}

export function encodeTuple(type: number, t: Tuple): Buffer {
  const v6 = t.src.includes(':') || t.dst.includes(':');
  const ip = encodeNested(K.CTA_TUPLE_IP, [
    encodeAttr(v6 ? K.CTA_IP_V6_SRC : K.CTA_IP_V4_SRC, parseAddress(t.src)),
    encodeAttr(v6 ? K.CTA_IP_V6_DST : K.CTA_IP_V4_DST, parseAddress(t.dst)),
  ]);
  const children = [ip, encodeNested(K.CTA_TUPLE_PROTO, encodeProto(t))];
  if (t.zone !== undefined) children.push(encodeU16(K.CTA_TUPLE_ZONE, t.zone));
  return encodeNested(type, children);
}

/** The members of CTA_TUPLE_IP: kernel name, address size and family, source or destination. */
const IP_MEMBERS: Readonly<Record<number, { name: string; size: 4 | 16; family: number; src: boolean }>> = {
  [K.CTA_IP_V4_SRC]: { name: 'CTA_IP_V4_SRC', size: 4, family: AF_INET, src: true }, // 4 bytes
  [K.CTA_IP_V4_DST]: { name: 'CTA_IP_V4_DST', size: 4, family: AF_INET, src: false }, // 4 bytes
  [K.CTA_IP_V6_SRC]: { name: 'CTA_IP_V6_SRC', size: 16, family: AF_INET6, src: true }, // 16 bytes
  [K.CTA_IP_V6_DST]: { name: 'CTA_IP_V6_DST', size: 16, family: AF_INET6, src: false }, // 16 bytes
};

function decodeIP(c: AttributeCursor, t: Tuple): void {
  while (c.next()) {
    const m = IP_MEMBERS[c.type];
    if (m === undefined) continue;
    const at = c.fixed(m.name, m.size);
    const text = m.size === 4 ? formatIPv4(c.buf, at) : formatIPv6(c.buf, at);
    if (m.src) t.src = text;
    else t.dst = text;
    t.family = m.family;
  }
}

function decodeProto(c: AttributeCursor, t: Tuple): void {
  while (c.next()) {
    switch (c.type) {
      case K.CTA_PROTO_NUM: // CTA_PROTO_NUM: u8, the IP protocol
        t.proto = c.u8('CTA_PROTO_NUM');
        break;
      case K.CTA_PROTO_SRC_PORT: // CTA_PROTO_SRC_PORT: u16
        t.srcPort = c.u16('CTA_PROTO_SRC_PORT');
        break;
      case K.CTA_PROTO_DST_PORT: // CTA_PROTO_DST_PORT: u16
        t.dstPort = c.u16('CTA_PROTO_DST_PORT');
        break;
      case K.CTA_PROTO_ICMP_ID: // CTA_PROTO_ICMP_ID: u16, the echo id
        t.icmpId = c.u16('CTA_PROTO_ICMP_ID');
        break;
      case K.CTA_PROTO_ICMP_TYPE: // CTA_PROTO_ICMP_TYPE: u8
        t.icmpType = c.u8('CTA_PROTO_ICMP_TYPE');
        break;
      case K.CTA_PROTO_ICMP_CODE: // CTA_PROTO_ICMP_CODE: u8
        t.icmpCode = c.u8('CTA_PROTO_ICMP_CODE');
        break;
      case K.CTA_PROTO_ICMPV6_ID: // CTA_PROTO_ICMPV6_ID: u16, the echo id
        t.icmpId = c.u16('CTA_PROTO_ICMPV6_ID');
        break;
      case K.CTA_PROTO_ICMPV6_TYPE: // CTA_PROTO_ICMPV6_TYPE: u8
        t.icmpType = c.u8('CTA_PROTO_ICMPV6_TYPE');
        break;
      case K.CTA_PROTO_ICMPV6_CODE: // CTA_PROTO_ICMPV6_CODE: u8
        t.icmpCode = c.u8('CTA_PROTO_ICMPV6_CODE');
        break;
    }
  }
}

function encodeProto(t: Tuple): Buffer[] {
  const icmp6 = t.proto === K.IPPROTO_ICMPV6;
  const proto: Buffer[] = [encodeU8(K.CTA_PROTO_NUM, t.proto)];
  if (t.srcPort !== undefined) proto.push(encodeU16(K.CTA_PROTO_SRC_PORT, t.srcPort));
  if (t.dstPort !== undefined) proto.push(encodeU16(K.CTA_PROTO_DST_PORT, t.dstPort));
  if (t.icmpId !== undefined) {
    proto.push(encodeU16(icmp6 ? K.CTA_PROTO_ICMPV6_ID : K.CTA_PROTO_ICMP_ID, t.icmpId));
  }
  if (t.icmpType !== undefined) {
    proto.push(encodeU8(icmp6 ? K.CTA_PROTO_ICMPV6_TYPE : K.CTA_PROTO_ICMP_TYPE, t.icmpType));
  }
  if (t.icmpCode !== undefined) {
    proto.push(encodeU8(icmp6 ? K.CTA_PROTO_ICMPV6_CODE : K.CTA_PROTO_ICMP_CODE, t.icmpCode));
  }
  return proto;
}
