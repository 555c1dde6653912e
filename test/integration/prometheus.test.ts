/**
 * The dashboard and the rules against a real Prometheus on real data (issue: dashboards): every
 * dashboard query and recording rule returns data, and a real table exhaustion, made by lowering
 * the global nf_conntrack_max for a moment, makes the kernel drop and the table-full alerts fire.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { FLEET_DASHBOARD_FILE, NETNS_ROW, RULES_FILE } from '../dashboards/queries.js';
import { ConntrackMax } from './harness/conntrack-max.js';
import { ExporterProcess } from './harness/exporter.js';
import { Netns, sleep, waitFor } from './harness/netns.js';
import { JOB, PrometheusProcess, shippedDashboardQueries, shippedRules } from './harness/prometheus.js';

describe('dashboard and rules on a real Prometheus', () => {
  let ns: Netns;
  let exp: ExporterProcess;
  let prom: PrometheusProcess;

  before(async () => {
    ns = Netns.create('prom');
    exp = await ExporterProcess.start(ns);
    prom = await PrometheusProcess.start(ns, [RULES_FILE]);
    // Traffic over several scrapes, so rates and histograms have samples to work on.
    for (let i = 0; i < 4; i++) {
      ns.traffic('tcp=127.0.0.1', 'tcp=::1', 'syn=127.0.0.1', 'udp-reply=127.0.0.1', 'udp-noreply=::1');
      ns.run('conntrack', ['-D', '-p', 'udp']);
      await sleep(1000);
    }
    await sleep(4000);
  });

  after(async () => {
    await prom?.stop();
    await exp?.stop();
    ns?.delete();
  });

  it('the exporter is scraped', () => {
    assert.equal(prom.value(`up{job="${JOB}"}`), 1);
  });

  it('every dashboard query returns data', () => {
    // The Namespaces row has data with --netns.all only: netns.test.ts checks it. The top source
    // NAT mappings' utilisation has series only where flows are source-NATed (it has no "other"
    // series, a remainder has no port range): nat.test.ts checks it against conntrack -L.
    const queries = shippedDashboardQueries().filter(
      (q) => q.row !== NETNS_ROW && !q.expr.startsWith('conntrack_top_snat_mapping_port_utilisation_ratio{'),
    );
    assert.ok(queries.length >= 10, `the dashboard has queries (${queries.length})`);
    const empty = queries.filter((q) => prom.query(q.expr).length === 0);
    assert.deepEqual(empty, [], 'queries without data');
  });

  it('the "Who fills the table" row returns data, and each stack adds up to the table', () => {
    const queries = shippedDashboardQueries().filter((q) => q.row === 'Who fills the table');
    assert.equal(queries.length, 5, `queries of the row: ${queries.map((q) => q.panel)}`);
    for (const q of queries) {
      const series = prom.query(q.expr);
      assert.ok(series.length >= 1, `${q.panel}: ${q.expr}`);
      assert.ok(
        series.some((x) => Object.values(x.metric).includes('other')),
        `${q.panel}: the remainder series`,
      );
    }
    // Every stack is the whole table, as a stacked panel shows it (same scrape, so exact).
    const sel = `job="${JOB}"`;
    for (const m of [
      'conntrack_top_source_flows',
      'conntrack_top_destination_flows',
      'conntrack_zone_flows',
      'conntrack_mark_flows',
    ]) {
      const diff = prom.query(`sum(${m}{${sel}}) - sum(conntrack_flows{${sel}})`);
      assert.equal(diff.length, 1, m);
      assert.equal(Number(diff[0]!.value![1]), 0, `${m} adds up to conntrack_flows`);
    }
    const flows = prom.query(`sum(conntrack_flows{${sel}})`);
    assert.ok(Number(flows[0]?.value?.[1]) > 0, 'the table is not empty');
    const created = prom.query(`sum(conntrack_top_source_new_flows_per_second{${sel}})`);
    assert.ok(Number(created[0]?.value?.[1]) > 0, 'new flows were seen');
  });

  it('every recording rule returns data', async () => {
    const records = shippedRules('record');
    assert.ok(records.length >= 1);
    await waitFor('every recording rule to have a value', () =>
      records.every((r) => prom.query(r.name).length > 0) ? true : undefined,
    );
  });

  it('every fleet dashboard query returns data', async () => {
    const queries = shippedDashboardQueries(FLEET_DASHBOARD_FILE);
    assert.ok(queries.length >= 8, `the fleet dashboard has queries (${queries.length})`);
    // It reads recording rules; their 5m rates need two evaluations.
    let empty = queries;
    await waitFor('every fleet query to return data', () => {
      empty = queries.filter((q) => prom.query(q.expr).length === 0);
      return empty.length === 0 ? true : undefined;
    }).catch(() => undefined);
    assert.deepEqual(
      empty.map((q) => `${q.panel}: ${q.expr}`),
      [],
      'fleet queries without data',
    );
    // one node: its exporter, ranked
    const closest = queries.find((q) => q.panel === 'Nodes closest to full');
    assert.deepEqual(
      prom.query(closest!.expr).map((x) => x.metric['instance']),
      [prom.query(`up{job="${JOB}"}`)[0]?.metric['instance']],
    );
  });

  it('no alert fires on a healthy host', () => {
    const alerts = shippedRules('alert');
    const firing = alerts.filter((a) => prom.query(a.expr).length > 0).map((a) => a.name);
    assert.deepEqual(firing, []);
  });
});

describe('table exhaustion, for real', () => {
  let ns: Netns;
  let exp: ExporterProcess;
  let prom: PrometheusProcess;
  const max = new ConntrackMax();

  before(async () => {
    ns = Netns.create('full');
    exp = await ExporterProcess.start(ns);
    prom = await PrometheusProcess.start(ns, [RULES_FILE]);
    // If the test process dies in between, the limit must still come back.
    max.guard();
  });

  after(async () => {
    max.restore();
    await prom?.stop();
    await exp?.stop();
    ns?.delete();
  });

  it('a full table drops, the gauges show it, and the table-full alerts fire', async (t) => {
    // nf_conntrack_max is global; the count it is compared with is per namespace. Leave room
    // for what the host itself tracks.
    const hostCount = Number(readFileSync('/proc/sys/net/netfilter/nf_conntrack_count', 'utf8'));
    const limit = Math.max(256, hostCount * 2 + 256);
    // Rates need samples from before the drops.
    await waitFor('two scrapes', () => {
      const n = prom.query(`count_over_time(up{job="${JOB}"}[1m])`)[0]?.value?.[1];
      return Number(n ?? 0) >= 2 ? true : undefined;
    });
    const before = exp.scrape();
    const drops = (s: typeof before) =>
      s.value('conntrack_stat_drop_total') + s.value('conntrack_stat_early_drop_total');
    const alerts = shippedRules('alert');
    const mustFire = alerts.filter((a) => /Table(Nearly)?Full|Dropped/.test(a.name));
    assert.equal(mustFire.length, 3, `table-full alerts: ${mustFire.map((a) => a.name)}`);
    let offered = 0;
    try {
      max.set(limit);
      // Twice the limit in new flows; then more on every poll, because the kernel's garbage
      // collector evicts unreplied entries as soon as the table is over 95% full.
      ns.traffic(`udp-burst=${2 * limit}`);
      offered += 2 * limit;
      const full = exp.scrape();
      assert.equal(full.value('conntrack_entries_limit'), limit);
      assert.equal(full.value('conntrack_entries'), limit, 'the table is full');
      let silent: string[] = [];
      await waitFor(
        'the table-full alert expressions to fire',
        () => {
          ns.traffic(`udp-burst=${limit}`);
          offered += limit;
          silent = mustFire.filter((a) => prom.query(a.expr).length === 0).map((a) => a.name);
          return silent.length === 0 ? true : undefined;
        },
        20_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}; silent: ${silent.join(', ')}`);
      });
      const after = exp.scrape();
      const dropped = drops(after) - drops(before);
      assert.ok(dropped >= limit, `the kernel dropped or evicted (${dropped})`);
      // What the kernel did, in the test output for the record (nothing else reads it).
      t.diagnostic(
        JSON.stringify({
          limit,
          offered,
          drop: after.value('conntrack_stat_drop_total') - before.value('conntrack_stat_drop_total'),
          earlyDrop:
            after.value('conntrack_stat_early_drop_total') - before.value('conntrack_stat_early_drop_total'),
          fired: mustFire.map((a) => a.name),
        }),
      );
    } finally {
      max.restore();
    }
    assert.equal(ConntrackMax.read(), max.original, 'nf_conntrack_max restored');
  });
});
