/** CTA_TUPLE_* (orig, reply, master): addresses, layer-4 protocol and its ids, tuple zone. */
import type { AttributeCursor } from '../netlink/attributes.js';
import { AF_INET, AF_INET6 } from '../netlink/nfnetlink.js';
import { formatIPv4, formatIPv6 } from './address.js';
import * as K from './constants.js';

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
      case K.CTA_TUPLE_IP:
        decodeIP(c.enter(`${name}.CTA_TUPLE_IP`), t);
        break;
      case K.CTA_TUPLE_PROTO:
        decodeProto(c.enter(`${name}.CTA_TUPLE_PROTO`), t);
        break;
      case K.CTA_TUPLE_ZONE:
        t.zone = c.u16('CTA_TUPLE_ZONE');
        break;
    }
  }
  return t;
}

/** The members of CTA_TUPLE_IP: kernel name, address size and family, source or destination. */
const IP_MEMBERS: Readonly<Record<number, { name: string; size: 4 | 16; family: number; src: boolean }>> = {
  [K.CTA_IP_V4_SRC]: { name: 'CTA_IP_V4_SRC', size: 4, family: AF_INET, src: true },
  [K.CTA_IP_V4_DST]: { name: 'CTA_IP_V4_DST', size: 4, family: AF_INET, src: false },
  [K.CTA_IP_V6_SRC]: { name: 'CTA_IP_V6_SRC', size: 16, family: AF_INET6, src: true },
  [K.CTA_IP_V6_DST]: { name: 'CTA_IP_V6_DST', size: 16, family: AF_INET6, src: false },
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
      case K.CTA_PROTO_NUM:
        t.proto = c.u8('CTA_PROTO_NUM');
        break;
      case K.CTA_PROTO_SRC_PORT:
        t.srcPort = c.u16('CTA_PROTO_SRC_PORT');
        break;
      case K.CTA_PROTO_DST_PORT:
        t.dstPort = c.u16('CTA_PROTO_DST_PORT');
        break;
      case K.CTA_PROTO_ICMP_ID:
        t.icmpId = c.u16('CTA_PROTO_ICMP_ID');
        break;
      case K.CTA_PROTO_ICMP_TYPE:
        t.icmpType = c.u8('CTA_PROTO_ICMP_TYPE');
        break;
      case K.CTA_PROTO_ICMP_CODE:
        t.icmpCode = c.u8('CTA_PROTO_ICMP_CODE');
        break;
      case K.CTA_PROTO_ICMPV6_ID:
        t.icmpId = c.u16('CTA_PROTO_ICMPV6_ID');
        break;
      case K.CTA_PROTO_ICMPV6_TYPE:
        t.icmpType = c.u8('CTA_PROTO_ICMPV6_TYPE');
        break;
      case K.CTA_PROTO_ICMPV6_CODE:
        t.icmpCode = c.u8('CTA_PROTO_ICMPV6_CODE');
        break;
    }
  }
}
