/**
 * Only the kernel writes the table (issue 17): any process with CAP_NET_ADMIN over a namespace
 * may send to the conntrack multicast groups, and under --netns.all the exporter's socket hears
 * every followed namespace. Here a real userspace netlink socket (python3's AF_NETLINK) sends a
 * NEW event captured from the kernel, 100 times, to the conntrack NEW group: in the exporter's own
 * namespace, and from another namespace under --netns.all. The flows stay what `conntrack -L`
 * lists, no event is counted, and the forged datagrams are counted as not from the kernel.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { bytes, eventFixtures } from '../unit/helpers/fixtures.js';
import * as tool from './harness/conntrack-tool.js';
import { ExporterProcess } from './harness/exporter.js';
import { Netns, sleep, waitFor } from './harness/netns.js';
import type { Scrape } from './harness/promtext.js';

const FORGED = 100;
const NEW_EVENT = bytes(eventFixtures.find((f) => f.name.startsWith('new: tcp4'))!).toString('hex');
const REJECTED = 'conntrack_collector_netlink_not_from_kernel_total';

/** Sends the captured NEW event `FORGED` times to NFNLGRP_CONNTRACK_NEW (group 1) from `ns`. */
function forge(ns: Netns): void {
  const script = [
    'import socket',
    's = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)', // NETLINK_NETFILTER
    's.bind((0, 0))',
    `m = bytes.fromhex("${NEW_EVENT}")`,
    `for _ in range(${FORGED}): s.sendto(m, (0, 1))`, // pid 0, groups bit 0: NFNLGRP_CONNTRACK_NEW
  ].join('\n');
  ns.run('python3', ['-c', script]);
}

const flowsOf = (s: Scrape, netns?: string) => s.sum('conntrack_flows', netns === undefined ? {} : { netns });
const newsOf = (s: Scrape, netns?: string) =>
  s.value('conntrack_events_total', netns === undefined ? { event: 'new' } : { netns, event: 'new' });

async function counted(exp: ExporterProcess, ns: Netns, netns?: string): Promise<Scrape> {
  return waitFor('the table to equal conntrack -C', () => {
    const s = exp.scrape();
    return flowsOf(s, netns) === tool.count(ns) && tool.count(ns) > 0 ? s : undefined;
  });
}

describe('only the kernel writes the table', () => {
  const made: Netns[] = [];
  const exps: ExporterProcess[] = [];
  after(async () => {
    for (const e of exps) await e.stop();
    for (const ns of made) ns.delete();
  });

  it('forged events in the exporter own namespace change nothing but the rejection counter', async () => {
    const ns = Netns.create('trust');
    made.push(ns);
    const exp = await ExporterProcess.start(ns, []);
    exps.push(exp);
    ns.traffic('syn=127.0.0.1', 'udp-noreply=127.0.0.1');
    const before = await counted(exp, ns);
    forge(ns);
    const after = await waitFor('the forged datagrams to be counted', () => {
      const s = exp.scrape();
      return s.sum(REJECTED) >= FORGED ? s : undefined;
    });
    await sleep(200);
    const last = exp.scrape();
    assert.equal(last.value(REJECTED), FORGED);
    assert.equal(flowsOf(last), tool.count(ns), 'no phantom flow');
    assert.equal(newsOf(last), newsOf(before), 'no event counted');
    assert.equal(after.value('conntrack_collector_decode_errors_total'), 0);
  });

  it('--netns.all: forged events from another namespace change nothing there', async () => {
    const home = Netns.create('trust-home');
    const other = Netns.create('trust-other');
    made.push(home, other);
    const exp = await ExporterProcess.start(home, ['--netns.all', '--netns.scan-interval=1s']);
    exps.push(exp);
    other.traffic('syn=127.0.0.1', 'udp-noreply=127.0.0.1');
    const before = await counted(exp, other, other.name);
    const rejectedBefore = before.value(REJECTED);
    forge(other);
    await waitFor('the forged datagrams to be counted', () =>
      exp.scrape().sum(REJECTED) >= rejectedBefore + FORGED ? true : undefined,
    );
    await sleep(200);
    const last = exp.scrape();
    assert.equal(flowsOf(last, other.name), tool.count(other), 'no phantom flow in the other namespace');
    assert.equal(newsOf(last, other.name), newsOf(before, other.name), 'no event counted there');
  });
});
