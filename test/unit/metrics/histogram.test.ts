import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Histogram, Registry } from '@prometheus-io/client';
import type { FamilyData } from '../../../src/metrics/exposition/model.js';
import { textFormat } from '../../../src/metrics/exposition/text.js';
import { collect } from '../../../src/metrics/family.js';
import { DURATION_BUCKETS } from '../../../src/metrics/flows.js';
import { FilledHistogram } from '../../../src/metrics/histogram.js';
import { mulberry32 } from '../helpers/fixtures.js';

describe('FilledHistogram', () => {
  it("renders exactly what the client's own Histogram renders for the same observations", async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const name = 'x_seconds';
    const filled = new FilledHistogram<'protocol' | 'state'>(DURATION_BUCKETS);
    filled.register(ours, name, 'help');
    const client = new Histogram({
      name,
      help: 'help',
      labelNames: ['protocol', 'state'] as const,
      buckets: [...DURATION_BUCKETS],
      registers: [theirs],
    });
    const random = mulberry32(7);
    const labelSets = [
      { protocol: 'tcp', state: 'SYN_SENT' },
      { protocol: 'udp', state: 'ASSURED' },
      { protocol: 'tcp', state: 'TIME_WAIT' },
    ];
    // Exact bucket bounds, 0, beyond the last bound, and random values in between.
    const values = [0, ...DURATION_BUCKETS, 432001, 1e9];
    for (let i = 0; i < 2000; i++) values.push(random() * 10 ** Math.floor(random() * 7 - 3));
    for (const [i, v] of values.entries()) {
      const labels = labelSets[i % labelSets.length]!;
      filled.series(labels).observe(v);
      client.observe(labels, v);
    }
    // Our text format of our points is the client's text of its histogram.
    assert.equal(textFormat(await collect(ours)), await theirs.metrics());
    // The same points, classic buckets compared (the client has no native ones).
    const classic = (families: FamilyData[]) =>
      families.map((f) => (f.type === 'histogram' ? f.points.map(({ native, created, ...p }) => p) : f));
    assert.deepEqual(classic(await collect(ours)), classic(await collect(theirs)));
  });

  it('skips a value that is not a finite number instead of throwing on the event path', async () => {
    const registry = new Registry();
    const h = new FilledHistogram<'protocol'>([1, 2]);
    h.register(registry, 'y_seconds', 'help');
    const s = h.series({ protocol: 'tcp' });
    s.observe(Number.NaN);
    s.observe(Number.POSITIVE_INFINITY);
    s.observe(1.5);
    assert.equal(s.count, 1);
    assert.match(textFormat(await collect(registry)), /y_seconds_count\{protocol="tcp"\} 1/);
  });
});
