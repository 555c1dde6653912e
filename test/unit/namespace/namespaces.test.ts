/**
 * AllNamespaces without a kernel: namespaces answer CT_GET_STATS through fake transports, ids come
 * from a fake source, and event datagrams (captured from the kernel) arrive with namespace ids.
 * Routing by id, activation by a probe or by a first event, return to idle, and removal.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { IPCTNL_MSG_CT_GET_STATS } from '../../../src/ctnetlink/constants.js';
import type { NamespaceRef } from '../../../src/namespace/discovery.js';
import { AllNamespaces } from '../../../src/namespace/namespaces.js';
import { NFNL_SUBSYS_CTNETLINK } from '../../../src/netlink/nfnetlink.js';
import { encodeMessage, NLMSG_DONE, NLMSG_HDRLEN } from '../../../src/netlink/nlmsg.js';
import { RequestSocket } from '../../../src/netlink/request.js';
import { ack, batchOf, FakeTransport } from '../../support/fake-transport.js';
import { bytes, eventFixtures } from '../helpers/fixtures.js';

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

const ref = (label: string, own = false): NamespaceRef => ({
  inode: label,
  name: label,
  path: `/run/netns/${label}`,
  own,
  label,
});

function setup(ids: Record<string, number>, refuse = new Set<string>()) {
  const kernels = new Map<string, { entries: number }>();
  const transports: FakeTransport[] = [];
  const all = new AllNamespaces({
    observer: { transition() {}, stateLeft() {}, flowEnded() {} },
    log: pino({ level: 'silent' }),
    resyncIntervalMs: 0,
    silentSchedule: { minSeconds: 0, cpuBudget: 0.02 },
    nsids: {
      ensure: async (path) => ids[path.split('/').pop()!] ?? -1,
      get: async () => -1,
    },
    openSocket: (timeout, netns) => {
      const label = netns === undefined ? 'home' : netns.split('/').pop()!;
      if (refuse.has(label)) throw new Error('EPERM');
      if (!kernels.has(label)) kernels.set(label, { entries: 0 });
      const t = fakeCt(kernels.get(label)!);
      transports.push(t);
      return new RequestSocket(t, timeout);
    },
  });
  return { all, kernels, transports };
}

const NEW = bytes(eventFixtures.find((f) => f.name.startsWith('new: tcp4'))!);
const activeLabels = (all: AllNamespaces) => all.active.map((p) => p.ref.label).sort();

describe('AllNamespaces', () => {
  it('activates its own namespace and those with entries; the others stay idle', async () => {
    const { all, kernels } = setup({ busy: 1, empty: 2 });
    kernels.set('busy', { entries: 3 });
    await all.apply({ added: [ref('home', true), ref('busy'), ref('empty')], removed: [], skipped: 0 });
    assert.deepEqual(activeLabels(all), ['busy', 'home']);
    assert.equal(all.followed.length, 3);
    all.close();
  });

  it('retries a namespace it could not enter at the next scan, until it goes away', async () => {
    const refuse = new Set(['locked', 'gone']);
    const { all } = setup({}, refuse);
    await all.apply({ added: [ref('home', true), ref('locked'), ref('gone')], removed: [], skipped: 0 });
    assert.equal(all.followed.length, 1);
    refuse.clear();
    await all.apply({ added: [], removed: [ref('gone')], skipped: 0 });
    assert.deepEqual(all.followed.map((p) => p.ref.label).sort(), ['home', 'locked']);
    all.close();
  });

  it('routes each event datagram by its namespace id; a first event wakes an idle namespace', async () => {
    const { all } = setup({ a: 4, b: 7 });
    await all.apply({ added: [ref('home', true), ref('a'), ref('b')], removed: [], skipped: 0 });
    assert.deepEqual(activeLabels(all), ['home']);
    all.onBatch(batchOf([NEW, NEW, NEW, NEW], { nsids: [7, -1, 99, 7] }));
    const b = all.followed.find((p) => p.ref.label === 'b')!;
    const home = all.ownPipeline!;
    assert.equal(b.collector?.counters.eventsNew, 2, 'the waking event is applied too');
    assert.equal(home.collector?.counters.eventsNew, 1, "no id: the exporter's own namespace");
    assert.equal(all.eventsUnmatched, 1, 'id 99 is no namespace we follow');
    assert.deepEqual(activeLabels(all), ['b', 'home']);
    all.close();
  });

  it('an active namespace that is empty and silent for a scan goes back to idle; a gone one is closed', async () => {
    const { all, kernels, transports } = setup({ a: 4 });
    kernels.set('a', { entries: 1 });
    await all.apply({ added: [ref('home', true), ref('a')], removed: [], skipped: 0 });
    assert.deepEqual(activeLabels(all), ['a', 'home']);
    const a = all.followed.find((p) => p.ref.label === 'a')!;
    await a.seeded;
    kernels.get('a')!.entries = 0;
    // An event since the last scan keeps it active once more.
    all.onBatch(batchOf([Buffer.alloc(NLMSG_HDRLEN)], { nsids: [4] }));
    await all.apply({ added: [], removed: [], skipped: 0 });
    assert.deepEqual(activeLabels(all), ['a', 'home']);
    await all.apply({ added: [], removed: [], skipped: 0 });
    assert.deepEqual(activeLabels(all), ['home'], 'empty and silent: idle again');
    await all.apply({ added: [], removed: [ref('a')], skipped: 2 });
    assert.equal(all.followed.length, 1);
    assert.equal(all.skipped, 2);
    all.onBatch(batchOf([NEW], { nsids: [4] }));
    assert.equal(all.eventsUnmatched, 1, 'its id no longer routes anywhere');
    // What stays open is the own namespace's statistics and dump sockets; a's are closed.
    assert.equal(transports.length, 4);
    assert.equal(transports.filter((t) => !t.closed).length, 2);
    all.close();
    assert.equal(transports.filter((t) => !t.closed).length, 0);
  });
});
