/**
 * CTA_STATUS with one named check per flag (as ti-mo/conntrack's Status), so that tests never
 * spell a mask, and the flag names as conntrack-tools prints them.
 */
import {
  IPS_ASSURED,
  IPS_CONFIRMED,
  IPS_DST_NAT,
  IPS_DST_NAT_DONE,
  IPS_DYING,
  IPS_EXPECTED,
  IPS_FIXED_TIMEOUT,
  IPS_HELPER,
  IPS_HW_OFFLOAD,
  IPS_OFFLOAD,
  IPS_SEEN_REPLY,
  IPS_SEQ_ADJUST,
  IPS_SRC_NAT,
  IPS_SRC_NAT_DONE,
  IPS_TEMPLATE,
  IPS_UNTRACKED,
} from '../../../src/ctnetlink/status.js';

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
