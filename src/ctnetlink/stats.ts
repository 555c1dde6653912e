/**
 * Statistics replies: IPCTNL_MSG_CT_GET_STATS_CPU (one message per possible CPU, res_id = CPU),
 * IPCTNL_MSG_CT_GET_STATS (entries and nf_conntrack_max) and IPCTNL_MSG_EXP_GET_STATS_CPU (the
 * expectation counters of the same per-CPU structure, one message per possible CPU; the kernel
 * types its replies with the CTNETLINK subsystem, not CTNETLINK_EXP). Counters the kernel no
 * longer fills (searched, new, ignore, delete, delete_list) are decoded for completeness.
 */
import { AttributeCursor } from '../netlink/attributes.js';
import { attributesStart } from '../netlink/nfnetlink.js';
import { NLMSG_HDRLEN } from '../netlink/nlmsg.js';
import {
  CTA_STATS_CHAIN_TOOLONG,
  CTA_STATS_CLASH_RESOLVE,
  CTA_STATS_DELETE,
  CTA_STATS_DELETE_LIST,
  CTA_STATS_DROP,
  CTA_STATS_EARLY_DROP,
  CTA_STATS_ERROR,
  CTA_STATS_EXP_CREATE,
  CTA_STATS_EXP_DELETE,
  CTA_STATS_EXP_NEW,
  CTA_STATS_FOUND,
  CTA_STATS_GLOBAL_ENTRIES,
  CTA_STATS_GLOBAL_MAX_ENTRIES,
  CTA_STATS_IGNORE,
  CTA_STATS_INSERT,
  CTA_STATS_INSERT_FAILED,
  CTA_STATS_INVALID,
  CTA_STATS_NEW,
  CTA_STATS_SEARCH_RESTART,
  CTA_STATS_SEARCHED,
} from './constants.js';

/**
 * Names as the metrics use them (conntrack_stat_<name>_total): CT_GET_STATS_CPU's in attribute
 * order, then EXP_GET_STATS_CPU's under the column names of /proc/net/stat/nf_conntrack.
 */
export const CPU_STAT_NAMES = [
  'searched',
  'found',
  'new',
  'invalid',
  'ignore',
  'delete',
  'delete_list',
  'insert',
  'insert_failed',
  'drop',
  'early_drop',
  'error',
  'search_restart',
  'clash_resolve',
  'chain_toolong',
  'expect_new',
  'expect_create',
  'expect_delete',
] as const;

export type CpuStatName = (typeof CPU_STAT_NAMES)[number];

const BY_ATTR: Readonly<Record<number, CpuStatName>> = {
  [CTA_STATS_SEARCHED]: 'searched',
  [CTA_STATS_FOUND]: 'found',
  [CTA_STATS_NEW]: 'new',
  [CTA_STATS_INVALID]: 'invalid',
  [CTA_STATS_IGNORE]: 'ignore',
  [CTA_STATS_DELETE]: 'delete',
  [CTA_STATS_DELETE_LIST]: 'delete_list',
  [CTA_STATS_INSERT]: 'insert',
  [CTA_STATS_INSERT_FAILED]: 'insert_failed',
  [CTA_STATS_DROP]: 'drop',
  [CTA_STATS_EARLY_DROP]: 'early_drop',
  [CTA_STATS_ERROR]: 'error',
  [CTA_STATS_SEARCH_RESTART]: 'search_restart',
  [CTA_STATS_CLASH_RESOLVE]: 'clash_resolve',
  [CTA_STATS_CHAIN_TOOLONG]: 'chain_toolong',
};

const BY_EXP_ATTR: Readonly<Record<number, CpuStatName>> = {
  [CTA_STATS_EXP_NEW]: 'expect_new',
  [CTA_STATS_EXP_CREATE]: 'expect_create',
  [CTA_STATS_EXP_DELETE]: 'expect_delete',
};

export interface CpuStats {
  cpu: number;
  /** Only the counters this kernel sent. */
  values: Partial<Record<CpuStatName, number>>;
}

export interface GlobalStats {
  entries: number | undefined;
  maxEntries: number | undefined;
}

const cursor = new AttributeCursor('big-endian');

function attributes(buf: Buffer, start: number, end: number, what: string): AttributeCursor {
  return cursor.reset(buf, attributesStart(start, end), end, what);
}

function decodePerCpu(
  buf: Buffer,
  start: number,
  end: number,
  what: string,
  byAttr: Readonly<Record<number, CpuStatName>>,
): CpuStats {
  const c = attributes(buf, start, end, what);
  // nfgenmsg.res_id carries the CPU number, big-endian.
  const out: CpuStats = { cpu: buf.readUInt16BE(start + NLMSG_HDRLEN + 2), values: {} };
  while (c.next()) {
    const name = byAttr[c.type];
    if (name !== undefined) out.values[name] = c.u32(`attribute ${c.type} (${name})`);
  }
  return out;
}

export function decodeCpuStats(buf: Buffer, start: number, end: number): CpuStats {
  return decodePerCpu(buf, start, end, 'CT_GET_STATS_CPU', BY_ATTR);
}

export function decodeExpectationCpuStats(buf: Buffer, start: number, end: number): CpuStats {
  return decodePerCpu(buf, start, end, 'EXP_GET_STATS_CPU', BY_EXP_ATTR);
}

export function decodeGlobalStats(buf: Buffer, start: number, end: number): GlobalStats {
  const c = attributes(buf, start, end, 'CT_GET_STATS');
  const out: GlobalStats = { entries: undefined, maxEntries: undefined };
  while (c.next()) {
    if (c.type === CTA_STATS_GLOBAL_ENTRIES) out.entries = c.u32('CTA_STATS_GLOBAL_ENTRIES');
    else if (c.type === CTA_STATS_GLOBAL_MAX_ENTRIES) out.maxEntries = c.u32('CTA_STATS_GLOBAL_MAX_ENTRIES');
  }
  return out;
}
