/**
 * The exposition formats against a real Prometheus (Debian's 2.42) on real flows: one Prometheus
 * with `--enable-feature=native-histograms` scrapes protobuf and stores the lifetime histogram as
 * a native histogram (2.42 then keeps no classic series of it), a second one without the flag
 * scrapes OpenMetrics and stores the classic buckets. After real flows are destroyed (made over a
 * few seconds, then flushed with conntrack -F), both must count the same flows, and the native
 * quantiles must fall within the classic bucket that holds the classic estimate.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DURATION_BUCKETS } from '../../src/metrics/flows.js';
import { ExporterProcess } from './harness/exporter.js';
import { Netns, sleep, waitFor } from './harness/netns.js';
import { PrometheusProcess, SECOND_PROMETHEUS } from './harness/prometheus.js';

const NAME = 'conntrack_flow_lifetime_seconds';
/** Schema 3: a native bucket is 2^(1/8) wide. */
const NATIVE_WIDTH = 2 ** (1 / 8);

describe('exposition formats on a real Prometheus', () => {
  let ns: Netns;
  let exp: ExporterProcess;
  let native: PrometheusProcess;
  let classic: PrometheusProcess;

  before(async () => {
    ns = Netns.create('expo');
    exp = await ExporterProcess.start(ns, ['--web.disable-exporter-metrics']);
    native = await PrometheusProcess.start(ns, [], [], { flags: ['--enable-feature=native-histograms'] });
    classic = await PrometheusProcess.start(ns, [], [], { listen: SECOND_PROMETHEUS });
    // Flows made 0.8 s apart and destroyed together: lifetimes spread over several buckets.
    for (let i = 0; i < 5; i++) {
      ns.traffic('tcp=127.0.0.1', 'tcp=::1', 'udp-reply=127.0.0.1');
      await sleep(800);
    }
    ns.run('conntrack', ['-F']);
    // Both have scraped the exporter after the last destroy: they count what it counts.
    const want = () => exp.scrape().sum(`${NAME}_count`);
    await waitFor(
      'both Prometheus servers to have scraped every destroyed flow',
      () => {
        const n = want();
        const a = native.query(`sum(histogram_count(${NAME}))`);
        const b = classic.query(`sum(${NAME}_count)`);
        return n > 0 && Number(a[0]?.value?.[1]) === n && Number(b[0]?.value?.[1]) === n ? true : undefined;
      },
      30_000,
    );
  });

  after(async () => {
    await native?.stop();
    await classic?.stop();
    await exp?.stop();
    ns?.delete();
  });

  it('is scraped in protobuf with native histograms, and in OpenMetrics with classic ones', () => {
    assert.equal(native.value('up'), 1);
    assert.equal(classic.value('up'), 1);
    // 2.42 keeps a histogram native only: no classic series in the first, none native in the second.
    assert.deepEqual(native.query(`${NAME}_bucket`), []);
    assert.ok(native.query(NAME).length >= 2, 'native histograms per protocol');
    assert.ok(classic.query(`${NAME}_bucket`).length > DURATION_BUCKETS.length);
    // OpenMetrics it was (its le is a float: "1.0", text's "1"), and the counter's spelling there
    // (family without _total) reached the series name intact.
    assert.ok(classic.query(`${NAME}_bucket{le="1.0"}`).length >= 2);
    assert.ok(classic.value('sum(conntrack_events_total)') > 0);
  });

  it('--web.disable-exporter-metrics leaves out process_* and nodejs_*, not the collector health', () => {
    const names = new Set(exp.scrape().samples.map((s) => s.name));
    assert.deepEqual(
      [...names].filter((n) => n.startsWith('process_') || n.startsWith('nodejs_')),
      [],
    );
    assert.ok(names.has('conntrack_collector_resyncs_total'));
    assert.ok(names.has('conntrack_exporter_build_info'));
  });

  it('histogram_count of the native histogram equals the classic _count, per protocol', () => {
    for (const protocol of ['tcp', 'udp']) {
      const sel = `{protocol="${protocol}"}`;
      const n = native.value(`histogram_count(${NAME}${sel})`);
      assert.ok(n >= 5, `${protocol}: ${n} flows`);
      assert.equal(n, classic.value(`sum(${NAME}_count${sel})`), protocol);
      const sum = native.value(`histogram_sum(${NAME}${sel})`);
      assert.ok(Math.abs(sum - classic.value(`sum(${NAME}_sum${sel})`)) < 1e-9 * Math.max(1, sum), protocol);
    }
  });

  it('histogram_quantile agrees with the classic buckets within their resolution', () => {
    for (const q of [0.25, 0.5, 0.9]) {
      const n = native.value(`histogram_quantile(${q}, sum(${NAME}{protocol="tcp"}))`);
      const c = classic.value(`histogram_quantile(${q}, sum by (le) (${NAME}_bucket{protocol="tcp"}))`);
      // The true quantile lies in the classic bucket (lo, hi] that holds the classic estimate; the
      // native estimate is within one native bucket of the true value.
      const i = DURATION_BUCKETS.findIndex((b) => c <= b);
      const hi = DURATION_BUCKETS[i]!;
      const lo = i > 0 ? DURATION_BUCKETS[i - 1]! : 0;
      assert.ok(
        n >= lo / NATIVE_WIDTH && n <= hi * NATIVE_WIDTH,
        `q=${q}: native ${n} outside classic bucket (${lo}, ${hi}] of the classic estimate ${c}`,
      );
    }
  });
});
