/**
 * Namespaces without a kernel: namespaces answer CT_GET_STATS through fake transports, ids come
 * from a fake source, and event datagrams (captured from the kernel) arrive with namespace ids.
 * Routing by id, activation by a probe or by a first event, return to idle, and removal.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NamespaceRef } from '../../../src/namespace/discovery.js';
import type { Namespaces } from '../../../src/namespace/namespaces.js';
import { NLMSG_HDRLEN } from '../../../src/netlink/nlmsg.js';
import { batchOf } from '../../support/fake-transport.js';
import { fakeFd, fakeNamespaces } from '../helpers/fake-ct.js';
import { bytes, eventFixtures } from '../helpers/fixtures.js';

const ref = (label: string, own = false): NamespaceRef => ({
  inode: label,
  name: label,
  foundAt: `/run/netns/${label}`,
  own,
  label,
  fd: fakeFd(label),
});

function setup(ids: Record<string, number>, refuse = new Set<string>()) {
  return fakeNamespaces({ ids, refuse, labelled: true });
}

const NEW = bytes(eventFixtures.find((f) => f.name.startsWith('new: tcp4'))!);
const activeLabels = (all: Namespaces) => all.active.map((p) => p.ref.label).sort();

describe('Namespaces', () => {
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
    const home = all.own()!;
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
