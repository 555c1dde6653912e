/**
 * Who fills the table, on the real kernel (issue 9): flows from many sources (sockets bound to
 * distinct 127.x.y.z and IPv6 addresses, and entries made with `conntrack -I` in several zones
 * and with several marks); the exporter's top K and remainders must equal what `conntrack -L`
 * lists at the same moment, also after sources go away and after a flush.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { formatIPv6, parseAddress } from '../../src/ctnetlink/address.js';
import * as tool from './harness/conntrack-tool.js';
import { ExporterProcess } from './harness/exporter.js';
import { Netns, waitFor } from './harness/netns.js';
import type { Sample, Scrape } from './harness/promtext.js';

const K = 4;

/** The source label the exporter should give `src` with the default prefixes (/32, /64). */
function sourceKey(f: tool.ToolFlow): string {
  if (f.family === 'ipv4') return `ipv4 ${f.src}`;
  const a = parseAddress(f.src);
  a.fill(0, 8);
  return `ipv6 ${formatIPv6(a, 0)}/64`;
}

function destinationKey(f: tool.ToolFlow): string {
  const port = f.protocol === 'icmp' || f.protocol === 'icmpv6' ? f.icmpType : f.dport;
  return `${f.family} ${f.protocol} ${f.dst} ${port}`;
}

interface Dimension {
  metric: string;
  /** The label that carries "other" in the remainder series. */
  other: string;
  /** The oracle's key of a flow, and the same key from a series' labels. */
  ofFlow: (f: tool.ToolFlow) => string;
  ofLabels: (l: Record<string, string>) => string;
}

const DIMENSIONS: Dimension[] = [
  {
    metric: 'conntrack_top_source_flows',
    other: 'source',
    ofFlow: sourceKey,
    ofLabels: (l) => `${l['family']} ${l['source']}`,
  },
  {
    metric: 'conntrack_top_destination_flows',
    other: 'destination',
    ofFlow: destinationKey,
    ofLabels: (l) => `${l['family']} ${l['protocol']} ${l['destination']} ${l['port']}`,
  },
  {
    metric: 'conntrack_zone_flows',
    other: 'zone',
    ofFlow: (f) => String(f.zone ?? 0),
    ofLabels: (l) => l['zone']!,
  },
  {
    metric: 'conntrack_mark_flows',
    other: 'mark',
    ofFlow: (f) => String(f.mark ?? 0),
    ofLabels: (l) => l['mark']!,
  },
];

/**
 * What is wrong with one dimension of a scrape against conntrack -L's flows, or undefined: at
 * most K series, each equal to the count of its key, none outranked by a key left out, and a
 * remainder that makes the sum the number of flows.
 */
function mismatch(
  d: Dimension,
  s: Scrape,
  flows: readonly tool.ToolFlow[],
  netns?: string,
): string | undefined {
  const counts = new Map<string, number>();
  for (const f of flows) counts.set(d.ofFlow(f), (counts.get(d.ofFlow(f)) ?? 0) + 1);
  const series = s.all(d.metric);
  const rest = series.filter((x) => x.labels[d.other] === 'other');
  if (netns !== undefined) return jointMismatch(d, series, rest, counts, netns);
  const top = series.filter((x) => x.labels[d.other] !== 'other');
  const show = (xs: Sample[]) => JSON.stringify(xs.map((x) => [d.ofLabels(x.labels), x.value]));
  const context = `${d.metric}: exporter ${show(series)}; conntrack -L ${JSON.stringify([...counts])}`;
  if (rest.length !== 1) return `${context}: ${rest.length} remainder series`;
  if (top.length !== Math.min(K, counts.size)) return `${context}: ${top.length} top series`;
  for (const x of top) {
    if (counts.get(d.ofLabels(x.labels)) !== x.value) return `${context}: ${d.ofLabels(x.labels)} differs`;
  }
  const shown = new Set(top.map((x) => d.ofLabels(x.labels)));
  const least = Math.min(...top.map((x) => x.value));
  for (const [k, n] of counts) if (!shown.has(k) && n > least) return `${context}: ${k} (${n}) left out`;
  const sum = top.reduce((n, x) => n + x.value, 0);
  if (rest[0]!.value !== flows.length - sum) return `${context}: remainder ${rest[0]!.value}`;
  return undefined;
}

/**
 * --netns.all ranks every namespace on the machine together: the series of `netns` equal its
 * counts, none of its keys left out outranks a series shown, K series and one remainder in all.
 */
function jointMismatch(
  d: Dimension,
  series: Sample[],
  rest: Sample[],
  counts: Map<string, number>,
  netns: string,
): string | undefined {
  const top = series.filter((x) => x.labels[d.other] !== 'other');
  const ours = top.filter((x) => x.labels['netns'] === netns);
  const context = `${d.metric} in ${netns}: exporter ${JSON.stringify(ours.map((x) => [d.ofLabels(x.labels), x.value]))}; conntrack -L ${JSON.stringify([...counts])}`;
  if (rest.length !== 1 || rest[0]!.labels['netns'] !== undefined)
    return `${context}: remainder ${JSON.stringify(rest)}`;
  if (top.length > K) return `${context}: ${top.length} top series`;
  for (const x of ours) {
    if (counts.get(d.ofLabels(x.labels)) !== x.value) return `${context}: ${d.ofLabels(x.labels)} differs`;
  }
  const shown = new Set(ours.map((x) => d.ofLabels(x.labels)));
  const least = top.length < K ? 0 : Math.min(...top.map((x) => x.value));
  for (const [k, n] of counts) if (!shown.has(k) && n > least) return `${context}: ${k} (${n}) left out`;
  return undefined;
}

/** Waits until every dimension agrees with conntrack -L; returns that scrape and listing. */
async function agreed(
  exp: ExporterProcess,
  ns: Netns,
  netns?: string,
): Promise<{ s: Scrape; flows: tool.ToolFlow[] }> {
  let last: string | undefined;
  try {
    return await waitFor('the top K to equal conntrack -L', () => {
      const s = exp.scrape();
      const flows = tool.listFlows(ns);
      last = DIMENSIONS.map((d) => mismatch(d, s, flows, netns)).find((m) => m !== undefined);
      return last === undefined ? { s, flows } : undefined;
    });
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${last}`);
  }
}

/** `conntrack -I` for each line of arguments, in one shell. */
function insert(ns: Netns, entries: string[]): void {
  ns.run('sh', ['-ec', entries.map((e) => `conntrack -I ${e} -t 600`).join('\n')]);
}

/**
 * Real sockets: 127.1.0.n sends n datagrams (n flows); IPv6 from two addresses of one /64 (2 + 3
 * flows: one row at /64) and from another /64 (4 flows).
 */
function socketSends(): string[] {
  const sends: string[] = [];
  for (let n = 1; n <= 5; n++) for (let i = 0; i < n; i++) sends.push(`udp-from=127.1.0.${n}`);
  for (const [a, n] of [
    ['fd00:1::1', 2],
    ['fd00:1::2', 3],
    ['fd00:2::1', 4],
  ] as const) {
    for (let i = 0; i < n; i++) sends.push(`udp-from=${a}`);
  }
  return sends;
}

/** conntrack -I: 10.0.1.n makes n + 1 flows to a few services, in zones n % 3, marks 10 * (n % 4). */
function insertedEntries(): string[] {
  const entries: string[] = [];
  for (let n = 1; n <= 8; n++) {
    for (let i = 0; i <= n; i++) {
      const dport = [80, 443, 53][i % 3];
      const zone = n % 3 === 0 ? '' : `--zone ${n % 3}`;
      const mark = n % 4 === 0 ? '' : `--mark ${10 * (n % 4)}`;
      entries.push(
        `-s 10.0.1.${n} -d 10.9.0.${1 + (i % 2)} -p tcp --sport ${1000 + i} --dport ${dport} --state SYN_SENT ${zone} ${mark}`,
      );
    }
  }
  entries.push('-s 10.0.2.1 -d 10.9.0.9 -p icmp --icmp-type 8 --icmp-code 0 --icmp-id 7 --zone 5 --mark 99');
  return entries;
}

/** A namespace for socketSends(): its IPv6 sources, and UDP flows that outlive the test. */
function prepared(tag: string): Netns {
  const ns = Netns.create(tag);
  // Unreplied UDP flows would expire after 30 s, in the middle of the test (per namespace).
  ns.run('sysctl', ['-qw', 'net.netfilter.nf_conntrack_udp_timeout=600']);
  for (const a of ['fd00:1::1', 'fd00:1::2', 'fd00:2::1']) {
    ns.run('ip', ['-6', 'addr', 'add', `${a}/128`, 'dev', 'lo', 'nodad']);
  }
  return ns;
}

describe('who fills the table, against conntrack -L', () => {
  let ns: Netns;
  let exp: ExporterProcess;

  before(async () => {
    ns = prepared('topk');
    // Found by the start-up dump: in the table, but not created while the exporter watched.
    insert(
      ns,
      [1, 2, 3].map((i) => `-s 10.0.0.100 -d 10.9.0.1 -p tcp --sport ${i} --dport 22 --state ESTABLISHED`),
    );
    // They send no events (nf_conntrack_events=2): re-dumps every second see them go.
    exp = await ExporterProcess.start(ns, [`--top.k=${K}`, '--resync.silent-interval=1s']);
  });

  after(async () => {
    await exp?.stop();
    ns?.delete();
  });

  it('ranks sources, destinations, zones and marks as conntrack -L counts them', async () => {
    ns.traffic(...socketSends());
    insert(ns, insertedEntries());
    const { s, flows } = await agreed(exp, ns);
    // 3 found at start-up, 15 + 9 from sockets, 44 + 1 inserted.
    assert.equal(flows.length, 72);
    assert.equal(s.sum('conntrack_top_source_flows'), s.sum('conntrack_flows'), 'the stack adds up');
    // The ranking is the one the setup makes: 10.0.1.8 (9 flows), 10.0.1.7 (8), ...
    assert.deepEqual(
      s.all('conntrack_top_source_flows').map((x) => x.labels['source']),
      ['10.0.1.8', '10.0.1.7', '10.0.1.6', '10.0.1.5', 'other'],
    );
    assert.equal(s.value('conntrack_top_source_flows', { source: '10.0.1.8' }), 9);
    const v6 = tool.listFlows(ns).filter((f) => f.src.startsWith('fd00:1::')).length;
    assert.equal(v6, 5, 'two IPv6 sources in fd00:1::/64');
    // The dump found 10.0.0.100's flows: no creation of them was seen.
    const creators = s.all('conntrack_top_source_new_flows_per_second');
    assert.ok(creators.length <= K + 1);
    assert.equal(creators[0]?.labels['source'], '10.0.1.8', 'the fastest creator first');
    assert.ok(!creators.some((x) => x.labels['source'] === '10.0.0.100'));
    assert.ok(creators.every((x) => x.value >= 0));
  });

  it('a source that goes away leaves the ranking at the next scrape', async () => {
    ns.run('conntrack', ['-D', '-s', '10.0.1.8']);
    ns.run('conntrack', ['-D', '-s', '10.0.1.7']);
    const { s } = await agreed(exp, ns);
    const sources = s.all('conntrack_top_source_flows').map((x) => x.labels['source']);
    assert.ok(!sources.includes('10.0.1.8') && !sources.includes('10.0.1.7'), `${sources}`);
    assert.equal(s.value('conntrack_top_source_flows', { source: '10.0.1.6' }), 7);
  });

  it('after conntrack -F only the remainders are left, at 0', async () => {
    ns.run('conntrack', ['-F']);
    const { s, flows } = await agreed(exp, ns);
    assert.equal(flows.length, 0);
    for (const d of DIMENSIONS) {
      assert.deepEqual(
        s.all(d.metric).map((x) => [x.labels, x.value]),
        [[{ [d.other]: 'other' }, 0]],
        d.metric,
      );
    }
  });
});

describe('who fills the table under --netns.all: a second namespace against conntrack -L there', () => {
  let home: Netns;
  let ns: Netns;
  let exp: ExporterProcess;

  before(async () => {
    home = Netns.create('topk-home');
    ns = prepared('topk-other');
    exp = await ExporterProcess.start(home, ['--netns.all', '--netns.scan-interval=1s', `--top.k=${K}`]);
  });

  after(async () => {
    await exp?.stop();
    ns?.delete();
    home?.delete();
  });

  it("ranks the namespace's sources, destinations, zones and marks as conntrack -L there counts them", async () => {
    ns.traffic(...socketSends());
    insert(ns, insertedEntries());
    const { s, flows } = await agreed(exp, ns, ns.name);
    assert.equal(flows.length, 69);
    // Other namespaces on the machine are ranked too; ours has the largest sources here.
    const ours = s.all('conntrack_top_source_flows').filter((x) => x.labels['netns'] === ns.name);
    assert.ok(ours.length >= 1, 'its sources are labelled with its namespace');
    for (const d of DIMENSIONS)
      assert.ok(s.all(d.metric).length <= K + 1, `${d.metric}: at most K + 1 series in all`);
  });
});

describe('--top.k=0', () => {
  it('exports no attribution series at all', async () => {
    const ns = Netns.create('topk0');
    try {
      const exp = await ExporterProcess.start(ns, ['--top.k=0']);
      try {
        ns.traffic('udp-from=127.1.0.1', 'udp-from=127.1.0.2');
        const s = await waitFor('the flows to be counted', () => {
          const s = exp.scrape();
          return s.sum('conntrack_flows') === 2 ? s : undefined;
        });
        const names = new Set(s.samples.map((x) => x.name));
        for (const d of DIMENSIONS) assert.ok(!names.has(d.metric), d.metric);
        assert.ok(!names.has('conntrack_top_source_new_flows_per_second'));
      } finally {
        await exp.stop();
      }
    } finally {
      ns.delete();
    }
  });
});
