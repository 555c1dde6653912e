/**
 * The protocol layer against the real kernel (issue: foundation). Each suite owns a namespace:
 * it makes known traffic there and compares what our sockets decode with the kernel's own
 * tooling (conntrack -L / -S / -C).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { TCP_STATES } from '../../src/ctnetlink/states.js';
import { IPS_ASSURED, IPS_CONFIRMED, IPS_SEEN_REPLY } from '../../src/ctnetlink/status.js';
import { NLM_F_CREATE, NLM_F_EXCL } from '../../src/netlink/nlmsg.js';
import * as tool from './harness/conntrack-tool.js';
import { type MadeFlow, Netns, sleep, waitFor } from './harness/netns.js';
import { type EventLine, EventProbe } from './harness/probe.js';
import type { FlowSummary } from './harness/summary.js';

function dump(ns: Netns): FlowSummary[] {
  const lines = ns
    .node('test/integration/harness/ctprobe.js', ['dump'])
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as FlowSummary & { done?: number; error?: string });
  const done = lines.pop();
  assert.equal(done?.done, lines.length, 'dump ends with its flow count');
  assert.deepEqual(
    lines.filter((l) => l.error !== undefined),
    [],
    'no decode errors',
  );
  return lines;
}

const states = (evs: EventLine[]) => evs.map((e) => e.state);

describe('event socket on the real kernel', () => {
  let ns: Netns;
  let probe: EventProbe;
  let made: MadeFlow[];

  before(async () => {
    ns = Netns.create('events');
    probe = await EventProbe.start(ns);
    made = ns.traffic(
      'tcp=127.0.0.1',
      'tcp=::1',
      'syn=127.0.0.1',
      'udp-reply=127.0.0.1',
      'udp-noreply=127.0.0.1',
      'udp-reply=::1',
    );
    ns.run('ping', ['-c', '1', '-W', '1', '127.0.0.1']);
    ns.run('ping', ['-6', '-c', '1', '-W', '1', '::1']);
    // Every flow made so far has announced itself once the last one (ICMPv6) has.
    await waitFor('the ICMPv6 NEW event', () => probe.events.find((e) => e.protocol === 'icmpv6'));
    await sleep(200);
  });

  after(async () => {
    await probe?.stop();
    ns?.delete();
  });

  const find = (action: string, addr: string) => {
    const m = made.find((x) => x.action === action && x.addr === addr);
    assert.ok(m, `traffic made ${action}=${addr}`);
    return m;
  };

  it('a complete TCP connection (IPv4 and IPv6) walks the kernel states in order', () => {
    const order = TCP_STATES as readonly string[];
    for (const addr of ['127.0.0.1', '::1']) {
      const m = find('tcp', addr);
      const evs = probe.flow('tcp', m.sport);
      assert.ok(evs.length >= 5, `at least 5 events for ${addr}, got ${JSON.stringify(states(evs))}`);
      assert.deepEqual(
        evs.map((e) => e.event),
        ['new', ...evs.slice(1).map(() => 'update')],
      );
      const seen = states(evs);
      assert.deepEqual(seen.slice(0, 3), ['SYN_SENT', 'SYN_RECV', 'ESTABLISHED'], `${addr}: ${seen}`);
      assert.equal(seen.at(-1), 'TIME_WAIT', `${addr}: ${seen}`);
      const idx = seen.map((s) => order.indexOf(s ?? ''));
      assert.ok(
        idx.every((v, i) => i === 0 || v > idx[i - 1]!),
        `states only move forward: ${seen}`,
      );
      for (const e of evs) {
        assert.equal(e.family, addr === '::1' ? 'ipv6' : 'ipv4');
        assert.deepEqual([e.src, e.dst, e.sport, e.dport], [addr, addr, m.sport, m.dport]);
        assert.deepEqual([e.replySrc, e.replySport], [addr, m.dport], 'reply tuple mirrors the original');
        assert.equal(e.id, evs[0]!.id, 'one conntrack id for the whole connection');
      }
      const last = evs.at(-1)!;
      assert.equal(last.status! & (IPS_SEEN_REPLY | IPS_ASSURED), IPS_SEEN_REPLY | IPS_ASSURED);
    }
  });

  it('NEW events carry NLM_F_CREATE|NLM_F_EXCL; UPDATE events do not', () => {
    const news = probe.events.filter((e) => e.event === 'new');
    const updates = probe.events.filter((e) => e.event === 'update');
    assert.ok(news.length >= 8 && updates.length >= 8);
    for (const e of news) assert.equal(e.flags & (NLM_F_CREATE | NLM_F_EXCL), NLM_F_CREATE | NLM_F_EXCL);
    for (const e of updates) assert.equal(e.flags & (NLM_F_CREATE | NLM_F_EXCL), 0);
  });

  it('a SYN without answer stays SYN_SENT and unreplied', () => {
    const m = find('syn', '127.0.0.1');
    const evs = probe.flow('tcp', m.sport);
    assert.deepEqual(states(evs), ['SYN_SENT']);
    assert.equal(evs[0]!.dport, 9);
    assert.equal(evs[0]!.status! & IPS_SEEN_REPLY, 0);
  });

  it('UDP: answered flows become REPLIED, unanswered stay UNREPLIED', () => {
    for (const addr of ['127.0.0.1', '::1']) {
      const evs = probe.flow('udp', find('udp-reply', addr).sport);
      assert.deepEqual(
        evs.map((e) => `${e.event}:${e.state}`),
        ['new:UNREPLIED', 'update:REPLIED'],
      );
      assert.equal(evs[1]!.status! & IPS_SEEN_REPLY, IPS_SEEN_REPLY);
    }
    const quiet = probe.flow('udp', find('udp-noreply', '127.0.0.1').sport);
    assert.deepEqual(
      quiet.map((e) => `${e.event}:${e.state}`),
      ['new:UNREPLIED'],
    );
    assert.equal(quiet[0]!.status! & IPS_CONFIRMED, IPS_CONFIRMED);
  });

  it('ICMP and ICMPv6 echo requests are tracked with their type and id', () => {
    const v4 = probe.events.filter((e) => e.protocol === 'icmp');
    const v6 = probe.events.filter((e) => e.protocol === 'icmpv6');
    assert.equal(v4[0]?.event, 'new');
    assert.equal(v4[0]?.icmpType, 8); // echo request
    assert.equal(v4[0]?.family, 'ipv4');
    assert.equal(v6[0]?.icmpType, 128); // ICMPv6 echo request
    assert.equal(v6[0]?.family, 'ipv6');
    assert.equal(v6[0]?.src, '::1');
    // the reply arrived: the entry is updated to REPLIED
    assert.ok(v4.some((e) => e.state === 'REPLIED'));
    assert.ok(typeof v4[0]?.icmpId === 'number');
  });

  it('the dump returns exactly the flows conntrack -L prints (IPv4 and IPv6)', () => {
    const key = (f: { id: number | undefined; family: string; protocol: string; src: string; dst: string }) =>
      `${f.id} ${f.family} ${f.protocol} ${f.src} ${f.dst}`;
    const ours = dump(ns);
    const theirs = tool.listFlows(ns);
    assert.ok(theirs.length >= 8, `conntrack -L shows the flows made (${theirs.length})`);
    assert.deepEqual(ours.map(key).sort(), theirs.map(key).sort());
    const byId = new Map(theirs.map((t) => [t.id, t]));
    for (const f of ours) {
      const t = byId.get(f.id!)!;
      assert.equal(f.state, t.state, `state of ${key(f)}`);
      assert.deepEqual([f.sport, f.dport], [t.sport, t.dport], `ports of ${key(f)}`);
    }
    assert.ok(ours.some((f) => f.family === 'ipv6') && ours.some((f) => f.family === 'ipv4'));
    assert.ok(
      ours.every((f) => f.use !== undefined && f.mark === 0),
      'dumps carry CTA_USE and CTA_MARK',
    );
  });

  it('conntrack -F destroys every flow, and each destroy is an event with its id', async () => {
    const ids = new Set(dump(ns).map((f) => f.id));
    ns.run('conntrack', ['-F']);
    await waitFor('a DESTROY for every flow', () => {
      const gone = new Set(probe.events.filter((e) => e.event === 'destroy').map((e) => e.id));
      return [...ids].every((id) => gone.has(id)) ? true : undefined;
    });
    assert.equal(tool.count(ns), 0);
    assert.deepEqual(dump(ns), []);
    assert.deepEqual(probe.errors, []);
  });
});

describe('statistics on the real kernel', () => {
  let ns: Netns;
  before(() => {
    ns = Netns.create('stats');
  });
  after(() => ns?.delete());

  it('per-CPU counters equal conntrack -S, global entries equal conntrack -C', async () => {
    // Make `invalid` move: a connection whose entry was flushed, closed under tcp_loose=0, sends a
    // FIN the tracker cannot pick up mid-stream.
    const holder = await ns.holdTraffic('hold=127.0.0.1', 'udp-noreply=127.0.0.1');
    ns.run('conntrack', ['-D', '-p', 'tcp']);
    ns.run('sysctl', ['-qw', 'net.netfilter.nf_conntrack_tcp_loose=0']);
    const exited = new Promise((r) => holder.once('exit', r));
    holder.kill('SIGTERM');
    await exited;
    await sleep(100);

    const probe = JSON.parse(ns.node('test/integration/harness/ctprobe.js', ['stats'])) as {
      cpu: { cpu: number; values: Record<string, number> }[];
      global: { entries: number; maxEntries: number };
    };
    const theirs = tool.cpuStats(ns);
    assert.equal(probe.cpu.length, theirs.size, 'one reply per possible CPU');
    for (const c of probe.cpu) {
      const t = theirs.get(c.cpu);
      assert.ok(t, `conntrack -S has cpu=${c.cpu}`);
      const tk = Object.fromEntries([...t].map(([k, v]) => [k === 'chaintoolong' ? 'chain_toolong' : k, v]));
      assert.deepEqual(c.values, tk, `cpu ${c.cpu}`);
    }
    const invalid = probe.cpu.reduce((n, c) => n + (c.values['invalid'] ?? 0), 0);
    assert.ok(invalid > 0, 'the stray FIN was counted invalid');
    assert.equal(probe.global.entries, tool.count(ns));
    assert.ok(probe.global.entries >= 1, 'the UDP flow is still there');
    const max = Number(readFileSync('/proc/sys/net/netfilter/nf_conntrack_max', 'utf8'));
    assert.equal(probe.global.maxEntries, max);
  });
});

describe('event socket overrun', () => {
  let ns: Netns;
  before(() => {
    ns = Netns.create('overrun');
  });
  after(() => ns?.delete());

  it('a tiny receive buffer under a burst loses events, reports each loss, and keeps running', async () => {
    const probe = await EventProbe.start(ns, 4096);
    try {
      const burst = 5000;
      ns.traffic(`udp-burst=${burst}`);
      // Every NEW of the burst is either delivered or counted lost; nothing else happens here.
      const accounted = await waitFor('every NEW delivered or counted lost', () => {
        const got = probe.events.filter((e) => e.event === 'new').length;
        return got + probe.lost === burst ? got : undefined;
      });
      assert.ok(probe.lost > 0, 'the burst overran the socket');
      assert.ok(accounted > 0, 'some events still arrived');
      assert.ok(probe.alive, 'the probe survived the overrun');
      assert.deepEqual(probe.errors, []);
      // and the socket still works after it
      ns.traffic('udp-noreply=127.0.0.1');
      await waitFor('an event after the overrun', () => probe.events.find((e) => e.dport === 9));
    } finally {
      await probe.stop();
    }
  });
});
