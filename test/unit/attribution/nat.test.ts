/**
 * NAT tracking beside the shadow table: the decoder reads reply tuples of translated flows only,
 * flows count by translation, every source NAT mapping is counted (so the highest utilisation is
 * exact), the destination NAT pairs are ranked, rows that move or go keep every count right, and
 * a memory budget that refuses a key leaves the totals exact (the flow counts in the remainder).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from '@prometheus-io/client';
import type { GrowthBudget } from '../../../src/attribution/interner.js';
import { NatTracking } from '../../../src/attribution/nat.js';
import { textFormat } from '../../../src/metrics/exposition/text.js';
import { collect } from '../../../src/metrics/family.js';
import { registerNatMetrics } from '../../../src/metrics/nat.js';
import { AF_INET6 } from '../../../src/netlink/nfnetlink.js';
import { ShadowTable } from '../../../src/table/table.js';
import type { Flow } from '../../support/codec/flow.js';
import { destroyed, FakeClock, icmp, tcp, to, translated, udp } from '../helpers/flows.js';
import { FakeNamespace, FakeScope, scripted } from '../helpers/scope.js';
import { summary } from '../helpers/summary.js';

const RANGE = { first: 40000, last: 40099 };
const NAT_ADDRESS = '10.77.0.1';

/** A UDP flow from the client's port `id` to `server`:53, source-NATed to NAT_ADDRESS:(40000 + id). */
function snatUdp(id: number, server = '192.0.2.10', port = 53): Flow {
  const f = to(udp(id, 'UNREPLIED'), server, port);
  f.orig!.src = '10.1.0.2';
  return translated(f, { snat: { address: NAT_ADDRESS, port: 40000 + (id % 100) } });
}

function tracked(k = 10, growth?: GrowthBudget) {
  const nat = new NatTracking({ k, portRange: RANGE, growth });
  const table = new ShadowTable(
    { transition() {}, stateLeft() {}, flowEnded() {} },
    new FakeClock().read,
    nat,
  );
  return { nat, table };
}

const counts = (nat: NatTracking) =>
  Object.fromEntries(nat.groups().map((g) => [`${g.family}/${g.protocol}/${g.nat}`, g.count]));

describe('the decoder and translated flows', () => {
  it('reads the reply tuple only when the status says the flow is translated', () => {
    const plain = udp(1, 'UNREPLIED');
    plain.reply = { ...plain.orig!, src: plain.orig!.dst, dst: plain.orig!.src };
    assert.equal(summary(plain).replySrcAt, -1);

    const s = summary(
      translated(to(udp(2, 'UNREPLIED'), '192.0.2.10', 53), { snat: { address: NAT_ADDRESS, port: 40007 } }),
    );
    assert.deepEqual(
      [s.buf.subarray(s.replySrcAt, s.replySrcAt + 4), s.buf.subarray(s.replyDstAt, s.replyDstAt + 4)],
      [Buffer.from([192, 0, 2, 10]), Buffer.from([10, 77, 0, 1])],
    );
    assert.deepEqual([s.replySrcPort, s.replyDstPort], [53, 40007]);
  });
});

describe('NatTracking', () => {
  it('counts flows by translation; untranslated flows leave no per-row data', () => {
    const { nat, table } = tracked();
    table.apply('new', summary(tcp(1, 'SYN_SENT')));
    const before = nat.bytes;
    table.apply('new', summary(snatUdp(2)));
    assert.ok(nat.bytes > before, 'the per-row columns appear with the first translated flow');
    table.apply(
      'new',
      summary(
        translated(to(tcp(3, 'SYN_SENT'), '10.96.0.10', 443), { dnat: { address: '10.2.0.5', port: 8443 } }),
      ),
    );
    table.apply(
      'new',
      summary(
        translated(to(tcp(4, 'SYN_SENT'), '10.96.0.10', 443), {
          snat: { address: NAT_ADDRESS, port: 40001 },
          dnat: { address: '10.2.0.6', port: 8443 },
        }),
      ),
    );
    assert.deepEqual(counts(nat), { 'ipv4/udp/snat': 1, 'ipv4/tcp/dnat': 1, 'ipv4/tcp/snat_dnat': 1 });
    table.apply('destroy', summary(destroyed(snatUdp(2))));
    assert.deepEqual(counts(nat), { 'ipv4/udp/snat': 0, 'ipv4/tcp/dnat': 1, 'ipv4/tcp/snat_dnat': 1 });
  });

  it('counts every mapping: the top K, the rest, and the fullest over all of them', () => {
    const { nat, table } = tracked(1);
    for (let id = 1; id <= 30; id++) table.apply('new', summary(snatUdp(id, '192.0.2.10')));
    for (let id = 31; id <= 100; id++) table.apply('new', summary(snatUdp(id, '192.0.2.20')));
    const r = nat.topSnatMappings();
    assert.deepEqual(r.top, [
      {
        labels: {
          family: 'ipv4',
          protocol: 'udp',
          nat_source: NAT_ADDRESS,
          destination: '192.0.2.20',
          port: '53',
        },
        value: 70,
      },
    ]);
    assert.equal(r.other, 30);
    assert.equal(nat.maxMappingFlows(), 70);
    assert.equal(nat.mappingCount, 2);
    // The fullest mapping empties: the maximum follows at once, though it is not in the top.
    for (let id = 31; id <= 100; id++) table.apply('destroy', summary(destroyed(snatUdp(id, '192.0.2.20'))));
    assert.equal(nat.maxMappingFlows(), 30);
    for (let id = 1; id <= 30; id++) table.apply('destroy', summary(destroyed(snatUdp(id, '192.0.2.10'))));
    assert.equal(nat.maxMappingFlows(), 0);
    assert.equal(nat.mappingCount, 0);
  });

  it('keeps each row its mapping when rows move (a removed row is filled by the last)', () => {
    const { nat, table } = tracked();
    table.apply('new', summary(snatUdp(1, '192.0.2.10')));
    table.apply('new', summary(tcp(2, 'SYN_SENT')));
    table.apply('new', summary(snatUdp(3, '192.0.2.20')));
    table.apply('destroy', summary(destroyed(snatUdp(1, '192.0.2.10'))));
    table.apply('destroy', summary(destroyed(tcp(2, 'SYN_SENT'))));
    assert.deepEqual(
      nat.topSnatMappings().top.map((t) => [t.labels.destination, t.value]),
      [['192.0.2.20', 1]],
    );
    table.apply('destroy', summary(destroyed(snatUdp(3, '192.0.2.20'))));
    assert.deepEqual(nat.topSnatMappings(), { top: [], other: 0 });
    assert.deepEqual(counts(nat), { 'ipv4/udp/snat': 0 });
  });

  it('ranks destination NAT pairs: which backends hold a service address', () => {
    const { nat, table } = tracked();
    const service = (id: number, backend: string) =>
      summary(
        translated(to(tcp(id, 'SYN_SENT'), '10.96.0.10', 443), { dnat: { address: backend, port: 8443 } }),
      );
    for (let id = 1; id <= 3; id++) table.apply('new', service(id, '10.2.0.5'));
    table.apply('new', service(4, '10.2.0.6'));
    const ping = translated(icmp(5, 'UNREPLIED'), { dnat: { address: '10.2.0.7', port: 0 } });
    ping.orig!.dst = '10.96.0.11';
    table.apply('new', summary(ping));
    assert.deepEqual(nat.topDnat(), {
      top: [
        {
          labels: {
            family: 'ipv4',
            protocol: 'tcp',
            destination: '10.96.0.10',
            port: '443',
            translated_destination: '10.2.0.5',
            translated_port: '8443',
          },
          value: 3,
        },
        {
          labels: {
            family: 'ipv4',
            protocol: 'tcp',
            destination: '10.96.0.10',
            port: '443',
            translated_destination: '10.2.0.6',
            translated_port: '8443',
          },
          value: 1,
        },
        {
          // ICMP: the type, no translated port (an echo id is no port).
          labels: {
            family: 'ipv4',
            protocol: 'icmp',
            destination: '10.96.0.11',
            port: '8',
            translated_destination: '10.2.0.7',
          },
          value: 1,
        },
      ],
      other: 0,
    });
  });

  it('IPv6 mappings carry IPv6 addresses', () => {
    const { nat, table } = tracked();
    const f = to(udp(1, 'UNREPLIED', AF_INET6), '2001:db8::10', 53);
    table.apply('new', summary(translated(f, { snat: { address: '2001:db8::1', port: 40000 } })));
    assert.deepEqual(nat.topSnatMappings().top[0]?.labels, {
      family: 'ipv6',
      protocol: 'udp',
      nat_source: '2001:db8::1',
      destination: '2001:db8::10',
      port: '53',
    });
  });

  it('a budget that refuses new keys leaves totals exact: the flows count in the remainder', () => {
    let room = Number.POSITIVE_INFINITY;
    const growth: GrowthBudget = { headroom: () => room, spent() {}, exhausted() {} };
    const { nat, table } = tracked(1, growth);
    // 256 mappings fill the interner's first arrays; then no growth is allowed.
    room = 0;
    for (let id = 1; id <= 300; id++)
      table.apply('new', summary(snatUdp(id, `192.0.${id >> 8}.${id & 255}`)));
    assert.equal(nat.unattributed.snat_mapping, 300 - 256);
    const r = nat.topSnatMappings();
    assert.equal(r.top.length + r.other, 300, 'every flow is in the top or the remainder');
    for (let id = 1; id <= 300; id++)
      table.apply('destroy', summary(destroyed(snatUdp(id, `192.0.${id >> 8}.${id & 255}`))));
    assert.deepEqual(nat.topSnatMappings(), { top: [], other: 0 });
  });
});

describe('NAT metrics', () => {
  it('untranslated flows show as nat="none"; utilisation is flows over the port range', async () => {
    const { nat, table } = tracked(2);
    const scope = new FakeScope();
    scope.namespaces.push(new FakeNamespace({}, table, scripted([]), undefined, nat));
    const registry = new Registry();
    registerNatMetrics(registry, scope, { k: 2, portRange: RANGE });
    table.apply('new', summary(tcp(1, 'SYN_SENT')));
    for (let id = 2; id <= 51; id++) table.apply('new', summary(snatUdp(id)));
    const text = textFormat(await collect(registry));
    const value = (series: string) => {
      const line = text.split('\n').find((l) => l.startsWith(`${series} `));
      return line === undefined ? undefined : Number(line.slice(series.length + 1));
    };
    assert.equal(value('conntrack_nat_flows{family="ipv4",protocol="tcp",nat="none"}'), 1);
    assert.equal(value('conntrack_nat_flows{family="ipv4",protocol="udp",nat="none"}'), 0);
    assert.equal(value('conntrack_nat_flows{family="ipv4",protocol="udp",nat="snat"}'), 50);
    assert.equal(value('conntrack_snat_port_utilisation_max_ratio'), 0.5);
    assert.equal(
      value(
        'conntrack_top_snat_mapping_port_utilisation_ratio{family="ipv4",protocol="udp",nat_source="10.77.0.1",destination="192.0.2.10",port="53"}',
      ),
      0.5,
    );
    assert.equal(value('conntrack_top_snat_mapping_flows{nat_source="other"}'), 0);
    assert.equal(value('conntrack_top_dnat_flows{destination="other"}'), 0);
  });
});
