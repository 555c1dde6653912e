/**
 * The three exposition formats of one model: the protobuf body decodes with the library and says
 * what the text says, OpenMetrics says it too and passes promtool's OpenMetrics parser (and the
 * text promtool check metrics), escaping holds in each, and native buckets are encoded as
 * metrics.proto means them (spans and deltas checked by hand on a small case).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fromBinary } from '@bufbuild/protobuf';
import { sizeDelimitedPeek } from '@bufbuild/protobuf/wire';
import { encode } from '../../../src/metrics/exposition/formats.js';
import {
  type MetricFamily,
  MetricFamilySchema,
  MetricType,
} from '../../../src/metrics/exposition/gen/io/prometheus/client/metrics_pb.js';
import type { FamilyData } from '../../../src/metrics/exposition/model.js';
import { omFloat } from '../../../src/metrics/exposition/openmetrics.js';
import {
  BucketCounts,
  NATIVE_SCHEMA,
  NATIVE_ZERO_THRESHOLD,
  nativeKey,
  spansAndDeltas,
} from '../../../src/metrics/histogram.js';
import { AF_INET6 } from '../../../src/netlink/nfnetlink.js';
import { needTool, promtool } from '../../dashboards/tools.js';
import { parseText, type Sample } from '../../integration/harness/promtext.js';
import { destroyed, tcp, udp } from '../helpers/flows.js';
import { cpu, kernelSnapshot } from '../helpers/kernel.js';
import { defaultModeMetrics, scripted } from '../helpers/scope.js';
import { summary } from '../helpers/summary.js';

/** A table with flows that lived for different times, rendered in every format (same state). */
async function scrapes(): Promise<{ text: string; om: string; proto: Uint8Array }> {
  const snapshot = kernelSnapshot([cpu(0, { found: 10, insert: 4, drop: 1 })], { entries: 3 });
  const { clock, metrics, table, counters } = defaultModeMetrics(scripted([snapshot]));
  table.apply('new', summary(tcp(1, 'SYN_SENT')));
  clock.advance(0.0004);
  table.apply('update', summary(tcp(1, 'ESTABLISHED')));
  table.apply('new', summary(udp(2, 'UNREPLIED', AF_INET6)));
  clock.advance(3);
  table.apply('destroy', summary(destroyed(udp(2, 'REPLIED', AF_INET6))));
  clock.advance(700);
  table.apply('destroy', summary(destroyed(tcp(1, 'FIN_WAIT'))));
  table.apply('new', summary(tcp(3, 'ESTABLISHED')));
  counters.eventsNew = 3;
  counters.eventsDestroy = 2;
  return {
    text: await metrics.render('text'),
    om: await metrics.render('openmetrics'),
    proto: await metrics.render('protobuf'),
  };
}

function decodeDelimited(bytes: Uint8Array): MetricFamily[] {
  const out: MetricFamily[] = [];
  let at = 0;
  while (at < bytes.length) {
    const peek = sizeDelimitedPeek(bytes.subarray(at));
    if (peek.eof || peek.size === undefined || peek.offset === undefined) throw new Error('truncated');
    const start = at + peek.offset;
    out.push(fromBinary(MetricFamilySchema, bytes.subarray(start, start + peek.size)));
    at = start + peek.size;
  }
  return out;
}

/** The samples a text scraper would read from the protobuf families. */
function protoSamples(families: MetricFamily[]): Sample[] {
  const out: Sample[] = [];
  for (const f of families) {
    for (const m of f.metric) {
      const labels = Object.fromEntries(m.label.map((l) => [l.name, l.value]));
      if (f.type === MetricType.HISTOGRAM) {
        const h = m.histogram!;
        for (const b of h.bucket) {
          out.push({
            name: `${f.name}_bucket`,
            labels: { ...labels, le: String(b.upperBound) },
            value: Number(b.cumulativeCount),
          });
        }
        out.push({
          name: `${f.name}_bucket`,
          labels: { ...labels, le: '+Inf' },
          value: Number(h.sampleCount),
        });
        out.push({ name: `${f.name}_sum`, labels, value: h.sampleSum });
        out.push({ name: `${f.name}_count`, labels, value: Number(h.sampleCount) });
      } else {
        out.push({
          name: f.name,
          labels,
          value: (f.type === MetricType.COUNTER ? m.counter : m.gauge)!.value,
        });
      }
    }
  }
  return out;
}

/** Order-free and with `le` as a number, so "1.0" (OpenMetrics) and "1" (text) are one bucket. */
function canonical(samples: Sample[]): string[] {
  return samples
    .map((s) => {
      const labels = Object.entries(s.labels)
        .map(([k, v]) => [k, k === 'le' ? String(Number(v)) : v])
        .sort(([a], [b]) => (a! < b! ? -1 : 1));
      return `${s.name}${JSON.stringify(labels)} ${s.value}`;
    })
    .sort();
}

describe('exposition formats', () => {
  it('the protobuf body decodes with the library and its values equal the text output', async () => {
    const { text, proto } = await scrapes();
    const families = decodeDelimited(proto);
    assert.ok(families.length > 10);
    assert.deepEqual(canonical(protoSamples(families)), canonical(parseText(text)));
    const lifetime = families.find((f) => f.name === 'conntrack_flow_lifetime_seconds')!;
    assert.equal(lifetime.type, MetricType.HISTOGRAM);
    assert.equal(lifetime.unit, 'seconds');
    const events = families.find((f) => f.name === 'conntrack_events_total')!;
    assert.equal(events.type, MetricType.COUNTER);
  });

  it('OpenMetrics says what the text says, in its own spelling', async () => {
    const { text, om } = await scrapes();
    assert.ok(om.endsWith('\n# EOF\n'));
    assert.deepEqual(canonical(parseText(om.replace('# EOF\n', ''))), canonical(parseText(text)));
    const lines = om.split('\n');
    // A counter family is named without _total, its samples with it.
    assert.ok(lines.includes('# TYPE conntrack_events counter'));
    assert.ok(lines.includes('conntrack_events_total{event="new"} 3.0'));
    assert.ok(lines.includes('# UNIT conntrack_flow_lifetime_seconds seconds'));
    assert.ok(lines.includes('# UNIT conntrack_collector_netlink_receive_buffer_bytes bytes'));
    // Buckets: le as a float after the labels, counts as integers.
    assert.ok(lines.includes('conntrack_flow_lifetime_seconds_bucket{protocol="tcp",le="600.0"} 0'), om);
    assert.ok(lines.includes('conntrack_flow_lifetime_seconds_bucket{protocol="tcp",le="1800.0"} 1'), om);
    assert.ok(!om.includes('_created'));
  });

  it('OpenMetrics passes promtool: its OpenMetrics parser, and check metrics on the same scrape as text', async (t) => {
    if (!needTool(t, 'promtool')) return;
    const { text, om } = await scrapes();
    const dir = mkdtempSync(join(tmpdir(), 'ctx-om-'));
    try {
      // `promtool tsdb create-blocks-from openmetrics` is the OpenMetrics parser promtool 2.42 has
      // (check metrics reads only the text format); it wants a timestamp on every sample.
      const stamped = om
        .split('\n')
        .map((l) => (l === '' || l.startsWith('#') ? l : `${l} 1700000000`))
        .join('\n');
      writeFileSync(join(dir, 'scrape.om'), stamped);
      const r = promtool([
        'tsdb',
        'create-blocks-from',
        'openmetrics',
        join(dir, 'scrape.om'),
        join(dir, 'out'),
      ]);
      assert.equal(r.status, 0, r.output);
      // And it is strict: without # EOF it refuses.
      writeFileSync(join(dir, 'bad.om'), stamped.replace('# EOF\n', ''));
      const bad = promtool([
        'tsdb',
        'create-blocks-from',
        'openmetrics',
        join(dir, 'bad.om'),
        join(dir, 'out2'),
      ]);
      assert.notEqual(bad.status, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const res = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(res.status, 0, `${res.stdout}${res.stderr}`);
  });

  it('escapes label values and HELP in each format as the format wants', () => {
    const families: FamilyData[] = [
      {
        name: 'x_total',
        help: 'a "quoted" \\ help\nline',
        type: 'counter',
        points: [{ labels: { path: 'C:\\dir\n"x"' }, value: 1 }],
      },
      { name: 'y', help: 'not a _total counter', type: 'counter', points: [{ labels: {}, value: 2 }] },
    ];
    const text = encode('text', families) as string;
    assert.ok(text.includes('# HELP x_total a "quoted" \\\\ help\\nline\n'));
    assert.ok(text.includes('x_total{path="C:\\\\dir\\n\\"x\\""} 1\n'));
    const om = encode('openmetrics', families) as string;
    assert.ok(om.includes('# HELP x a \\"quoted\\" \\\\ help\\nline\n'));
    assert.ok(om.includes('x_total{path="C:\\\\dir\\n\\"x\\""} 1.0\n'));
    // expfmt types a counter without _total unknown, under its own name.
    assert.ok(om.includes('# TYPE y unknown\ny 2.0\n'));
    const [x] = decodeDelimited(encode('protobuf', families) as Uint8Array);
    assert.equal(x!.help, families[0]!.help);
    assert.equal(x!.metric[0]!.label[0]!.value, 'C:\\dir\n"x"');
  });

  it('writes floats as expfmt does', () => {
    assert.deepEqual([1, 0, -1, 2, 0.5, 1e21, 1e-7, Number.NaN, -Infinity].map(omFloat), [
      '1.0',
      '0.0',
      '-1.0',
      '2.0',
      '0.5',
      '1e+21',
      '1e-7',
      'NaN',
      '-Inf',
    ]);
  });
});

describe('native histogram buckets', () => {
  it('nativeKey: bucket i holds (2^((i-1)/8), 2^(i/8)], boundaries included below', () => {
    // Powers of two are exact boundaries: 2^k is the top of bucket 8k.
    for (let k = -19; k <= 20; k++) assert.equal(nativeKey(2 ** k), 8 * k, `2^${k}`);
    assert.equal(nativeKey(2 ** 5 * 1.0000001), 41);
    assert.equal(nativeKey(1.5), 5); // (2^(4/8), 2^(5/8)] = (1.414, 1.542]
    assert.equal(nativeKey(100), 54); // 8 * log2(100) = 53.15
    assert.equal(nativeKey(432000), 150);
    // Away from boundaries, ceil(8 log2 v).
    for (let v = 0.00001; v < 1e7; v *= 1.37) assert.equal(nativeKey(v), Math.ceil(8 * Math.log2(v)), `${v}`);
  });

  it('spans and deltas as client_golang makes them: gaps up to 2 inside a span, longer ones start a new span', () => {
    // Buckets 0, 1, 3 (gap of one) and 54 (gap of 50); counts 2, 1, 3, 1.
    const counts = new Float64Array(60);
    counts[0] = 2;
    counts[1] = 1;
    counts[3] = 3;
    counts[54] = 1;
    assert.deepEqual(spansAndDeltas(counts, 0), {
      spans: [
        { offset: 0, length: 4 },
        { offset: 50, length: 1 },
      ],
      // 2, 1-2, 0-1 (the empty bucket 2), 3-0, then across the gap 1-3.
      deltas: [2, -1, -1, 3, -2],
    });
    // The first span's offset is the first bucket's index, negative too; a gap of 3 is a new span.
    const low = new Float64Array(10);
    low[0] = 1;
    low[4] = 1;
    assert.deepEqual(spansAndDeltas(low, -5), {
      spans: [
        { offset: -5, length: 1 },
        { offset: 3, length: 1 },
      ],
      deltas: [1, 0],
    });
    assert.deepEqual(spansAndDeltas(new Float64Array(3), 0), { spans: [], deltas: [] });
  });

  it('a series observes into native buckets beside the classic ones, and protobuf carries both', () => {
    const s = new BucketCounts([1, 10]);
    for (const v of [0, 1e-7, 1, 1, 1.05, 1.2, 1.2, 1.2, 100]) s.observe(v);
    const point = s.point({ protocol: 'tcp' });
    assert.deepEqual(point.cumulative, [4, 8]);
    assert.equal(point.count, 9);
    assert.deepEqual(point.native, {
      schema: NATIVE_SCHEMA,
      zeroThreshold: NATIVE_ZERO_THRESHOLD,
      zeroCount: 2,
      // 1 -> 0, 1.05 -> 1, 1.2 -> 3, 100 -> 54
      spans: [
        { offset: 0, length: 4 },
        { offset: 50, length: 1 },
      ],
      deltas: [2, -1, -1, 3, -2],
    });
    const [f] = decodeDelimited(
      encode('protobuf', [
        { name: 'h_seconds', help: 'h', type: 'histogram', points: [point] },
      ]) as Uint8Array,
    );
    const h = f!.metric[0]!.histogram!;
    assert.equal(h.schema, 3);
    assert.equal(h.zeroThreshold, 2 ** -20);
    assert.equal(h.zeroCount, 2n);
    assert.deepEqual(
      h.positiveSpan.map((x) => [x.offset, x.length]),
      [
        [0, 4],
        [50, 1],
      ],
    );
    assert.deepEqual(h.positiveDelta, [2n, -1n, -1n, 3n, -2n]);
    assert.deepEqual(
      h.bucket.map((b) => [b.upperBound, b.cumulativeCount]),
      [
        [1, 4n],
        [10, 8n],
      ],
    );
    assert.equal(h.sampleCount, 9n);
  });

  it('a value beyond the allocated buckets grows them', () => {
    const s = new BucketCounts([1]);
    s.observe(1e300);
    s.observe(2);
    const n = s.point({}).native!;
    assert.deepEqual(n.spans, [
      { offset: 8, length: 1 },
      { offset: nativeKey(1e300) - 9, length: 1 },
    ]);
  });
});
