/**
 * --netns.all on the real kernel (issue 12): the exporter runs in one namespace and follows three
 * others the test creates, with different traffic; each namespace's entries and flows by state
 * equal `ip netns exec X conntrack -L`, events reach each one through the single
 * NETLINK_LISTEN_ALL_NSID socket, a namespace created and deleted while the exporter runs appears
 * and disappears, and with the global nf_conntrack_max lowered the table-full alert fires, on a
 * real Prometheus, for the full namespace only.
 *
 * The exporter also sees every other namespace on the machine (the host's, other tests'): the
 * assertions look at the test's own namespaces by their netns label.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FLEET_DASHBOARD_FILE, NETNS_ROW, RULES_FILE } from '../dashboards/queries.js';
import { ConntrackMax } from './harness/conntrack-max.js';
import * as tool from './harness/conntrack-tool.js';
import { ExporterProcess } from './harness/exporter.js';
import { Netns, waitFor } from './harness/netns.js';
import { PrometheusProcess, type Series, shippedDashboardQueries } from './harness/prometheus.js';
import type { Scrape } from './harness/promtext.js';

/** conntrack_flows of one namespace as family/protocol/state -> value, zero series left out. */
function flowsOf(s: Scrape, netns: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const x of s.all('conntrack_flows', { netns })) {
    if (x.value !== 0) out.set(`${x.labels['family']}/${x.labels['protocol']}/${x.labels['state']}`, x.value);
  }
  return out;
}

const sorted = (m: Map<string, number>): string => JSON.stringify([...m].sort());

/** Waits until the namespace's series equal conntrack -L and -C there; returns the last scrape. */
async function converged(exp: ExporterProcess, ns: Netns): Promise<Scrape> {
  let last = '';
  try {
    return await waitFor(`conntrack_flows{netns="${ns.name}"} to equal conntrack -L`, () => {
      const s = exp.scrape();
      const ours = flowsOf(s, ns.name);
      const theirs = tool.countByState(tool.listFlows(ns));
      const entries = s.all('conntrack_entries', { netns: ns.name })[0]?.value;
      const count = tool.count(ns);
      last = `exporter ${sorted(ours)} entries ${entries}; conntrack -L ${sorted(theirs)} -C ${count}`;
      return sorted(ours) === sorted(theirs) && entries === count && count > 0 ? s : undefined;
    });
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${last}\nexporter log:\n${exp.stdout.slice(-4000)}`);
  }
}

describe('--netns.all: one exporter for every namespace', () => {
  let home: Netns;
  let busy: Netns;
  let quiet: Netns;
  let full: Netns;
  let idle: Netns;
  let exp: ExporterProcess;
  let prom: PrometheusProcess;
  const max = new ConntrackMax();

  before(async () => {
    home = Netns.create('nsall-home');
    busy = Netns.create('nsall-busy');
    quiet = Netns.create('nsall-quiet');
    full = Netns.create('nsall-full');
    idle = Netns.create('nsall-idle');
    // Flows before the exporter starts: only a dump can know these.
    busy.traffic('tcp=127.0.0.1', 'udp-noreply=127.0.0.1');
    exp = await ExporterProcess.start(home, ['--netns.all', '--netns.scan-interval=1s']);
    prom = await PrometheusProcess.start(home, [RULES_FILE]);
    max.guard();
  });

  after(async () => {
    max.restore();
    await prom?.stop();
    await exp?.stop();
    for (const ns of [busy, quiet, full, idle, home]) ns?.delete();
  });

  it("reports each namespace's entries and flows by state equal to conntrack -L there", async () => {
    // Different traffic in each, made while the exporter runs: it arrives as events.
    busy.traffic('tcp=127.0.0.1', 'tcp=::1', 'syn=127.0.0.1', 'udp-reply=127.0.0.1', 'udp-noreply=::1');
    quiet.traffic('syn=::1', 'udp-noreply=127.0.0.1');
    quiet.run('ping', ['-c', '1', '-W', '1', '127.0.0.1']);
    full.traffic('udp-reply=::1');
    const scrapes = new Map<Netns, Scrape>();
    for (const ns of [busy, quiet, full]) scrapes.set(ns, await converged(exp, ns));

    const b = scrapes.get(busy)!;
    assert.ok(
      b.value('conntrack_flows', { netns: busy.name, family: 'ipv6', protocol: 'tcp', state: 'TIME_WAIT' }) >=
        1,
    );
    assert.equal(
      b.value('conntrack_flows', { netns: busy.name, family: 'ipv4', protocol: 'tcp', state: 'SYN_SENT' }),
      1,
    );
    const q = scrapes.get(quiet)!;
    assert.equal(
      q.value('conntrack_flows', { netns: quiet.name, family: 'ipv6', protocol: 'tcp', state: 'SYN_SENT' }),
      1,
    );
    assert.equal(
      q.value('conntrack_flows', { netns: quiet.name, family: 'ipv4', protocol: 'tcp', state: 'SYN_SENT' }),
      0,
    );
    // Events were routed to each namespace by its id: NEWs of the flows made after the start.
    const s = exp.scrape();
    for (const [ns, made] of [
      [busy, 5],
      [quiet, 3],
      [full, 1],
    ] as const) {
      const news = s.value('conntrack_events_total', { netns: ns.name, event: 'new' });
      assert.ok(news >= made, `${ns.name}: ${news} NEW events, ${made} flows made`);
      assert.equal(s.value('conntrack_collector_table_drift', { netns: ns.name }), 0);
    }
    // The exporter's own namespace always has its series, even empty (the test's HTTP is untracked).
    assert.equal(s.value('conntrack_entries', { netns: home.name }), 0);
    assert.equal(s.value('conntrack_netns_info', { netns: home.name, own: 'true' }), 1);
    // A namespace without flows is followed (counted) but has no series.
    assert.equal(s.all('conntrack_entries', { netns: idle.name }).length, 0);
    assert.ok(!s.text.includes(`netns="${idle.name}"`));
    assert.ok(s.value('conntrack_netns_followed') >= 5);
    assert.equal(s.value('conntrack_netns_skipped'), 0);
    // The limit is global and unlabelled.
    assert.equal(s.value('conntrack_entries_limit'), Number(max.original));
  });

  it("reports each namespace's own event mode, timestamp and accounting switches", async () => {
    busy.run('sysctl', [
      '-qw',
      'net.netfilter.nf_conntrack_acct=1',
      'net.netfilter.nf_conntrack_timestamp=1',
    ]);
    quiet.run('sysctl', [
      '-qw',
      'net.netfilter.nf_conntrack_acct=0',
      'net.netfilter.nf_conntrack_timestamp=0',
    ]);
    const sysctl = (ns: Netns, name: string) =>
      Number(ns.run('sysctl', ['-n', `net.netfilter.${name}`]).trim());
    for (const ns of [busy, quiet]) {
      const s = await waitFor(`the switches of ${ns.name}`, () => {
        const s = exp.scrape();
        return s.all('conntrack_kernel_accounting_enabled', { netns: ns.name }).length === 1 &&
          s.value('conntrack_kernel_accounting_enabled', { netns: ns.name }) ===
            sysctl(ns, 'nf_conntrack_acct')
          ? s
          : undefined;
      });
      for (const [metric, name] of [
        ['conntrack_kernel_event_mode', 'nf_conntrack_events'],
        ['conntrack_kernel_timestamps_enabled', 'nf_conntrack_timestamp'],
        ['conntrack_kernel_accounting_enabled', 'nf_conntrack_acct'],
      ] as const) {
        assert.equal(s.value(metric, { netns: ns.name }), sysctl(ns, name), `${metric} of ${ns.name}`);
      }
    }
    assert.notEqual(
      exp.scrape().value('conntrack_kernel_accounting_enabled', { netns: busy.name }),
      exp.scrape().value('conntrack_kernel_accounting_enabled', { netns: quiet.name }),
    );
  });

  it('a namespace created and deleted while the exporter runs appears, then disappears', async () => {
    const late = Netns.create('nsall-late');
    try {
      late.traffic('udp-noreply=127.0.0.1', 'syn=127.0.0.1');
      await converged(exp, late);
      const info = exp.scrape().all('conntrack_netns_info', { netns: late.name });
      assert.equal(info.length, 1);
    } finally {
      late.delete();
    }
    await waitFor(`the series of ${late.name} to disappear`, () =>
      exp.scrape().text.includes(`netns="${late.name}"`) ? undefined : true,
    );
  });

  it('with the global nf_conntrack_max lowered, the table-full alert fires for the full namespace only', async () => {
    // Room for what the others track; the full namespace is pushed to the limit.
    const others = [busy, quiet, home].map((ns) => tool.count(ns));
    const limit = Math.max(256, 4 * Math.max(...others) + 256);
    const fullAlert = 'ALERTS{alertname="ConntrackTableFull"}';
    let firing: string[] = [];
    try {
      max.set(limit);
      full.traffic(`udp-burst=${2 * limit}`);
      await waitFor(
        'ConntrackTableFull to be pending or firing for the full namespace',
        () => {
          // The kernel's garbage collector evicts unreplied entries once the table is 95% full.
          full.traffic(`udp-burst=${limit}`);
          firing = prom.query(fullAlert).map((a) => a.metric['netns'] ?? '(none)');
          return firing.includes(full.name) ? true : undefined;
        },
        30_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}; alerting for: ${firing.join(', ')}`);
      });
      const s = exp.scrape();
      assert.ok(s.value('conntrack_entries', { netns: full.name }) >= 0.95 * limit);
      assert.equal(s.value('conntrack_entries_limit'), limit);
      const drops =
        s.value('conntrack_stat_drop_total', { netns: full.name }) +
        s.value('conntrack_stat_early_drop_total', { netns: full.name });
      assert.ok(drops > 0, 'the kernel dropped or evicted in the full namespace');
      // The dashboard's Namespaces row and table-exhaustion panels work on these series.
      const queries = shippedDashboardQueries().filter(
        (q) => q.row === NETNS_ROW || q.row === 'Table exhaustion',
      );
      assert.ok(queries.filter((q) => q.row === NETNS_ROW).length >= 3);
      // One scrape that timed out (1 s here, on a 2-core machine busy with the flood) marks every
      // series of the target stale until the next one: ask again rather than at one instant.
      let empty = queries;
      await waitFor('every dashboard query to return data', () => {
        empty = queries.filter((q) => prom.query(q.expr).length === 0);
        return empty.length === 0 ? true : undefined;
      }).catch(() => undefined);
      const scrapes = ['up', 'scrape_duration_seconds'].map((m) => `${m} ${prom.query(m)[0]?.value?.[1]}`);
      assert.deepEqual(
        empty,
        [],
        `dashboard queries without data in --netns.all mode (${scrapes.join(', ')})`,
      );
      const top = prom.query(queries.find((q) => q.panel === 'Top namespaces by fill')!.expr);
      assert.ok(
        top.some((x) => x.metric['netns'] === full.name),
        'the full namespace is among the top namespaces by fill',
      );
      // The fleet ranks the node by its fullest namespace, in one series without a netns label.
      const closest = shippedDashboardQueries(FLEET_DASHBOARD_FILE).find(
        (q) => q.panel === 'Nodes closest to full',
      );
      let node: Series[] = [];
      await waitFor('the fleet to rank the node as full as its full namespace', () => {
        full.traffic(`udp-burst=${limit}`);
        node = prom.query(closest!.expr);
        return node.length === 1 && Number(node[0]!.value?.[1]) >= 0.9 ? true : undefined;
      }).catch((err: Error) => {
        throw new Error(`${err.message}; fleet: ${JSON.stringify(node)}`);
      });
      assert.equal(node[0]!.metric['netns'], undefined, 'one series per node');
      const ratio = prom.query('instance:conntrack_entries:fill_ratio');
      const ours = new Set([busy.name, quiet.name, home.name]);
      for (const r of ratio.filter((x) => ours.has(x.metric['netns'] ?? ''))) {
        assert.ok(Number(r.value?.[1]) < 0.5, `${r.metric['netns']} is not full`);
      }
    } finally {
      max.restore();
    }
    assert.equal(ConntrackMax.read(), max.original, 'nf_conntrack_max restored');
    const ours = [busy.name, quiet.name, home.name];
    assert.deepEqual(
      firing.filter((n) => ours.includes(n)),
      [],
      'no alert for the namespaces that are not full',
    );
  });
});
