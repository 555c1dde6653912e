/**
 * The shadow table's key. CTA_ID alone is not unique: the kernel derives it by hashing the
 * entry's address and tuple into 32 bits (nf_ct_get_id), so ids collide by the birthday bound,
 * about n²/2³³ pairs among n flows: we saw two flows with one id among 150,000 in a test
 * namespace, and a host with a million flows has about a hundred such pairs. The original tuple
 * (with zone) is what the kernel keeps unique, so 21 bits hashed from it widen the id to a 53-bit
 * number key: still a plain number, no string built per event.
 */
import type { Flow } from '../ctnetlink/flow.js';

const TUPLE_BITS = 2 ** 21;

function mixString(h: number, s: string): number {
  let x = h;
  for (let i = 0; i < s.length; i++) x = Math.imul(x ^ s.charCodeAt(i), 0x01000193);
  return x;
}

/** undefined when the message carries no CTA_ID or no original tuple. */
export function flowKey(flow: Flow): number | undefined {
  const id = flow.id;
  const t = flow.orig;
  if (id === undefined || t === undefined) return undefined;
  let h = Math.imul(0x811c9dc5 ^ t.proto, 0x01000193);
  h = Math.imul(h ^ (t.srcPort ?? t.icmpId ?? 0), 0x9e3779b1);
  h = Math.imul(h ^ (t.dstPort ?? ((t.icmpType ?? 0) << 8) | (t.icmpCode ?? 0)), 0x85ebca6b);
  h = Math.imul(h ^ (t.zone ?? 0), 0xc2b2ae35);
  h = mixString(mixString(h, t.src), t.dst);
  h ^= h >>> 15;
  return id * TUPLE_BITS + ((h >>> 0) % TUPLE_BITS);
}
