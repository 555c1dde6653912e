/**
 * The --netns.all series: the replaced metrics keep their names and HELP, gain a netns label,
 * exist only for active namespaces, and vanish with them; global ones stay unlabelled.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { ExporterMetrics } from '../../../src/metrics/metrics.js';
import { REPLACED_METRICS, registerNamespaceMetrics } from '../../../src/metrics/netns.js';
import { NamespacePipeline } from '../../../src/namespace/pipeline.js';
import { RequestSocket } from '../../../src/netlink/request.js';
import { FakeTransport } from '../../support/fake-transport.js';

function pipeline(label: string, own = false): NamespacePipeline {
  return new NamespacePipeline(
    { inode: label.length.toString(), name: label, path: `/run/netns/${label}`, own, label },
    {
      observer: { transition() {}, stateLeft() {}, flowEnded() {} },
      log: pino({ level: 'silent' }),
      resyncIntervalMs: 0,
      silentSchedule: { minSeconds: 0, cpuBudget: 0.02 },
      // A kernel that never answers: these tests only look at the metrics layer.
      openSocket: () => new RequestSocket(new FakeTransport(), 60_000),
    },
  );
}

describe('registerNamespaceMetrics', () => {
  it('every replaced metric exists in the default registry (names and HELP are taken from there)', () => {
    const m = new ExporterMetrics({ version: 't', kernelTimestamps: false, processMetrics: false });
    for (const name of REPLACED_METRICS) assert.ok(m.registry.getSingleMetric(name), name);
  });

  it('labels per-namespace series with netns, for active namespaces only', async () => {
    const m = new ExporterMetrics({ version: 't', kernelTimestamps: false, processMetrics: false });
    const helpBefore = (await m.registry.metrics())
      .split('\n')
      .find((l) => l.startsWith('# HELP conntrack_entries '));
    const a = pipeline('a', true);
    const b = pipeline('b');
    const idle = pipeline('idle');
    let active = [a, b];
    registerNamespaceMetrics(m.registry, {
      active: () => active,
      followed: () => 3,
      skipped: () => 2,
      eventsLost: () => 5,
      eventsUnmatched: () => 0,
      limit: () => 1000,
      buckets: () => 256,
      rcvbuf: () => 4096,
    });
    a.activate();
    b.activate();
    a.entries = 7;
    b.entries = 0;
    a.cpu.add([{ cpu: 0, values: { drop: 3 } }]);
    a.cpu.add([{ cpu: 0, values: { drop: 1 } }]); // a u32 wrap: 2^32 - 2 more
    const text = await m.registry.metrics();
    const lines = text.split('\n');
    assert.ok(lines.includes('conntrack_entries{netns="a"} 7'));
    assert.ok(lines.includes('conntrack_entries{netns="b"} 0'));
    assert.ok(!text.includes('netns="idle"'));
    assert.ok(lines.includes(helpBefore!), 'same HELP as the default mode');
    assert.ok(lines.includes(`conntrack_stat_drop_total{netns="a"} ${3 + 2 ** 32 - 2}`));
    assert.ok(lines.includes('conntrack_entries_limit 1000'), 'the global limit stays unlabelled');
    assert.ok(lines.includes('conntrack_collector_events_lost_total 5'));
    assert.ok(lines.includes('conntrack_netns_followed 3'));
    assert.ok(lines.includes('conntrack_netns_skipped 2'));
    assert.ok(lines.includes('conntrack_netns_active 2'));
    assert.ok(
      lines.includes('conntrack_flows{netns="b",family="ipv4",protocol="tcp",state="ESTABLISHED"} 0'),
    );
    assert.ok(lines.includes('conntrack_collector_table_drift{netns="a"} -7'));
    assert.ok(lines.includes('conntrack_netns_info{netns="a",inode="1",own="true"} 1'));
    assert.equal(
      lines.filter((l) => l.startsWith('conntrack_entries ')).length,
      0,
      'no unlabelled conntrack_entries beside the labelled ones',
    );

    // b goes idle: its series go with it.
    b.deactivate();
    active = [a];
    const after = await m.registry.metrics();
    assert.ok(!after.includes('netns="b"'));
    assert.ok(after.includes('conntrack_entries{netns="a"} 7'));
    for (const p of [a, b, idle]) p.close();
  });
});
