import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KernelSnapshot } from '../../../src/kernel/stats.js';
import { textFormat } from '../../../src/metrics/exposition/text.js';
import { collect } from '../../../src/metrics/family.js';
import type { ExporterMetrics } from '../../../src/metrics/metrics.js';
import { ShadowTable } from '../../../src/table/table.js';
import { destroyed, tcp, udp } from '../helpers/flows.js';
import { cpu, kernelSnapshot } from '../helpers/kernel.js';
import { defaultModeMetrics, scripted } from '../helpers/scope.js';
import { summary } from '../helpers/summary.js';

/** The value of one sample line, e.g. value(text, 'conntrack_entries'). */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

function setup(kernel: KernelSnapshot[]) {
  const m = defaultModeMetrics(scripted(kernel));
  m.scope.events.receiveBuffer = 425984;
  return m;
}

describe('ExporterMetrics', () => {
  it('exports kernel gauges, flows by state, drift and build info', async () => {
    const { metrics, table } = setup([kernelSnapshot([], { entries: 3 })]);
    table.apply('new', summary(tcp(1, 'ESTABLISHED')));
    table.apply('new', summary(udp(2, 'UNREPLIED')));
    const text = await metrics.render();
    assert.equal(value(text, 'conntrack_entries'), 3);
    assert.equal(value(text, 'conntrack_entries_limit'), 262144);
    assert.equal(value(text, 'conntrack_buckets'), 65536);
    assert.equal(value(text, 'conntrack_flows{family="ipv4",protocol="tcp",state="ESTABLISHED"}'), 1);
    assert.equal(value(text, 'conntrack_flows{family="ipv4",protocol="udp",state="UNREPLIED"}'), 1);
    assert.equal(value(text, 'conntrack_flows{family="ipv6",protocol="tcp",state="TIME_WAIT"}'), 0);
    assert.equal(value(text, 'conntrack_collector_table_drift'), -1);
    assert.equal(value(text, 'conntrack_collector_netlink_receive_buffer_bytes'), 425984);
    assert.match(
      text,
      /conntrack_exporter_build_info\{version="1\.2\.3",node_version="v\d+[^"]*",kernel="[^"]+"\} 1/,
    );
    assert.ok(!text.includes('# TYPE conntrack_stat_'), 'no stat counters before the kernel reported any');
  });

  it('exports the kernel event mode, timestamps and accounting switches', async () => {
    const { metrics } = setup([kernelSnapshot([])]);
    const text = await metrics.render();
    assert.equal(value(text, 'conntrack_kernel_event_mode'), 2);
    assert.equal(value(text, 'conntrack_kernel_timestamps_enabled'), 0);
    assert.equal(value(text, 'conntrack_kernel_accounting_enabled'), 1);
  });

  it('mirrors per-CPU kernel counters, summing CPUs and surviving a u32 wrap', async () => {
    const { metrics } = setup([
      kernelSnapshot([cpu(0, { drop: 5, found: 1 }), cpu(1, { drop: 2, found: 1 })]),
      kernelSnapshot([cpu(0, { drop: 7, found: 1 }), cpu(1, { drop: 0xffffffff, found: 1 })]),
      kernelSnapshot([cpu(0, { drop: 7, found: 1 }), cpu(1, { drop: 3, found: 1 })]), // CPU 1 wrapped
    ]);
    assert.equal(value(await metrics.render(), 'conntrack_stat_drop_total'), 7);
    assert.equal(value(await metrics.render(), 'conntrack_stat_drop_total'), 7 + 0xffffffff);
    const text = await metrics.render();
    assert.equal(value(text, 'conntrack_stat_drop_total'), 7 + 0xffffffff + 4);
    assert.equal(value(text, 'conntrack_stat_found_total'), 2);
    assert.ok(
      !text.includes('conntrack_stat_chain_toolong_total'),
      'a counter the kernel does not send is absent',
    );
  });

  it('mirrors collector counters and observes lifetimes, durations and transitions', async () => {
    const { clock, metrics, table, counters } = setup([kernelSnapshot([])]);
    counters.eventsNew = 4;
    counters.overruns = 2;
    counters.resyncs.overrun = 2;
    counters.decodeErrors = 1;
    table.apply('new', summary(tcp(1, 'SYN_SENT')));
    clock.advance(0.003);
    table.apply('update', summary(tcp(1, 'ESTABLISHED')));
    clock.advance(2);
    table.apply('destroy', summary(destroyed(tcp(1, 'ESTABLISHED'))));
    const text = await metrics.render();
    assert.equal(value(text, 'conntrack_events_total{event="new"}'), 4);
    assert.equal(value(text, 'conntrack_events_total{event="destroy"}'), 0);
    assert.equal(value(text, 'conntrack_collector_overruns_total'), 2);
    assert.equal(value(text, 'conntrack_collector_resyncs_total{reason="overrun"}'), 2);
    assert.equal(value(text, 'conntrack_collector_resyncs_total{reason="periodic"}'), 0);
    assert.equal(value(text, 'conntrack_collector_resyncs_total{reason="drift"}'), 0);
    assert.equal(value(text, 'conntrack_collector_resync_failures_total{reason="silent"}'), 0);
    assert.equal(value(text, 'conntrack_collector_decode_errors_total'), 1);
    assert.equal(
      value(text, 'conntrack_state_transitions_total{protocol="tcp",from="SYN_SENT",to="ESTABLISHED"}'),
      1,
    );
    assert.equal(value(text, 'conntrack_flow_lifetime_seconds_count{protocol="tcp"}'), 1);
    assert.equal(value(text, 'conntrack_flow_lifetime_seconds_bucket{le="1",protocol="tcp"}'), 0);
    assert.equal(value(text, 'conntrack_flow_lifetime_seconds_bucket{le="5",protocol="tcp"}'), 1);
    assert.equal(
      value(text, 'conntrack_state_duration_seconds_bucket{le="0.005",protocol="tcp",state="SYN_SENT"}'),
      1,
    );
    assert.equal(
      value(text, 'conntrack_state_duration_seconds_bucket{le="0.001",protocol="tcp",state="SYN_SENT"}'),
      0,
    );
    // Counters only grow between scrapes, by the collector's difference.
    counters.eventsNew = 10;
    counters.resyncFailures.drift = 2;
    const later = await metrics.render();
    assert.equal(value(later, 'conntrack_events_total{event="new"}'), 10);
    assert.equal(value(later, 'conntrack_collector_resync_failures_total{reason="drift"}'), 2);
  });

  it('adds up the observations of tables that share it (--netns.all), one series per label set', async () => {
    const { clock, metrics, table, flows } = setup([kernelSnapshot([])]);
    const other = new ShadowTable(flows, clock.read);
    for (const t of [table, other]) {
      t.apply('new', summary(tcp(1, 'SYN_SENT')));
      clock.advance(0.5);
      t.apply('update', summary(tcp(1, 'ESTABLISHED')));
      t.apply('destroy', summary(destroyed(tcp(1, 'ESTABLISHED'))));
    }
    const transitions = 'conntrack_state_transitions_total{protocol="tcp",from="SYN_SENT",to="ESTABLISHED"}';
    const text = await metrics.render();
    assert.equal(value(text, transitions), 2);
    assert.equal(value(text, 'conntrack_flow_lifetime_seconds_count{protocol="tcp"}'), 2);
    assert.equal(text.split('\n').filter((l) => l.startsWith(`${transitions} `)).length, 1);
    // A transition after a scrape adds to the same series at the next one.
    other.apply('new', summary(tcp(2, 'SYN_SENT')));
    other.apply('update', summary(tcp(2, 'ESTABLISHED')));
    assert.equal(value(await metrics.render(), transitions), 3);
  });

  it('says in HELP where lifetimes come from', () => {
    const on = defaultModeMetrics(scripted([]), { kernelTimestamps: true }).metrics;
    const off = defaultModeMetrics(scripted([]), { kernelTimestamps: false }).metrics;
    const help = async (m: ExporterMetrics) =>
      textFormat(await collect(m.registry))
        .split('\n')
        .find((l) => l.startsWith('# HELP conntrack_flow_lifetime_seconds ')) ?? '';
    return Promise.all([help(on), help(off)]).then(([a, b]) => {
      assert.match(a, /nf_conntrack_timestamp=1/);
      assert.match(b, /nf_conntrack_timestamp=0/);
    });
  });
});
