/**
 * Truth within one scrape interval (issue 8), on the real kernel: flows the kernel sends no
 * events for (silent: created while no process listened, with nf_conntrack_events=2), restart
 * gaps, every protocol and state made with `conntrack -I`, and no drift-resync storm under churn.
 * The exporter runs with its default flags; "exact" means conntrack_flows equals `conntrack -L`
 * per (family, protocol, state), and must hold within 15 s (one scrape interval).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { SCTP_STATES, TCP_STATES } from '../../src/ctnetlink/states.js';
import { maxDriftResyncs } from '../support/drift.js';
import * as tool from './harness/conntrack-tool.js';
import { convergeWithin, resyncLines, silently } from './harness/converge.js';
import { ExporterProcess } from './harness/exporter.js';
import { Netns, TRACKING_RULESET, waitFor } from './harness/netns.js';

const WITHIN_MS = 15_000;

/** Measured convergence times, printed at the end for the record. */
const measured: string[] = [];
function record(what: string, ms: number): void {
  measured.push(`${what}: ${ms} ms`);
}

/** One `conntrack -I` entry, and what -U / -D later do to it. */
interface Entry {
  insert: string[];
  /** `conntrack -U` arguments (the tuple plus the change). */
  update?: string[];
  /** Deleted by the -D step. */
  remove?: boolean;
}

function tcp(src: string, dst: string, sport: number, state: string, extra: string[] = []): string[] {
  return [
    '-p',
    'tcp',
    '-s',
    src,
    '-d',
    dst,
    '--sport',
    `${sport}`,
    '--dport',
    '80',
    '--state',
    state,
    ...extra,
  ];
}

/** An unreplied UDP entry to port 53 that lives 10 minutes. */
function udp53(src: string, sport: number): string[] {
  return ['-p', 'udp', '-s', src, '-d', '10.0.53.53', '--sport', `${sport}`, '--dport', '53', '-t', '600'];
}

/**
 * Every protocol and state conntrack -I can make, IPv4 and IPv6, zones and marks; `base` keeps
 * the ports of two sets apart. SCTP HEARTBEAT_* are left out: conntrack 1.4.7 crashes on them.
 */
function everyKind(base: number): Entry[] {
  const out: Entry[] = [];
  const t = ['-t', '600'];
  let p = base;
  for (const state of TCP_STATES.slice(1)) {
    const port = p++;
    const entry: Entry = {
      insert: [...tcp('10.9.0.1', '10.9.0.2', port, state, ['-u', 'SEEN_REPLY']), ...t],
    };
    if (state === 'ESTABLISHED') entry.update = tcp('10.9.0.1', '10.9.0.2', port, 'TIME_WAIT');
    if (state === 'SYN_RECV') entry.update = tcp('10.9.0.1', '10.9.0.2', port, 'ESTABLISHED');
    if (state === 'CLOSE') entry.remove = true;
    out.push(entry);
  }
  const v6port = p++;
  out.push({
    insert: [...tcp('fd00::1', 'fd00::2', v6port, 'ESTABLISHED', ['-u', 'SEEN_REPLY,ASSURED']), ...t],
    update: tcp('fd00::1', 'fd00::2', v6port, 'FIN_WAIT'),
  });
  out.push({ insert: [...tcp('fd00::1', 'fd00::2', p++, 'SYN_SENT', ['-m', '42']), ...t], remove: true });
  for (const state of SCTP_STATES.filter((x) => x !== 'NONE' && !x.startsWith('HEARTBEAT'))) {
    out.push({
      insert: [
        ...['-p', 'sctp', '-s', '10.9.0.1', '-d', '10.9.0.2', '--sport', `${p++}`, '--dport', '80'],
        ...['--state', state, '--orig-vtag', '1', '--reply-vtag', '2', ...t],
      ],
      remove: state === 'COOKIE_WAIT',
    });
  }
  const udp = (proto: string, src: string, dst: string, port: number) =>
    ['-p', proto, '-s', src, '-d', dst, '--sport', `${port}`, '--dport', '53'] as string[];
  const unreplied = p++;
  out.push({
    insert: [...udp('udp', '10.9.0.1', '10.9.0.2', unreplied), ...t],
    update: [...udp('udp', '10.9.0.1', '10.9.0.2', unreplied), '-u', 'SEEN_REPLY,ASSURED'],
  });
  out.push({ insert: [...udp('udp', '10.9.0.1', '10.9.0.2', p++), '-u', 'SEEN_REPLY', ...t] });
  out.push({ insert: [...udp('udp', '10.9.0.1', '10.9.0.2', p++), '-u', 'SEEN_REPLY,ASSURED', ...t] });
  const v6udp = p++;
  out.push({
    insert: [...udp('udp', 'fd00::1', 'fd00::2', v6udp), ...t],
    update: [...udp('udp', 'fd00::1', 'fd00::2', v6udp), '-m', '7'],
  });
  // The same tuple in two zones: two entries.
  const zoned = p++;
  out.push({ insert: [...udp('udp', '10.9.0.1', '10.9.0.3', zoned), ...t] });
  out.push({ insert: [...udp('udp', '10.9.0.1', '10.9.0.3', zoned), '--zone', '7', ...t], remove: true });
  out.push({
    insert: [...tcp('10.9.0.1', '10.9.0.2', p++, 'ESTABLISHED', ['--zone', '7', '-m', '5']), ...t],
  });
  out.push({ insert: [...udp('udplite', '10.9.0.1', '10.9.0.2', p++), ...t], remove: true });
  out.push({ insert: [...udp('udplite', 'fd00::1', 'fd00::2', p++), '-u', 'SEEN_REPLY', ...t] });
  out.push({
    insert: ['-p', 'gre', '-s', '10.9.0.1', '-d', '10.9.0.2', '--srckey', `${p}`, '--dstkey', `${p++}`, ...t],
  });
  out.push({
    insert: ['-p', 'icmp', '-s', '10.9.0.1', '-d', '10.9.0.2', '--icmp-type', '8', '--icmp-code', '0'],
    remove: true,
  });
  out[out.length - 1]!.insert.push('--icmp-id', `${p++}`, ...t);
  out.push({
    insert: [
      ...['-p', 'icmpv6', '-s', 'fd00::1', '-d', 'fd00::2', '--icmpv6-type', '128', '--icmpv6-code', '0'],
      ...['--icmpv6-id', `${p++}`, ...t],
    ],
  });
  return out;
}

/** The -D arguments that delete exactly one inserted entry. */
function deleteArgs(e: Entry): string[] {
  const keep = new Set(['-p', '-s', '-d', '--sport', '--dport', '--zone', '--icmp-id', '--srckey']);
  const out: string[] = [];
  for (let i = 0; i < e.insert.length; i++) {
    const a = e.insert[i]!;
    if (keep.has(a)) out.push(a, e.insert[++i]!);
  }
  return out;
}

/** Tracking ruleset plus the flood's destination ports dropped on input (no ICMP errors back). */
const FLOOD_RULESET = TRACKING_RULESET.replace(
  'udp dport 9 drop',
  'udp dport 9 drop\n    udp dport 10000-59999 drop',
);

describe('silent flows: made before the exporter started', () => {
  let ns: Netns;
  let exp: ExporterProcess;
  let held: ChildProcess;

  before(async () => {
    ns = Netns.create('silent');
    await silently(ns, async () => {
      ns.traffic('tcp=127.0.0.1', 'tcp=::1', 'udp-noreply=127.0.0.1', 'udp-reply=::1');
      held = await ns.holdTraffic('hold=127.0.0.1', 'hold=::1');
      for (let i = 0; i < 40; i++) ns.run('conntrack', ['-I', ...udp53('10.8.0.1', 3000 + i)]);
      const assured = ['-u', 'SEEN_REPLY,ASSURED', '-t', '600'];
      for (let i = 0; i < 20; i++) {
        ns.run('conntrack', ['-I', ...tcp('10.8.0.1', '10.8.0.2', 4000 + i, 'ESTABLISHED', assured)]);
      }
    });
    exp = await ExporterProcess.start(ns); // default flags
  });

  after(async () => {
    await exp?.stop();
    ns?.delete();
  });

  it('counts them, and knows they are silent', async () => {
    const { scrape } = await convergeWithin(exp, ns, Date.now());
    assert.equal(scrape.value('conntrack_collector_silent_flows'), tool.count(ns));
    assert.equal(scrape.value('conntrack_kernel_event_mode'), 2);
  });

  it('update (state change, no count change): exact within 15 s', async () => {
    for (let i = 0; i < 5; i++)
      ns.run('conntrack', ['-U', ...tcp('10.8.0.1', '10.8.0.2', 4000 + i, 'TIME_WAIT')]);
    const { ms, scrape } = await convergeWithin(exp, ns, Date.now(), WITHIN_MS);
    record('update of silent flows (5 TCP ESTABLISHED -> TIME_WAIT)', ms);
    assert.equal(
      scrape.value('conntrack_flows', { family: 'ipv4', protocol: 'tcp', state: 'TIME_WAIT' }),
      5 + 1,
    );
  });

  it('delete: exact within 15 s', async () => {
    ns.run('conntrack', ['-D', '-p', 'udp', '-s', '10.8.0.1']);
    const { ms } = await convergeWithin(exp, ns, Date.now(), WITHIN_MS);
    record('delete of 40 silent UDP flows', ms);
  });

  it('flush: exact within 15 s, with nothing scraping meanwhile', async () => {
    held.kill('SIGKILL');
    await waitFor('the held connections to close', () =>
      held.exitCode !== null || held.signalCode !== null ? true : undefined,
    );
    const mark = exp.stdout.length;
    const t0 = Date.now();
    ns.run('conntrack', ['-F']);
    // No scrape until the exporter has re-dumped an empty table by itself (drift timer or
    // silent schedule): only its log is watched.
    await waitFor(
      'a resync that sees the flush',
      () => (resyncLines(exp, mark).some((l) => l.flows <= tool.count(ns)) ? true : undefined),
      WITHIN_MS,
    );
    record('flush (conntrack -F), no scrapes meanwhile', Date.now() - t0);
    const { scrape } = await convergeWithin(exp, ns, t0, WITHIN_MS);
    assert.equal(scrape.value('conntrack_collector_silent_flows'), 0);
  });
});

describe('silent flows with the silent re-dumps off: the drift check alone', () => {
  let ns: Netns;
  let exp: ExporterProcess;
  before(async () => {
    ns = Netns.create('drift');
    await silently(ns, () => {
      for (let i = 0; i < 30; i++) ns.run('conntrack', ['-I', ...udp53('10.7.0.1', 3000 + i)]);
    });
    exp = await ExporterProcess.start(ns, ['--resync.silent-interval=0']);
  });
  after(async () => {
    await exp?.stop();
    ns?.delete();
  });

  it('a mass delete that sends no events is found by the drift check within 15 s, no scrape needed', async () => {
    const mark = exp.stdout.length;
    const t0 = Date.now();
    ns.run('conntrack', ['-D', '-p', 'udp', '--sport', '3000', '-s', '10.7.0.1']);
    ns.run('conntrack', ['-D', '-p', 'udp', '-s', '10.7.0.1', '--sport', '3001']);
    for (let i = 2; i < 20; i++)
      ns.run('conntrack', ['-D', '-p', 'udp', '-s', '10.7.0.1', '--sport', `${3000 + i}`]);
    await waitFor(
      'a drift resync',
      () => (resyncLines(exp, mark).some((l) => l.reason === 'drift') ? true : undefined),
      WITHIN_MS,
    );
    record('mass delete (20 silent flows), drift check alone, no scrapes', Date.now() - t0);
    const { scrape } = await convergeWithin(exp, ns, t0, WITHIN_MS);
    assert.equal(scrape.value('conntrack_collector_resyncs_total', { reason: 'drift' }), 1);
    assert.equal(scrape.value('conntrack_collector_resyncs_total', { reason: 'silent' }), 0);
    assert.equal(scrape.value('conntrack_collector_table_drift'), 0);
  });
});

describe('restart gap: flows made while the exporter is down', () => {
  let ns: Netns;
  let exp: ExporterProcess;
  let held: ChildProcess;
  before(async () => {
    ns = Netns.create('gap');
    exp = await ExporterProcess.start(ns);
  });
  after(async () => {
    await exp?.stop();
    ns?.delete();
  });

  it('closing and deleting them after the restart: exact within 15 s', async () => {
    ns.traffic('tcp=127.0.0.1', 'udp-reply=127.0.0.1'); // seen with events by the first exporter
    await convergeWithin(exp, ns, Date.now());
    await exp.stop();
    // The gap: connections opened and held, entries inserted, while nobody listens.
    await silently(ns, async () => {
      held = await ns.holdTraffic('hold=127.0.0.1', 'hold=::1');
      for (let i = 0; i < 10; i++) {
        ns.run('conntrack', ['-I', ...tcp('10.6.0.1', '10.6.0.2', 5000 + i, 'ESTABLISHED'), '-t', '600']);
      }
    });
    exp = await ExporterProcess.start(ns);
    const first = await convergeWithin(exp, ns, Date.now());
    assert.equal(
      first.scrape.value('conntrack_flows', { family: 'ipv4', protocol: 'tcp', state: 'ESTABLISHED' }),
      11,
    );
    assert.ok(first.scrape.value('conntrack_collector_silent_flows') >= 12);

    // Close the held connections (state changes only) and delete the inserted entries.
    held.kill('SIGKILL');
    const t0 = Date.now();
    ns.run('conntrack', ['-D', '-p', 'tcp', '-s', '10.6.0.1']);
    const { ms, scrape } = await convergeWithin(exp, ns, t0, WITHIN_MS);
    record('restart gap: held connections closed + 10 entries deleted', ms);
    assert.equal(
      scrape.value('conntrack_flows', { family: 'ipv4', protocol: 'tcp', state: 'ESTABLISHED' }),
      0,
    );
  });
});

describe('every protocol and state via conntrack -I, before and after start, then -U and -D', () => {
  let ns: Netns;
  let exp: ExporterProcess;
  const before_ = everyKind(20_000);
  const after_ = everyKind(30_000);
  before(async () => {
    ns = Netns.create('kinds');
    await silently(ns, () => {
      for (const e of before_) ns.run('conntrack', ['-I', ...e.insert]);
    });
    exp = await ExporterProcess.start(ns);
  });
  after(async () => {
    await exp?.stop();
    ns?.delete();
  });

  it('inserted before and after start: equal to conntrack -L', async () => {
    for (const e of after_) ns.run('conntrack', ['-I', ...e.insert]);
    const { ms, scrape } = await convergeWithin(exp, ns, Date.now(), WITHIN_MS);
    record(`conntrack -I of ${after_.length} entries after start (${before_.length} before)`, ms);
    assert.equal(tool.count(ns), before_.length + after_.length);
    assert.equal(scrape.value('conntrack_collector_silent_flows'), before_.length);
    for (const [protocol, n] of [
      ['sctp', 14],
      ['udplite', 4],
      ['gre', 2],
      ['icmp', 2],
      ['icmpv6', 2],
    ] as const) {
      assert.equal(scrape.sum('conntrack_flows', { protocol }), n, protocol);
    }
  });

  it('conntrack -U: equal to conntrack -L within 15 s', async () => {
    for (const e of [...before_, ...after_]) if (e.update) ns.run('conntrack', ['-U', ...e.update]);
    const { ms } = await convergeWithin(exp, ns, Date.now(), WITHIN_MS);
    record('conntrack -U of both sets', ms);
  });

  it('conntrack -D: equal to conntrack -L within 15 s', async () => {
    const removed = [...before_, ...after_].filter((e) => e.remove);
    for (const e of removed) ns.run('conntrack', ['-D', ...deleteArgs(e)]);
    const { ms } = await convergeWithin(exp, ns, Date.now(), WITHIN_MS);
    record('conntrack -D of both sets', ms);
    assert.equal(tool.count(ns), before_.length + after_.length - removed.length);
  });
});

describe('no drift-resync storm under sustained churn', () => {
  let ns: Netns;
  let exp: ExporterProcess;
  before(async () => {
    ns = Netns.create('churn', FLOOD_RULESET);
    exp = await ExporterProcess.start(ns);
  });
  after(async () => {
    await exp?.stop();
    ns?.delete();
  });

  it('a UDP NEW flood filling the table: drift resyncs stay within the rate limit', async (t) => {
    const s0 = exp.scrape();
    const drift0 = s0.value('conntrack_collector_resyncs_total', { reason: 'drift' });
    // CTX_CHURN_SECONDS / CTX_CHURN_RATE make a longer or slower run for measurements.
    const SECONDS = Number(process.env['CTX_CHURN_SECONDS'] ?? 30);
    const RATE = Number(process.env['CTX_CHURN_RATE'] ?? 200_000);
    const t0 = Date.now();
    const flood = ns.spawnNode('test/integration/harness/flood.js', [`${SECONDS}`, `${RATE}`]);
    let out = '';
    flood.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    // Scrape every 5 s meanwhile, as a Prometheus would: scrapes feed the drift check too.
    const scrapes: number[] = [];
    while (flood.exitCode === null) {
      await new Promise((r) => setTimeout(r, 5000));
      scrapes.push(exp.scrape().value('conntrack_entries'));
    }
    const seconds = (Date.now() - t0) / 1000;
    const s = exp.scrape();
    const events =
      s.value('conntrack_events_total', { event: 'new' }) +
      s.value('conntrack_events_total', { event: 'destroy' });
    const drift = s.value('conntrack_collector_resyncs_total', { reason: 'drift' }) - drift0;
    const overrun = s.value('conntrack_collector_resyncs_total', { reason: 'overrun' });
    const lost = s.value('conntrack_collector_events_lost_total');
    const sent = JSON.parse(out) as { sent: number; rate: number };
    const line = `churn ${seconds.toFixed(0)} s: ${Math.round(sent.rate)} datagrams/s sent, ${Math.round(events / seconds)} events/s received, ${Math.round(lost / seconds)} events/s lost, entries at scrapes ${scrapes.join(' ')}; drift resyncs ${drift} (${((drift * 60) / seconds).toFixed(1)}/min), overrun resyncs ${overrun}`;
    t.diagnostic(line);
    measured.push(line);
    assert.ok(sent.sent > 100_000, 'the flood ran');
    assert.ok(drift <= maxDriftResyncs(seconds), `${drift} drift resyncs in ${seconds} s`);
    // After the churn: flush and converge.
    ns.run('conntrack', ['-F']);
    await convergeWithin(exp, ns, Date.now(), WITHIN_MS);
  });
});

after(() => {
  if (measured.length > 0)
    process.stdout.write(`# measured:\n${measured.map((m) => `#   ${m}`).join('\n')}\n`);
});
