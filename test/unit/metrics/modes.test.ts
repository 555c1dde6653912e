/**
 * One set of metric groups for both modes, over real namespace units (fake kernels): the default
 * mode's single namespace has no label; --netns.all labels every per-namespace series with
 * `netns`, shows only active namespaces, keeps node-wide values unlabelled, and a namespace that
 * goes idle and active again leaves nothing behind.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FlowMetrics } from '../../../src/metrics/flows.js';
import { ExporterMetrics } from '../../../src/metrics/metrics.js';
import type { NamespaceRef } from '../../../src/namespace/discovery.js';
import type { Namespaces, Naming } from '../../../src/namespace/namespaces.js';
import { batchOf } from '../../support/fake-transport.js';
import { fakeFd, fakeNamespaces } from '../helpers/fake-ct.js';
import { bytes, eventFixtures } from '../helpers/fixtures.js';

const ref = (label: string, own = false): NamespaceRef => ({
  inode: `i-${label}`,
  name: label,
  foundAt: `/run/netns/${label}`,
  own,
  label,
  fd: fakeFd(label),
});

const NEW = bytes(eventFixtures.find((f) => f.name.startsWith('new: tcp4'))!);
const UPDATES = eventFixtures.filter((f) => f.name.startsWith('update: tcp4')).map(bytes);

function build(labelled: boolean, naming?: Naming) {
  const flows = new FlowMetrics(false);
  const ns = fakeNamespaces({
    labelled,
    ids: { a: 4, idle: 5 },
    observer: flows,
    topK: 2,
    ...(naming ? { naming } : {}),
  });
  const metrics = new ExporterMetrics({
    version: 't',
    scope: ns.all,
    flows,
    processMetrics: false,
    attribution: {
      k: 2,
      sourcePrefixV4: 32,
      sourcePrefixV6: 64,
      ...(labelled
        ? {
            ownerOf: (address: string) => {
              const u = ns.all.ownerOf(address);
              return u && { netns: u.ref.label, ...u.identity };
            },
          }
        : {}),
    },
    nat: { k: 2, portRange: { first: 1024, last: 65535 } },
    ...(labelled
      ? {
          discovery: {
            followed: () => ns.all.followed.length,
            skipped: () => ns.all.skipped,
            eventsUnmatched: () => ns.all.eventsUnmatched,
            identities: () =>
              ns.all.active.map((u) => ({
                netns: u.ref.label,
                inode: u.ref.inode,
                own: u.ref.own,
                ...u.identity,
              })),
          },
        }
      : {}),
  });
  return { ...ns, metrics };
}

const lines = (text: string) => text.split('\n');
const sampleNames = (text: string) =>
  new Set(
    lines(text)
      .filter((l) => l !== '' && !l.startsWith('#'))
      .map((l) => l.slice(0, l.search(/[{ ]/))),
  );

async function settle(all: Namespaces): Promise<void> {
  await Promise.all(all.active.map((u) => u.seeded));
}

describe('metric groups in both modes', () => {
  it('default mode: one unlabelled namespace; --netns.all: the same families, each series with netns', async () => {
    const plain = build(false);
    plain.all.add(ref('home', true)).activate();
    await settle(plain.all);
    plain.kernels.get('home')!.entries = 3;
    plain.all.onBatch(batchOf([NEW]));
    const one = await plain.metrics.render();
    assert.ok(lines(one).includes('conntrack_entries 3'));
    assert.ok(lines(one).includes('conntrack_events_total{event="new"} 1'));
    assert.ok(!one.includes('netns='), 'no netns label in default mode');

    const all = build(true);
    await all.all.apply({ added: [ref('home', true), ref('a'), ref('idle')], removed: [], skipped: 0 });
    all.kernels.get('home')!.entries = 3;
    all.all.onBatch(batchOf([NEW, NEW], { nsids: [-1, 4] }));
    await settle(all.all);
    const many = await all.metrics.render();
    assert.ok(lines(many).includes('conntrack_entries{netns="home"} 3'));
    assert.ok(lines(many).includes('conntrack_entries{netns="a"} 0'));
    assert.ok(lines(many).includes('conntrack_events_total{netns="a",event="new"} 1'));
    assert.ok(!many.includes('netns="idle"'), 'an idle namespace has no series');
    assert.ok(lines(many).includes('conntrack_netns_active 2'));
    assert.ok(lines(many).includes('conntrack_netns_followed 3'));
    assert.ok(lines(many).includes('conntrack_netns_info{netns="a",inode="i-a",own="false"} 1'));
    // Attribution ranks both namespaces together: K (2) series and the remainder.
    const top = lines(many).filter((l) => l.startsWith('conntrack_top_source_flows{'));
    assert.equal(top.length, 3, top.join('\n'));
    assert.ok(top.some((l) => l.includes('netns="a"')));
    // NAT: every namespace its own counts and highest utilisation (the fixtures are untranslated).
    assert.ok(
      lines(many).includes('conntrack_nat_flows{netns="a",family="ipv4",protocol="tcp",nat="none"} 1'),
    );
    assert.ok(
      lines(many).includes('conntrack_nat_flows{netns="a",family="ipv4",protocol="tcp",nat="snat"} 0'),
    );
    assert.ok(lines(many).includes('conntrack_snat_port_utilisation_max_ratio{netns="home"} 0'));
    assert.ok(lines(many).includes('conntrack_snat_port_utilisation_max_ratio{netns="a"} 0'));
    // Every family of the default mode is there under --netns.all (plus discovery's own).
    for (const name of sampleNames(one)) assert.ok(sampleNames(many).has(name), name);
    // Per-namespace families carry the label on every sample; node-wide ones never.
    for (const l of lines(many)) {
      if (
        /^conntrack_(entries|flows|nat_flows|snat_port_utilisation_max_ratio|events_total|collector_(resyncs|decode|overruns|table_drift))\b/.test(
          l,
        )
      ) {
        assert.match(l, /netns="/, l);
      }
      if (
        /^conntrack_(entries_limit|buckets|collector_events_lost_total|collector_netlink_receive)/.test(l)
      ) {
        assert.doesNotMatch(l, /netns="/, l);
      }
    }
    plain.all.close();
    all.all.close();
  });

  it('a namespace cycling idle/active 100 times leaves the output and the entries unchanged in size', async () => {
    const { all, kernels, metrics } = build(true);
    await all.apply({ added: [ref('home', true), ref('a')], removed: [], skipped: 0 });
    const cycle = async () => {
      kernels.get('a')!.entries = 1;
      await all.apply({ added: [], removed: [], skipped: 0 });
      all.onBatch(batchOf([NEW, ...UPDATES], { nsids: [4, ...UPDATES.map(() => 4)] }));
      await settle(all);
      const text = await metrics.render();
      // The kernel's table empties; a resync finds it so.
      kernels.get('a')!.entries = 0;
      await all.active.find((u) => u.ref.label === 'a')?.collector?.resync('periodic');
      await all.apply({ added: [], removed: [], skipped: 0 });
      await all.apply({ added: [], removed: [], skipped: 0 });
      assert.equal(all.active.length, 1, 'a is idle again');
      return text;
    };
    const first = await cycle();
    const idleFirst = await metrics.render();
    for (let i = 0; i < 99; i++) await cycle();
    const last = await cycle();
    const idleLast = await metrics.render();
    assert.equal(lines(last).length, lines(first).length);
    assert.equal(lines(idleLast).length, lines(idleFirst).length);
    assert.ok(!idleLast.includes('netns="a"'), 'idle: no series of a');
    all.close();
  });

  it('--netns.all: the pod on conntrack_netns_info, and on conntrack_address_info for a top-K address only', async () => {
    let named = true;
    const pids: Record<string, number[]> = {};
    const naming: Naming = {
      resolve: async (p) => {
        for (const [inode, list] of p) pids[inode] = [...list];
        return new Map(named ? [['i-a', { uid: 'u-1', pod: 'web-1', namespace: 'shop' }]] : []);
      },
      // The fixtures' flows come from 127.0.0.1: a pod's address here. 10.9.9.9 is in no top K;
      // 10.0.0.1 is held by two namespaces and names neither.
      addresses: async (fd) =>
        fd === undefined ? ['10.0.0.1'] : fd === fakeFd('a') ? ['10.0.0.1', '10.9.9.9', '127.0.0.1'] : [],
    };
    const { all, metrics } = build(true, naming);
    await all.apply({
      added: [ref('home', true), ref('a')],
      removed: [],
      skipped: 0,
      pids: new Map([['i-a', [42]]]),
    });
    all.onBatch(batchOf([NEW], { nsids: [4] }));
    await settle(all);
    assert.deepEqual(pids, { 'i-a': [42] }, "only other namespaces' processes are looked at");
    const text = await metrics.render();
    assert.ok(
      lines(text).includes(
        'conntrack_netns_info{netns="a",inode="i-a",own="false",pod="web-1",namespace="shop",uid="u-1"} 1',
      ),
      text,
    );
    assert.ok(lines(text).includes('conntrack_netns_info{netns="home",inode="i-home",own="true"} 1'));
    const info = lines(text).filter((l) => l.startsWith('conntrack_address_info{'));
    assert.deepEqual(info, [
      'conntrack_address_info{address="127.0.0.1",netns="a",pod="web-1",namespace="shop",uid="u-1"} 1',
    ]);
    // The pod goes: at the next rescan the namespace is nobody's, its address only names it.
    named = false;
    await all.apply({ added: [], removed: [], skipped: 0, pids: new Map() });
    const after = await metrics.render();
    assert.ok(lines(after).includes('conntrack_netns_info{netns="a",inode="i-a",own="false"} 1'), after);
    assert.ok(lines(after).includes('conntrack_address_info{address="127.0.0.1",netns="a"} 1'));
    all.close();
  });
});
