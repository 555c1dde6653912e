/** Request messages (payload after the netlink header) for dumps and statistics. */
import {
  AF_UNSPEC,
  encodeNfgenmsg,
  messageType,
  NFNL_SUBSYS_CTNETLINK,
  NFNL_SUBSYS_CTNETLINK_EXP,
} from '../netlink/nfnetlink.js';
import { NLM_F_DUMP } from '../netlink/nlmsg.js';
import {
  IPCTNL_MSG_CT_GET,
  IPCTNL_MSG_CT_GET_STATS,
  IPCTNL_MSG_CT_GET_STATS_CPU,
  IPCTNL_MSG_EXP_GET,
  IPCTNL_MSG_EXP_GET_STATS_CPU,
} from './constants.js';

export interface Request {
  type: number;
  flags: number;
  payload: Buffer;
}

/** The whole table; AF_UNSPEC asks for IPv4 and IPv6 alike. */
export function dumpTableRequest(family = AF_UNSPEC): Request {
  return {
    type: messageType(NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET),
    flags: NLM_F_DUMP,
    payload: encodeNfgenmsg(family),
  };
}

/** One reply message per possible CPU. */
export function cpuStatsRequest(): Request {
  return {
    type: messageType(NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET_STATS_CPU),
    flags: NLM_F_DUMP,
    payload: encodeNfgenmsg(AF_UNSPEC),
  };
}

/** Entries and nf_conntrack_max in one message (not a dump). */
export function globalStatsRequest(): Request {
  return {
    type: messageType(NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET_STATS),
    flags: 0,
    payload: encodeNfgenmsg(AF_UNSPEC),
  };
}

/** Every expectation of the socket's namespace, one message each (IPv4 and IPv6). */
export function dumpExpectationsRequest(): Request {
  return {
    type: messageType(NFNL_SUBSYS_CTNETLINK_EXP, IPCTNL_MSG_EXP_GET),
    flags: NLM_F_DUMP,
    payload: encodeNfgenmsg(AF_UNSPEC),
  };
}

/** The expectation counters, one reply message per possible CPU. */
export function expectationCpuStatsRequest(): Request {
  return {
    type: messageType(NFNL_SUBSYS_CTNETLINK_EXP, IPCTNL_MSG_EXP_GET_STATS_CPU),
    flags: NLM_F_DUMP,
    payload: encodeNfgenmsg(AF_UNSPEC),
  };
}
