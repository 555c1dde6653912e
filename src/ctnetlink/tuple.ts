/** CTA_TUPLE_* (orig, reply, master): addresses, layer-4 protocol and its ids, tuple zone. */
import type { AttributeCursor } from '../netlink/nfnetlink.js';
import { AF_INET, AF_INET6 } from '../netlink/nfnetlink.js';
import { formatIPv4, formatIPv6 } from './address.js';
import {
  CTA_IP_V4_DST,
  CTA_IP_V4_SRC,
  CTA_IP_V6_DST,
  CTA_IP_V6_SRC,
  CTA_PROTO_DST_PORT,
  CTA_PROTO_ICMP_CODE,
  CTA_PROTO_ICMP_ID,
  CTA_PROTO_ICMP_TYPE,
  CTA_PROTO_ICMPV6_CODE,
  CTA_PROTO_ICMPV6_ID,
  CTA_PROTO_ICMPV6_TYPE,
  CTA_PROTO_NUM,
  CTA_PROTO_SRC_PORT,
  CTA_TUPLE_IP,
  CTA_TUPLE_PROTO,
  CTA_TUPLE_ZONE,
} from './constants.js';

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
      case CTA_TUPLE_IP:
        decodeIP(c.enter(`${name}.CTA_TUPLE_IP`), t);
        break;
      case CTA_TUPLE_PROTO:
        decodeProto(c.enter(`${name}.CTA_TUPLE_PROTO`), t);
        break;
      case CTA_TUPLE_ZONE:
        t.zone = c.u16('CTA_TUPLE_ZONE');
        break;
    }
  }
  return t;
}

function decodeIP(c: AttributeCursor, t: Tuple): void {
  while (c.next()) {
    switch (c.type) {
      case CTA_IP_V4_SRC:
      case CTA_IP_V4_DST: {
        const text = formatIPv4(
          c.buffer,
          c.fixed(c.type === CTA_IP_V4_SRC ? 'CTA_IP_V4_SRC' : 'CTA_IP_V4_DST', 4),
        );
        if (c.type === CTA_IP_V4_SRC) t.src = text;
        else t.dst = text;
        t.family = AF_INET;
        break;
      }
      case CTA_IP_V6_SRC:
      case CTA_IP_V6_DST: {
        const text = formatIPv6(
          c.buffer,
          c.fixed(c.type === CTA_IP_V6_SRC ? 'CTA_IP_V6_SRC' : 'CTA_IP_V6_DST', 16),
        );
        if (c.type === CTA_IP_V6_SRC) t.src = text;
        else t.dst = text;
        t.family = AF_INET6;
        break;
      }
    }
  }
}

function decodeProto(c: AttributeCursor, t: Tuple): void {
  while (c.next()) {
    switch (c.type) {
      case CTA_PROTO_NUM:
        t.proto = c.u8('CTA_PROTO_NUM');
        break;
      case CTA_PROTO_SRC_PORT:
        t.srcPort = c.u16('CTA_PROTO_SRC_PORT');
        break;
      case CTA_PROTO_DST_PORT:
        t.dstPort = c.u16('CTA_PROTO_DST_PORT');
        break;
      case CTA_PROTO_ICMP_ID:
        t.icmpId = c.u16('CTA_PROTO_ICMP_ID');
        break;
      case CTA_PROTO_ICMP_TYPE:
        t.icmpType = c.u8('CTA_PROTO_ICMP_TYPE');
        break;
      case CTA_PROTO_ICMP_CODE:
        t.icmpCode = c.u8('CTA_PROTO_ICMP_CODE');
        break;
      case CTA_PROTO_ICMPV6_ID:
        t.icmpId = c.u16('CTA_PROTO_ICMPV6_ID');
        break;
      case CTA_PROTO_ICMPV6_TYPE:
        t.icmpType = c.u8('CTA_PROTO_ICMPV6_TYPE');
        break;
      case CTA_PROTO_ICMPV6_CODE:
        t.icmpCode = c.u8('CTA_PROTO_ICMPV6_CODE');
        break;
    }
  }
}
