/**
 * The daemon end to end on the real kernel (issue: collector): the built exporter runs inside a
 * namespace the test creates; its /metrics must agree with conntrack-tools for that namespace.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import * as tool from './harness/conntrack-tool.js';
import { silently } from './harness/converge.js';
import { ExporterProcess } from './harness/exporter.js';
import { DIST, Netns, ROOT, sleep, waitFor } from './harness/netns.js';
import type { Scrape } from './harness/promtext.js';

const sysctl = (name: string) => Number(readFileSync(`/proc/sys/net/netfilter/${name}`, 'utf8'));

/** conntrack_flows as family/protocol/state -> value, zero series left out. */
function flowsSeries(s: Scrape): Map<string, number> {
  const out = new Map<string, number>();
  for (const x of s.all('conntrack_flows')) {
    if (x.value !== 0) out.set(`${x.labels['family']}/${x.labels['protocol']}/${x.labels['state']}`, x.value);
  }
  return out;
}

/** Waits until the shadow table's series equal conntrack -L's counts; returns the last scrape. */
async function converged(exp: ExporterProcess, ns: Netns): Promise<Scrape> {
  let last: { ours: Map<string, number>; theirs: Map<string, number> } | undefined;
  try {
    return await waitFor('conntrack_flows to equal conntrack -L', () => {
      const s = exp.scrape();
      const ours = flowsSeries(s);
      const theirs = tool.countByState(tool.listFlows(ns));
      last = { ours, theirs };
      return JSON.stringify([...ours].sort()) === JSON.stringify([...theirs].sort()) ? s : undefined;
    });
  } catch (err) {
    throw new Error(
      `${(err as Error).message}\nexporter: ${JSON.stringify([...(last?.ours ?? [])])}\nconntrack -L: ${JSON.stringify([...(last?.theirs ?? [])])}\nexporter log:\n${exp.stdout
        .split('\n')
        .filter((l) => l.includes('synchronised') || l.includes('"level":50'))
        .join('\n')}`,
    );
  }
}

const MIX = [
  'tcp=127.0.0.1',
  'tcp=::1',
  'syn=127.0.0.1',
  'syn=::1',
  'udp-reply=127.0.0.1',
  'udp-noreply=127.0.0.1',
  'udp-reply=::1',
  'udp-noreply=::1',
];

describe('exporter in a namespace with traffic', () => {
  let ns: Netns;
  let exp: ExporterProcess;
  let held: ChildProcess;

  before(async () => {
    ns = Netns.create('exporter');
    // Flows that exist before the exporter starts: only the start-up dump can know them. Made
    // without event cache, as if no process on the host listened (see silently()).
    await silently(ns, async () => {
      ns.traffic('tcp=127.0.0.1', 'udp-noreply=127.0.0.1');
      held = await ns.holdTraffic('hold=127.0.0.1', 'hold=::1');
    });
    exp = await ExporterProcess.start(ns, ['--resync.silent-interval=1s']);
  });

  after(async () => {
    await exp?.stop();
    ns?.delete();
  });

  it('counts the flows that existed before it started', async () => {
    const s = await converged(exp, ns);
    // The kernel sends no events for them (nf_conntrack_events=2): the exporter knows it.
    assert.equal(s.value('conntrack_collector_silent_flows'), 4);
    assert.equal(s.value('conntrack_flows', { family: 'ipv4', protocol: 'tcp', state: 'ESTABLISHED' }), 1);
    assert.equal(s.value('conntrack_flows', { family: 'ipv6', protocol: 'tcp', state: 'ESTABLISHED' }), 1);
    assert.equal(s.value('conntrack_flows', { family: 'ipv4', protocol: 'tcp', state: 'TIME_WAIT' }), 1);
    assert.equal(s.value('conntrack_collector_resyncs_total', { reason: 'startup' }), 1);
  });

  it('every conntrack_flows series equals conntrack -L after a mix of TCP, UDP, ICMP and IPv6', async () => {
    const before = exp.scrape().value('conntrack_events_total', { event: 'new' });
    ns.traffic(...MIX);
    ns.run('ping', ['-c', '2', '-i', '0.2', '-W', '1', '127.0.0.1']);
    ns.run('ping', ['-6', '-c', '1', '-W', '1', '::1']);
    const s = await converged(exp, ns);
    for (const [family, proto, state] of [
      ['ipv4', 'tcp', 'SYN_SENT'],
      ['ipv6', 'tcp', 'SYN_SENT'],
      ['ipv6', 'tcp', 'TIME_WAIT'],
      ['ipv4', 'udp', 'REPLIED'],
      ['ipv6', 'udp', 'UNREPLIED'],
      ['ipv4', 'icmp', 'REPLIED'],
      ['ipv6', 'icmpv6', 'REPLIED'],
    ] as const) {
      assert.ok(
        s.value('conntrack_flows', { family, protocol: proto, state }) >= 1,
        `${family}/${proto}/${state} is counted`,
      );
    }
    // Known series are exported even at zero.
    assert.equal(s.value('conntrack_flows', { family: 'ipv6', protocol: 'tcp', state: 'SYN_SENT2' }), 0);
    assert.equal(s.value('conntrack_events_total', { event: 'new' }) - before, 10, 'one NEW per flow made');
    assert.ok(
      s.value('conntrack_state_transitions_total', { protocol: 'tcp', from: 'SYN_SENT', to: 'SYN_RECV' }) >=
        2,
    );
    assert.ok(s.value('conntrack_state_duration_seconds_count', { protocol: 'tcp', state: 'SYN_SENT' }) >= 2);
  });

  it('kernel gauges equal the kernel: entries, limit, buckets; drift is zero', () => {
    const s = exp.scrape();
    assert.equal(s.value('conntrack_entries'), tool.count(ns));
    assert.equal(s.value('conntrack_entries_limit'), sysctl('nf_conntrack_max'));
    assert.equal(s.value('conntrack_buckets'), sysctl('nf_conntrack_buckets'));
    // Per-namespace switches, as the namespace itself has them.
    const nsSysctl = (name: string) => Number(ns.run('cat', [`/proc/sys/net/netfilter/${name}`]));
    assert.equal(s.value('conntrack_kernel_event_mode'), nsSysctl('nf_conntrack_events'));
    assert.equal(s.value('conntrack_kernel_timestamps_enabled'), nsSysctl('nf_conntrack_timestamp'));
    assert.equal(s.value('conntrack_kernel_accounting_enabled'), nsSysctl('nf_conntrack_acct'));
    assert.equal(s.value('conntrack_collector_table_drift'), 0);
    assert.equal(s.value('conntrack_collector_decode_errors_total'), 0);
    for (const stat of ['found', 'invalid', 'insert', 'insert_failed', 'drop', 'early_drop', 'error']) {
      assert.equal(
        s.all(`conntrack_stat_${stat}_total`).length,
        1,
        `conntrack_stat_${stat}_total is exported`,
      );
    }
    const { version } = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { version: string };
    assert.equal(s.value('conntrack_exporter_build_info', { version }), 1);
  });

  it('destroy events move the lifetime histogram', async () => {
    const s0 = exp.scrape();
    const udpFlows = tool.listFlows(ns).filter((f) => f.protocol === 'udp').length;
    assert.ok(udpFlows >= 4);
    const lifetimes0 = s0.value('conntrack_flow_lifetime_seconds_count', { protocol: 'udp' });
    ns.run('conntrack', ['-D', '-p', 'udp']);
    const s = await converged(exp, ns);
    // The UDP flow made before start-up has no known start and is not observed.
    assert.equal(
      s.value('conntrack_flow_lifetime_seconds_count', { protocol: 'udp' }) - lifetimes0,
      udpFlows - 1,
    );
    assert.ok(s.value('conntrack_flow_lifetime_seconds_sum', { protocol: 'udp' }) > 0);
    assert.equal(s.sum('conntrack_flows', { protocol: 'udp' }), 0);
    // ...and the silent one is gone too, found by a re-dump since no DESTROY came for it.
    assert.equal(s.value('conntrack_collector_silent_flows'), 3);
    assert.ok(
      s.value('conntrack_collector_resyncs_total', { reason: 'silent' }) +
        s.value('conntrack_collector_resyncs_total', { reason: 'drift' }) >=
        1,
    );
  });

  it('passes promtool check metrics', () => {
    const text = exp.get('/metrics').body;
    const res = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(res.status, 0, `promtool check metrics:\n${res.stdout}${res.stderr}`);
  });

  it('conntrack -F brings every series back to 0', async () => {
    held.kill('SIGKILL'); // its connections would otherwise be picked up again mid-stream
    await sleep(100);
    ns.run('conntrack', ['-F']);
    const s = await converged(exp, ns);
    assert.equal(s.sum('conntrack_flows'), tool.count(ns));
    assert.ok(s.sum('conntrack_flows') <= 2, 'at most the killed sockets’ RSTs re-created flows');
  });

  it('SIGTERM closes it with exit code 0 within 2 s', async () => {
    const t0 = Date.now();
    await exp.stop();
    const { code, signal } = await exp.exited;
    const took = Date.now() - t0;
    assert.deepEqual({ code, signal }, { code: 0, signal: null });
    assert.ok(took < 2000, `exited after ${took} ms`);
  });
});

describe('exporter after an overrun', () => {
  let ns: Netns;
  let exp: ExporterProcess;
  before(async () => {
    ns = Netns.create('resync');
    exp = await ExporterProcess.start(ns, ['--netlink.rcvbuf=4KiB']);
  });
  after(async () => {
    await exp?.stop();
    ns?.delete();
  });

  it('counts the overrun and, after the resync, equals conntrack -L again', async () => {
    ns.traffic('udp-burst=20000');
    const s = await converged(exp, ns);
    assert.ok(s.value('conntrack_collector_overruns_total') >= 1, 'overrun counted');
    assert.ok(s.value('conntrack_collector_events_lost_total') > 0, 'lost events counted');
    assert.ok(s.value('conntrack_collector_resyncs_total', { reason: 'overrun' }) >= 1, 'resynced');
    assert.equal(s.sum('conntrack_flows', { protocol: 'udp' }), 20000);
    assert.equal(s.value('conntrack_entries'), tool.count(ns));
  });
});

describe('exporter start-up failures', () => {
  it('a bad flag stops start-up with a message naming it (exit 2)', () => {
    const res = spawnSync(process.execPath, [`${DIST}src/main.js`, '--web.listen-adress=:1'], {
      encoding: 'utf8',
    });
    assert.equal(res.status, 2);
    assert.match(res.stderr, /web\.listen-adress/);
    const bad = spawnSync(process.execPath, [`${DIST}src/main.js`, '--netlink.rcvbuf=lots'], {
      encoding: 'utf8',
    });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--netlink\.rcvbuf.*lots/);
  });

  it('without CAP_NET_ADMIN it fails with one line that says how to grant it', () => {
    const ns = Netns.create('nocap');
    try {
      const res = ns.tryRun('setpriv', [
        '--bounding-set=-net_admin',
        '--inh-caps=-net_admin',
        process.execPath,
        `${DIST}src/main.js`,
        `--web.listen-address=127.0.0.1:9466`,
      ]);
      assert.equal(res.status, 1, res.stderr);
      const lines = res.stderr.trim().split('\n');
      assert.equal(lines.length, 1, res.stderr);
      assert.match(lines[0]!, /CAP_NET_ADMIN/);
      assert.match(lines[0]!, /setcap cap_net_admin\+ep/);
    } finally {
      ns.delete();
    }
  });
});
