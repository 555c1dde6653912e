/**
 * Namespaces without a kernel: each namespace answers CT_GET_STATS through the fake transport with
 * its entry count (dumps are empty, CPU statistics absent), ids come from a fake source, and
 * procfs has nothing (every sysctl absent).
 */
import pino from 'pino';
import { IPCTNL_MSG_CT_GET_STATS } from '../../../src/ctnetlink/constants.js';
import { OwnProcFiles } from '../../../src/kernel/proc.js';
import { Namespaces, type Naming } from '../../../src/namespace/namespaces.js';
import { NFNL_SUBSYS_CTNETLINK } from '../../../src/netlink/nfnetlink.js';
import { encodeMessage, NLMSG_DONE } from '../../../src/netlink/nlmsg.js';
import { RequestSocket } from '../../../src/netlink/request.js';
import type { Timers } from '../../../src/sync/timers.js';
import type { TableObserver } from '../../../src/table/table.js';
import { ack, FakeTransport } from '../../support/fake-transport.js';

/** One namespace's kernel: its entry count; dumps are empty, CPU statistics absent. */
function fakeCt(kernel: { entries: number }): FakeTransport {
  return new FakeTransport((req) => {
    if (req.type !== ((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET_STATS)) {
      return [[encodeMessage(NLMSG_DONE, 0, req.seq, Buffer.alloc(4))]];
    }
    const p = Buffer.alloc(4 + 8);
    p.writeUInt16LE(8, 4); // nla_len
    p.writeUInt16LE(1, 6); // CTA_STATS_GLOBAL_ENTRIES
    p.writeUInt32BE(kernel.entries, 8);
    return [[encodeMessage(req.type, 0, req.seq, p), ack(req.seq)]];
  });
}

/** Fake namespace descriptors: a label's fd is its index here (nothing is opened). */
const fdLabels: string[] = [];
export function fakeFd(label: string): number {
  const i = fdLabels.indexOf(label);
  return i >= 0 ? i : fdLabels.push(label) - 1;
}

export interface FakeNamespacesOptions {
  /** Namespace ids by label. */
  ids?: Record<string, number>;
  /** Labels whose sockets cannot be opened. */
  refuse?: Set<string>;
  labelled: boolean;
  observer?: TableObserver;
  topK?: number;
  /** Timers of the sockets' reopening (real ones otherwise). */
  timers?: Timers;
  /** Identities and addresses at each rescan (--netns.all). */
  naming?: Naming;
}

export function fakeNamespaces(o: FakeNamespacesOptions) {
  const kernels = new Map<string, { entries: number }>();
  const transports: FakeTransport[] = [];
  const ids = o.ids ?? {};
  const all = new Namespaces({
    observer: o.observer ?? { transition() {}, stateLeft() {}, flowEnded() {} },
    log: pino({ level: 'silent' }),
    labelled: o.labelled,
    resyncIntervalMs: 0,
    silentSchedule: { minSeconds: 0, cpuBudget: 0.02 },
    attribution: {
      topK: o.topK ?? 0,
      topSourcePrefixV4: 32,
      topSourcePrefixV6: 64,
      natPortRange: { first: 1024, last: 65535 },
    },
    openProc: () => new OwnProcFiles('/nonexistent-proc'),
    naming: o.naming,
    nsids: {
      ensure: async (fd) => ids[fdLabels[fd]!] ?? -1,
      get: async () => -1,
    },
    reopen: o.timers ? { timers: o.timers } : undefined,
    openSocket: (timeout, netns, _slots, _chunks, onBroken) => {
      // Sockets are opened inside the namespace through its descriptor.
      const label = netns === undefined ? 'home' : fdLabels[netns]!;
      if (o.refuse?.has(label)) throw new Error('EPERM');
      if (!kernels.has(label)) kernels.set(label, { entries: 0 });
      const t = fakeCt(kernels.get(label)!);
      transports.push(t);
      return new RequestSocket(t, timeout, onBroken);
    },
  });
  return { all, kernels, transports };
}
