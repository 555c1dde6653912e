/**
 * CTA_STATUS bits (enum ip_conntrack_status, linux/netfilter/nf_conntrack_common.h), with one
 * named check per flag so that callers never spell a mask. Only the masks a caller combines itself
 * (the table's state classification, test fixtures) are exported.
 */
const IPS_EXPECTED = 1 << 0;
export const IPS_SEEN_REPLY = 1 << 1;
export const IPS_ASSURED = 1 << 2;
export const IPS_CONFIRMED = 1 << 3;
const IPS_SRC_NAT = 1 << 4;
const IPS_DST_NAT = 1 << 5;
const IPS_SEQ_ADJUST = 1 << 6;
const IPS_SRC_NAT_DONE = 1 << 7;
const IPS_DST_NAT_DONE = 1 << 8;
const IPS_DYING = 1 << 9;
const IPS_FIXED_TIMEOUT = 1 << 10;
const IPS_TEMPLATE = 1 << 11;
const IPS_UNTRACKED = 1 << 12;
const IPS_HELPER = 1 << 13;
const IPS_OFFLOAD = 1 << 14;
const IPS_HW_OFFLOAD = 1 << 15;

const NAMES: readonly (readonly [number, string])[] = [
  [IPS_EXPECTED, 'EXPECTED'],
  [IPS_SEEN_REPLY, 'SEEN_REPLY'],
  [IPS_ASSURED, 'ASSURED'],
  [IPS_CONFIRMED, 'CONFIRMED'],
  [IPS_SRC_NAT, 'SRC_NAT'],
  [IPS_DST_NAT, 'DST_NAT'],
  [IPS_SEQ_ADJUST, 'SEQ_ADJUST'],
  [IPS_SRC_NAT_DONE, 'SRC_NAT_DONE'],
  [IPS_DST_NAT_DONE, 'DST_NAT_DONE'],
  [IPS_DYING, 'DYING'],
  [IPS_FIXED_TIMEOUT, 'FIXED_TIMEOUT'],
  [IPS_TEMPLATE, 'TEMPLATE'],
  [IPS_UNTRACKED, 'UNTRACKED'],
  [IPS_HELPER, 'HELPER'],
  [IPS_OFFLOAD, 'OFFLOAD'],
  [IPS_HW_OFFLOAD, 'HW_OFFLOAD'],
];

export const Status = {
  expected: (s: number): boolean => (s & IPS_EXPECTED) !== 0,
  seenReply: (s: number): boolean => (s & IPS_SEEN_REPLY) !== 0,
  assured: (s: number): boolean => (s & IPS_ASSURED) !== 0,
  confirmed: (s: number): boolean => (s & IPS_CONFIRMED) !== 0,
  srcNat: (s: number): boolean => (s & IPS_SRC_NAT) !== 0,
  dstNat: (s: number): boolean => (s & IPS_DST_NAT) !== 0,
  seqAdjust: (s: number): boolean => (s & IPS_SEQ_ADJUST) !== 0,
  srcNatDone: (s: number): boolean => (s & IPS_SRC_NAT_DONE) !== 0,
  dstNatDone: (s: number): boolean => (s & IPS_DST_NAT_DONE) !== 0,
  dying: (s: number): boolean => (s & IPS_DYING) !== 0,
  fixedTimeout: (s: number): boolean => (s & IPS_FIXED_TIMEOUT) !== 0,
  template: (s: number): boolean => (s & IPS_TEMPLATE) !== 0,
  untracked: (s: number): boolean => (s & IPS_UNTRACKED) !== 0,
  helper: (s: number): boolean => (s & IPS_HELPER) !== 0,
  offload: (s: number): boolean => (s & IPS_OFFLOAD) !== 0,
  hwOffload: (s: number): boolean => (s & IPS_HW_OFFLOAD) !== 0,
  /** Flag names, kernel spelling without the IPS_ prefix; unknown bits as `BIT_n`. */
  names(s: number): string[] {
    const out: string[] = [];
    let known = 0;
    for (const [bit, name] of NAMES) {
      known |= bit;
      if (s & bit) out.push(name);
    }
    for (let i = 0; i < 32; i++) if (s & ~known & (1 << i)) out.push(`BIT_${i}`);
    return out;
  },
} as const;
