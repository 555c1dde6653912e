import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from '@prometheus-io/client';
import {
  Attribution,
  attributionFor,
  type Ranked,
  type SourceLabels,
} from '../../../src/attribution/attribution.js';
import { parseConfig } from '../../../src/config.js';
import { registerAttributionMetrics } from '../../../src/metrics/attribution.js';
import { textFormat } from '../../../src/metrics/exposition/text.js';
import { collect } from '../../../src/metrics/family.js';
import { AF_INET, AF_INET6 } from '../../../src/netlink/nfnetlink.js';
import { ShadowTable } from '../../../src/table/table.js';
import type { Flow } from '../../support/codec/flow.js';
import { destroyed, FakeClock, icmp, tcp, udp } from '../helpers/flows.js';
import { FakeNamespace, FakeScope, scripted } from '../helpers/scope.js';
import { summary } from '../helpers/summary.js';

interface Spec {
  src: string;
  dst?: string;
  dport?: number;
  zone?: number;
  mark?: number;
  proto?: 'tcp' | 'udp' | 'icmp';
}

function flow(id: number, spec: Spec): Flow {
  const family = spec.src.includes(':') ? AF_INET6 : AF_INET;
  const f =
    spec.proto === 'icmp'
      ? icmp(id, 'UNREPLIED')
      : spec.proto === 'udp'
        ? udp(id, 'UNREPLIED', family)
        : tcp(id, 'SYN_SENT', family);
  f.family = family;
  f.orig!.family = family;
  f.orig!.src = spec.src;
  f.orig!.dst = spec.dst ?? (family === AF_INET6 ? '::1' : '127.0.0.1');
  if (spec.dport !== undefined && spec.proto !== 'icmp') f.orig!.dstPort = spec.dport;
  if (spec.zone !== undefined) f.zone = spec.zone;
  if (spec.mark !== undefined) f.mark = spec.mark;
  return f;
}

const noObserver = { transition() {}, stateLeft() {}, flowEnded() {} };

function setup(k = 3, v4 = 32, v6 = 128) {
  const clock = new FakeClock();
  const attribution = new Attribution({ k, sourcePrefixV4: v4, sourcePrefixV6: v6, clock: clock.read });
  const table = new ShadowTable(noObserver, clock.read, attribution);
  return { clock, attribution, table };
}

function asMap<L extends object>(r: Ranked<L>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of r.top) out[Object.values(t.labels).join(' ')] = t.value;
  out['other'] = r.other;
  return out;
}

/** A top-K ranking of /24 sources against a brute-force count of the live flows. */
function assertTop24(
  got: Ranked<SourceLabels>,
  k: number,
  live: Map<number, Spec>,
  size: number,
  at: string,
): void {
  const counts = new Map<string, number>();
  for (const s of live.values()) {
    const prefix = `${s.src.split('.').slice(0, 3).join('.')}.0/24`;
    counts.set(prefix, (counts.get(prefix) ?? 0) + 1);
  }
  assert.ok(got.top.length <= k);
  let sum = 0;
  for (const t of got.top) {
    assert.equal(t.value, counts.get(t.labels.source), `${at}: ${t.labels.source}`);
    sum += t.value;
  }
  const shown = new Set(got.top.map((t) => t.labels.source));
  const least = Math.min(...got.top.map((t) => t.value));
  for (const [key, n] of counts)
    if (!shown.has(key)) assert.ok(n <= least, `${at}: ${key} (${n}) outranks the top`);
  assert.equal(got.top.length, Math.min(k, counts.size));
  assert.equal(got.other, live.size - sum);
  assert.equal(sum + got.other, size);
}

describe('Attribution', () => {
  it('ranks sources, destinations, zones and marks with a remainder that adds up', () => {
    const { attribution, table } = setup(2);
    let id = 1;
    const add = (n: number, spec: Spec) => {
      for (let i = 0; i < n; i++) table.apply('new', summary(flow(id++, spec)));
    };
    add(5, { src: '10.0.0.1', dst: '192.0.2.1', dport: 443, zone: 1, mark: 7 });
    add(3, { src: '10.0.0.2', dst: '192.0.2.1', dport: 80, mark: 7 });
    add(2, { src: '2001:db8::1', dst: '2001:db8::53', dport: 53, proto: 'udp', zone: 2 });
    add(1, { src: '10.0.0.3', dst: '192.0.2.9', proto: 'icmp' });
    assert.equal(table.size, 11);
    assert.deepEqual(asMap(attribution.topSources()), {
      'ipv4 10.0.0.1': 5,
      'ipv4 10.0.0.2': 3,
      other: 3,
    });
    assert.deepEqual(asMap(attribution.topDestinations()), {
      'ipv4 tcp 192.0.2.1 443': 5,
      'ipv4 tcp 192.0.2.1 80': 3,
      other: 3,
    });
    assert.deepEqual(asMap(attribution.topZones()), { '1': 5, '0': 4, other: 2 });
    assert.deepEqual(asMap(attribution.topMarks()), { '7': 8, '0': 3, other: 0 });
    // ICMP: the type stands for the port (echo request, 8).
    const wide = new Attribution({ k: 10, sourcePrefixV4: 32, sourcePrefixV6: 128 });
    const t2 = new ShadowTable(noObserver, undefined, wide);
    t2.apply('new', summary(flow(1, { src: '10.0.0.3', dst: '192.0.2.9', proto: 'icmp' })));
    t2.apply('new', summary(flow(2, { src: '2001:db8::1', dst: '2001:db8::53', dport: 53, proto: 'udp' })));
    assert.deepEqual(
      wide.topDestinations().top.map((t) => t.labels),
      [
        { family: 'ipv4', protocol: 'icmp', destination: '192.0.2.9', port: '8' },
        { family: 'ipv6', protocol: 'udp', destination: '2001:db8::53', port: '53' },
      ],
    );
  });

  it('follows flows as they go: destroys, mark changes, a resync that drops what is gone', () => {
    const { attribution, table } = setup(5);
    for (let id = 1; id <= 6; id++) table.apply('new', summary(flow(id, { src: `10.0.0.${id % 3}` })));
    table.apply('destroy', summary(destroyed(flow(3, { src: '10.0.0.0' }))));
    table.apply('destroy', summary(destroyed(flow(6, { src: '10.0.0.0' }))));
    assert.deepEqual(asMap(attribution.topSources()), { 'ipv4 10.0.0.1': 2, 'ipv4 10.0.0.2': 2, other: 0 });
    // A mark set later (ct mark set ...) arrives in an UPDATE.
    table.apply('update', summary(flow(1, { src: '10.0.0.1', mark: 42 })));
    assert.deepEqual(asMap(attribution.topMarks()), { '0': 3, '42': 1, other: 0 });
    // An UPDATE without CTA_MARK: the kernel omits a zero mark, so it went back to 0.
    table.apply('update', summary(flow(1, { src: '10.0.0.1' })));
    assert.deepEqual(asMap(attribution.topMarks()), { '0': 4, other: 0 });
    // The kernel lost flows 1 and 4 without telling (a resync sees them gone).
    table.beginSync();
    table.stage(summary(flow(2, { src: '10.0.0.2', mark: 9 })));
    table.stage(summary(flow(5, { src: '10.0.0.2' })));
    table.commitSync();
    assert.deepEqual(asMap(attribution.topSources()), { 'ipv4 10.0.0.2': 2, other: 0 });
    assert.deepEqual(asMap(attribution.topMarks()), { '0': 1, '9': 1, other: 0 });
    // Everything goes: no series but the remainder, at 0.
    for (const id of [2, 5]) table.apply('destroy', summary(destroyed(flow(id, { src: '10.0.0.2' }))));
    for (const r of [
      attribution.topSources(),
      attribution.topDestinations(),
      attribution.topZones(),
      attribution.topMarks(),
    ]) {
      assert.deepEqual(r, { top: [], other: 0 });
    }
  });

  it('aggregates IPv4 sources by prefix', () => {
    const { attribution, table } = setup(3, 24, 128);
    const srcs = ['10.1.2.3', '10.1.2.200', '10.1.3.1', '10.1.2.0', '192.168.7.255'];
    for (const [i, src] of srcs.entries()) table.apply('new', summary(flow(i + 1, { src })));
    assert.deepEqual(asMap(attribution.topSources()), {
      'ipv4 10.1.2.0/24': 3,
      'ipv4 10.1.3.0/24': 1,
      'ipv4 192.168.7.0/24': 1,
      other: 0,
    });
    const odd = setup(3, 7, 128);
    odd.table.apply('new', summary(flow(1, { src: '255.255.255.255' })));
    odd.table.apply('new', summary(flow(2, { src: '254.0.0.1' })));
    assert.deepEqual(asMap(odd.attribution.topSources()), { 'ipv4 254.0.0.0/7': 2, other: 0 });
  });

  it('aggregates IPv6 sources by prefix, across word boundaries', () => {
    const cases: [number, string[], Record<string, number>][] = [
      [
        64,
        ['2001:db8:1:2::1', '2001:db8:1:2:ffff::9', '2001:db8:1:3::1'],
        { 'ipv6 2001:db8:1:2::/64': 2, 'ipv6 2001:db8:1:3::/64': 1, other: 0 },
      ],
      [
        // 56 cuts inside the second 32-bit word; 2001:db8:1:2ff and 2001:db8:1:200 share it.
        56,
        ['2001:db8:1:2ff::1', '2001:db8:1:200::1', '2001:db8:1:300::1'],
        { 'ipv6 2001:db8:1:200::/56': 2, 'ipv6 2001:db8:1:300::/56': 1, other: 0 },
      ],
      [
        // 97 bits: the top bit of the last word stays, the rest goes.
        97,
        ['fd00::7fff:ffff', 'fd00::1', 'fd00::8000:1'],
        { 'ipv6 fd00::/97': 2, 'ipv6 fd00::8000:0/97': 1, other: 0 },
      ],
      [128, ['fd00::1', 'fd00::1', 'fd00::2'], { 'ipv6 fd00::1': 2, 'ipv6 fd00::2': 1, other: 0 }],
    ];
    for (const [prefix, srcs, expected] of cases) {
      const { attribution, table } = setup(3, 32, prefix);
      for (const [i, src] of srcs.entries()) table.apply('new', summary(flow(i + 1, { src })));
      assert.deepEqual(asMap(attribution.topSources()), expected, `/${prefix}`);
    }
  });

  it('top K and remainder equal a brute-force count, through random churn', () => {
    const { attribution, table } = setup(4, 24, 64);
    const live = new Map<number, Spec>();
    let seed = 11;
    const rand = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    /** Flow `id` ends (half the time) if it is live, or starts if it is not. */
    const churn = (id: number) => {
      const spec = live.get(id);
      if (spec && rand(2) === 0) {
        table.apply('destroy', summary(destroyed(flow(id, spec))));
        live.delete(id);
      } else if (!spec) {
        // A skewed population: a few busy /24s among many quiet ones.
        const net = rand(4) === 0 ? rand(200) : rand(5);
        const s: Spec = { src: `10.${net}.${rand(3)}.${rand(256)}`, zone: rand(7), mark: rand(3) };
        table.apply('new', summary(flow(id, s)));
        live.set(id, s);
      }
    };
    for (let step = 0; step < 30_000; step++) {
      churn(1 + rand(3000));
      if (step % 1000 === 999) assertTop24(attribution.topSources(), 4, live, table.size, `step ${step}`);
    }
  });

  it('ranks creators by new flows per second over the last minute', () => {
    const { clock, attribution, table } = setup(2);
    // A dump at start-up finds flows: they were not created now.
    table.beginSync();
    for (let id = 1; id <= 50; id++) table.stage(summary(flow(id, { src: '10.9.9.9' })));
    table.commitSync();
    assert.deepEqual(attribution.topCreators(), { top: [], other: 0 });
    let id = 100;
    const create = (src: string, n: number) => {
      for (let i = 0; i < n; i++) table.apply('new', summary(flow(id++, { src })));
    };
    clock.advance(10);
    create('10.0.0.1', 100);
    create('10.0.0.2', 20);
    create('10.0.0.3', 10);
    // Ten seconds observed so far: the rate is over those.
    assert.deepEqual(asMap(attribution.topCreators()), {
      'ipv4 10.0.0.1': 10,
      'ipv4 10.0.0.2': 2,
      other: 1,
    });
    // 60 s after start a new window begins; 30 s into it, half the previous one still counts.
    clock.advance(80);
    create('10.0.0.3', 60);
    assert.deepEqual(asMap(attribution.topCreators()), {
      'ipv4 10.0.0.1': 50 / 60,
      'ipv4 10.0.0.3': (60 + 5) / 60,
      other: 10 / 60,
    });
    // A creator whose flows are all gone is still ranked while its window counts...
    for (let f = 100; f < 200; f++) table.apply('destroy', summary(destroyed(flow(f, { src: '10.0.0.1' }))));
    assert.equal(attribution.topCreators().top[1]?.labels.source, '10.0.0.1');
    assert.equal(
      attribution.topSources().top.some((t) => t.labels.source === '10.0.0.1'),
      false,
    );
    // ...and forgotten (its key freed) once they age out.
    clock.advance(60);
    assert.deepEqual(asMap(attribution.topCreators()), { 'ipv4 10.0.0.3': 30 / 60, other: 0 });
    clock.advance(600);
    assert.deepEqual(attribution.topCreators(), { top: [], other: 0 });
  });

  it('bounds the creators it follows per window; the rest count in the remainder', () => {
    const clock = new FakeClock();
    const attribution = new Attribution({
      k: 2,
      sourcePrefixV4: 32,
      sourcePrefixV6: 128,
      clock: clock.read,
      maxCreators: 3,
    });
    const table = new ShadowTable(noObserver, clock.read, attribution);
    clock.advance(1);
    for (let id = 1; id <= 10; id++) table.apply('new', summary(flow(id, { src: `10.0.0.${id}` })));
    table.apply('new', summary(flow(11, { src: '10.0.0.2' })));
    assert.deepEqual(asMap(attribution.topCreators()), { 'ipv4 10.0.0.2': 2, 'ipv4 10.0.0.1': 1, other: 8 });
  });

  it('K=0 attaches nothing: no extension, no series', () => {
    assert.equal(attributionFor(parseConfig(['--top.k=0'])), undefined);
    const on = attributionFor(parseConfig([]));
    assert.ok(on instanceof Attribution);
    assert.equal(on.k, 10);
    assert.throws(() => new Attribution({ k: 0, sourcePrefixV4: 32, sourcePrefixV6: 128 }), RangeError);
  });

  it('renders at most K + 1 series per metric, and drops keys that left', async () => {
    const { table, attribution } = setup(2);
    const registry = new Registry();
    const scope = new FakeScope();
    scope.namespaces.push(new FakeNamespace({}, table, scripted([]), attribution));
    registerAttributionMetrics(registry, scope, attribution);
    for (let id = 1; id <= 9; id++) table.apply('new', summary(flow(id, { src: `10.0.0.${id % 4}` })));
    let text = textFormat(await collect(registry));
    const series = (name: string) => text.split('\n').filter((l) => l.startsWith(`${name}{`));
    for (const name of [
      'conntrack_top_source_flows',
      'conntrack_top_destination_flows',
      'conntrack_zone_flows',
      'conntrack_mark_flows',
      'conntrack_top_source_new_flows_per_second',
    ]) {
      assert.ok(series(name).length >= 1 && series(name).length <= 3, `${name}: ${series(name)}`);
    }
    assert.deepEqual(series('conntrack_top_source_flows'), [
      'conntrack_top_source_flows{family="ipv4",source="10.0.0.1"} 3',
      'conntrack_top_source_flows{family="ipv4",source="10.0.0.2"} 2',
      'conntrack_top_source_flows{source="other"} 4',
    ]);
    for (const id of [1, 5, 9]) table.apply('destroy', summary(destroyed(flow(id, { src: '10.0.0.1' }))));
    text = textFormat(await collect(registry));
    assert.deepEqual(series('conntrack_top_source_flows'), [
      'conntrack_top_source_flows{family="ipv4",source="10.0.0.2"} 2',
      'conntrack_top_source_flows{family="ipv4",source="10.0.0.3"} 2',
      'conntrack_top_source_flows{source="other"} 2',
    ]);
  });

  it('ranks several namespaces jointly: still K + 1 series, each with its namespace, the rest in other', async () => {
    const a = setup(2);
    const b = setup(2);
    const registry = new Registry();
    const scope = new FakeScope();
    scope.namespaces.push(
      new FakeNamespace({ netns: 'a' }, a.table, scripted([]), a.attribution),
      new FakeNamespace({ netns: 'b' }, b.table, scripted([]), b.attribution),
    );
    registerAttributionMetrics(registry, scope, a.attribution);
    // a: 10.0.0.1 x3, 10.0.0.2 x1; b: 10.0.0.1 x2 (the same address, another namespace), 10.0.0.9 x4.
    let id = 1;
    for (const src of ['10.0.0.1', '10.0.0.1', '10.0.0.1', '10.0.0.2'])
      a.table.apply('new', summary(flow(id++, { src })));
    for (const src of ['10.0.0.1', '10.0.0.1', '10.0.0.9', '10.0.0.9', '10.0.0.9', '10.0.0.9'])
      b.table.apply('new', summary(flow(id++, { src })));
    const series = textFormat(await collect(registry))
      .split('\n')
      .filter((l) => l.startsWith('conntrack_top_source_flows{'));
    assert.deepEqual(series, [
      'conntrack_top_source_flows{netns="b",family="ipv4",source="10.0.0.9"} 4',
      'conntrack_top_source_flows{netns="a",family="ipv4",source="10.0.0.1"} 3',
      'conntrack_top_source_flows{source="other"} 3',
    ]);
  });
});
