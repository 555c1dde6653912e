/**
 * Where a flow's key lives in the shadow table's index. The key is CTA_ID plus a 32-bit hash of the
 * original tuple (FlowSummary.tupleHash), because CTA_ID alone is not unique: the kernel derives
 * it by hashing the entry's address and tuple into 32 bits (nf_ct_get_id), so ids collide by the
 * birthday bound, about n²/2³³ pairs among n flows: we saw two flows with one id among 150,000 in
 * a test namespace, and a host with a million flows has about a hundred such pairs. The original
 * tuple (with zone) is what the kernel keeps unique.
 */

/** Home slot of (id, tuple hash) in an index of 2^bits slots (multiplicative hashing). */
export function homeSlot(id: number, tupleHash: number, bits: number): number {
  return Math.imul(id ^ Math.imul(tupleHash, 0x85ebca6b), 0x9e3779b1) >>> (32 - bits);
}
