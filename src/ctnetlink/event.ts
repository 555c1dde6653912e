/**
 * Conntrack events from the NEW/UPDATE/DESTROY multicast groups. The kernel sends NEW and UPDATE
 * both as IPCTNL_MSG_CT_NEW and tells them apart by NLM_F_CREATE|NLM_F_EXCL on NEW
 * (ctnetlink_conntrack_event); DESTROY comes as IPCTNL_MSG_CT_DELETE.
 */
import { NFNL_SUBSYS_CTNETLINK, operationOf, subsystemOf } from '../netlink/nfnetlink.js';
import { NLM_F_CREATE, NLM_F_EXCL } from '../netlink/nlmsg.js';
import { IPCTNL_MSG_CT_DELETE, IPCTNL_MSG_CT_NEW } from './constants.js';

export type EventType = 'new' | 'update' | 'destroy';

/** Classifies a netlink message type and flags; undefined for a message that is not a CT event. */
export function eventType(type: number, flags: number): EventType | undefined {
  if (subsystemOf(type) !== NFNL_SUBSYS_CTNETLINK) return undefined;
  switch (operationOf(type)) {
    case IPCTNL_MSG_CT_NEW:
      return (flags & (NLM_F_CREATE | NLM_F_EXCL)) === (NLM_F_CREATE | NLM_F_EXCL) ? 'new' : 'update';
    case IPCTNL_MSG_CT_DELETE:
      return 'destroy';
    default:
      return undefined;
  }
}
