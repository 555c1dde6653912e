/**
 * Attribution under the memory budget, with a fake memory reading: when the reading crosses 80%
 * of the limit, new keys are counted in `other` while known keys keep counting, every total stays
 * exact, the degraded metric and the unattributed counter show it, and attribution takes new keys
 * again only once the reading is below 70%.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from '@prometheus-io/client';
import pino from 'pino';
import { Attribution, type Ranked } from '../../../src/attribution/attribution.js';
import { MemoryBudget, type MemoryMeter } from '../../../src/memory/budget.js';
import { registerAttributionMetrics } from '../../../src/metrics/attribution.js';
import { textFormat } from '../../../src/metrics/exposition/text.js';
import { collect } from '../../../src/metrics/family.js';
import { ShadowTable } from '../../../src/table/table.js';
import { destroyed, FakeClock, udp } from '../helpers/flows.js';
import { FakeNamespace, FakeScope, scripted } from '../helpers/scope.js';
import { summary } from '../helpers/summary.js';

const MiB = 1024 ** 2;
/** The interners start with room for this many keys: beyond, they must grow. */
const FIRST_CAPACITY = 256;

class Reading implements MemoryMeter {
  readonly source = 'test';
  readonly limit = 100 * MiB;
  used = 10 * MiB;
  read(): number {
    return this.used;
  }
}

/** A UDP flow from 10.0.<src> to 192.0.2.1:<port>. */
function flow(id: number, port: number, src = 1) {
  const f = udp(id, 'UNREPLIED');
  f.orig!.src = `10.0.${src >> 8}.${src & 255}`;
  f.orig!.dst = '192.0.2.1';
  f.orig!.dstPort = port;
  return f;
}

function setup() {
  const clock = new FakeClock();
  const reading = new Reading();
  const budget = new MemoryBudget(reading, pino({ level: 'silent' }));
  const attribution = new Attribution({
    k: 3,
    sourcePrefixV4: 32,
    sourcePrefixV6: 64,
    clock: clock.read,
    growth: budget,
  });
  const noObserver = { transition() {}, stateLeft() {}, flowEnded() {} };
  const table = new ShadowTable(noObserver, clock.read, attribution);
  const registry = new Registry();
  const scope = new FakeScope();
  scope.namespaces.push(new FakeNamespace({}, table, scripted([]), attribution));
  registerAttributionMetrics(registry, scope, { k: 3, sourcePrefixV4: 32, sourcePrefixV6: 64, budget });
  const metric = async (line: string) =>
    textFormat(await collect(registry))
      .split('\n')
      .find((l) => l.startsWith(line))
      ?.slice(line.length + 1);
  return { clock, reading, budget, attribution, table, metric };
}

const total = (r: Ranked<object>) => r.top.reduce((n, t) => n + t.value, 0) + r.other;

describe('Attribution under the memory budget', () => {
  it('past 80%: new keys go to other, known keys keep counting, totals stay exact; back below 70%: new keys again', async () => {
    const { reading, budget, attribution, table, metric } = setup();
    let id = 1;
    // Port 1 gets 50 flows (the top destination); ports 2..256 one each: the interner is full.
    for (let i = 0; i < 50; i++) table.apply('new', summary(flow(id++, 1)));
    for (let port = 2; port <= FIRST_CAPACITY; port++) table.apply('new', summary(flow(id++, port)));
    assert.equal(await metric('conntrack_attribution_degraded'), '0');

    reading.used = 85 * MiB;
    budget.sample();
    assert.equal(budget.degraded, true);
    assert.equal(await metric('conntrack_attribution_degraded'), '1');

    // 100 flows to 100 new ports (from a new source too), and 20 more to port 1.
    const unattributed: [number, number][] = [];
    for (let port = 1000; port < 1100; port++) {
      unattributed.push([id, port]);
      table.apply('new', summary(flow(id++, port, 7)));
    }
    for (let i = 0; i < 20; i++) table.apply('new', summary(flow(id++, 1)));

    const dst = attribution.topDestinations();
    assert.deepEqual(dst.top[0], {
      labels: { family: 'ipv4', protocol: 'udp', destination: '192.0.2.1', port: '1' },
      value: 70,
    });
    assert.equal(total(dst), table.size, 'the remainder keeps the total exact');
    assert.equal(dst.other, table.size - 70 - 1 - 1, 'the 100 new ports are in other');
    assert.ok(!dst.top.some((t) => Number((t.labels as { port?: string }).port) >= 1000));
    const src = attribution.topSources();
    assert.equal(total(src), table.size);
    assert.equal(
      total(attribution.topCreators()),
      table.size,
      'creators (per second, over the 1 s observed) count every flow',
    );
    // The one new source took a free id of its interner: growing, not interning, is what stops.
    assert.deepEqual(attribution.unattributed, { source: 0, destination: 100, zone: 0, mark: 0 });
    assert.equal(
      await metric('conntrack_attribution_unattributed_flows_total{dimension="destination"}'),
      '100',
    );
    assert.equal(await metric('conntrack_exporter_memory_limit_bytes'), String(100 * MiB));

    // Unattributed flows leave without disturbing anything; the other counts follow.
    const before = table.size;
    for (const [u, port] of unattributed.slice(0, 40))
      table.apply('destroy', summary(destroyed(flow(u, port, 7))));
    assert.equal(table.size, before - 40);
    assert.equal(total(attribution.topDestinations()), table.size);
    assert.equal(attribution.topDestinations().top[0]?.value, 70);

    // Still above the low mark: degraded.
    reading.used = 75 * MiB;
    budget.sample();
    table.apply('new', summary(flow(id++, 2000)));
    assert.equal(attribution.unattributed.destination, 101);
    assert.equal(await metric('conntrack_attribution_degraded'), '1');

    // Below 70%: the interners grow again and new keys are ranked.
    reading.used = 60 * MiB;
    budget.sample();
    assert.equal(await metric('conntrack_attribution_degraded'), '0');
    for (let i = 0; i < 80; i++) table.apply('new', summary(flow(id++, 3000)));
    assert.deepEqual(attribution.topDestinations().top[0], {
      labels: { family: 'ipv4', protocol: 'udp', destination: '192.0.2.1', port: '3000' },
      value: 80,
    });
    assert.equal(attribution.unattributed.destination, 101);
    assert.equal(total(attribution.topDestinations()), table.size);
  });

  it('while degraded, ids freed by keys that left are taken by new keys: no memory is needed', () => {
    const { reading, budget, attribution, table } = setup();
    let id = 1;
    for (let port = 1; port <= FIRST_CAPACITY; port++) table.apply('new', summary(flow(id++, port)));
    reading.used = 90 * MiB;
    budget.sample();
    const bytes = attribution.bytes;
    // Port 5's flow (id 5) ends: its id is free.
    table.apply('destroy', summary(destroyed(flow(5, 5))));
    for (let i = 0; i < 3; i++) table.apply('new', summary(flow(id++, 4000)));
    table.apply('new', summary(flow(id++, 4001)));
    const dst = attribution.topDestinations();
    assert.deepEqual(dst.top[0], {
      labels: { family: 'ipv4', protocol: 'udp', destination: '192.0.2.1', port: '4000' },
      value: 3,
    });
    assert.equal(attribution.unattributed.destination, 1, 'port 4001 found no free id');
    assert.equal(attribution.bytes, bytes, 'nothing grew');
  });

  it('a growth that does not fit degrades before the reading says so', () => {
    const { reading, budget, attribution, table } = setup();
    // 79%: under the mark, but the room left (1 MiB) cannot hold a larger interner... of 2^16 keys.
    reading.used = 79 * MiB;
    budget.sample();
    let id = 1;
    for (let n = 0; n < 70_000; n++)
      table.apply('new', summary(flow(id++, 1 + (n % 60_000), 1 + Math.floor(n / 60_000))));
    assert.equal(budget.degraded, true);
    assert.ok(attribution.unattributed.destination > 0);
    assert.equal(total(attribution.topDestinations()), table.size);
    assert.equal(table.size, 70_000, 'the table takes every flow');
  });

  it('a flow whose mark could not be interned is counted once, and attributed again when it can be', () => {
    const { reading, budget, attribution, table } = setup();
    let id = 1;
    // 256 marks fill the marks' interner.
    for (let mark = 1; mark <= FIRST_CAPACITY; mark++) {
      const f = flow(id++, 1);
      f.mark = mark;
      table.apply('new', summary(f));
    }
    reading.used = 90 * MiB;
    budget.sample();
    const marked = Array.from({ length: 5 }, () => {
      const f = flow(id++, 1);
      f.mark = 9999;
      table.apply('new', summary(f));
      return f;
    });
    assert.equal(attribution.unattributed.mark, 5);
    for (const f of marked) table.apply('update', summary(f));
    assert.equal(attribution.unattributed.mark, 5, 'an update of the same flow is not counted again');
    reading.used = 10 * MiB;
    budget.sample();
    for (const f of marked) table.apply('update', summary(f));
    assert.deepEqual(attribution.topMarks().top[0], { labels: { mark: '9999' }, value: 5 });
    assert.equal(total(attribution.topMarks()), table.size);
  });
});
