/**
 * The whole /metrics text for fixed inputs, compared byte for byte with a committed fixture. It
 * was captured from prom-client 15.1.3 before the switch to @prometheus-io/client, so it proves
 * the switch changed nothing a scraper sees. Regenerate only on purpose, after reading the diff:
 * `UPDATE_GOLDEN=1 node --test dist/test/unit/metrics/golden.test.js`.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { describe, it } from 'node:test';
import { NatTracking } from '../../../src/attribution/nat.js';
import { FlowMetrics } from '../../../src/metrics/flows.js';
import { ExporterMetrics } from '../../../src/metrics/metrics.js';
import { AF_INET6 } from '../../../src/netlink/nfnetlink.js';
import { ROOT } from '../../paths.js';
import { destroyed, icmp, tcp, to, translated, udp } from '../helpers/flows.js';
import { cpu, kernelSnapshot } from '../helpers/kernel.js';
import { defaultModeMetrics, FakeScope, scripted } from '../helpers/scope.js';
import { summary } from '../helpers/summary.js';

const FIXTURE = `${ROOT}test/fixtures/metrics.golden.prom`;

/** The two label values that depend on the machine, replaced by stable placeholders. */
function normalise(text: string): string {
  return text
    .replaceAll(`node_version="${process.version}"`, 'node_version="NODE"')
    .replaceAll(`kernel="${release()}"`, 'kernel="KERNEL"');
}

/** Two scrapes over a fixed table, fixed collector counters and a fake kernel. */
async function goldenText(): Promise<string> {
  const kernel = [
    kernelSnapshot(
      [
        cpu(0, { found: 10, insert: 4, drop: 1, early_drop: 0, expect_create: 2, expect_delete: 1 }),
        cpu(1, { found: 3, insert: 2, drop: 0xfffffffe, early_drop: 2 }),
      ],
      { entries: 8, accounting: 0 },
    ),
    kernelSnapshot(
      [
        cpu(0, { found: 12, insert: 5, drop: 1, early_drop: 0, expect_create: 3, expect_delete: 3 }),
        // CPU 1's drop counter wraps.
        cpu(1, { found: 3, insert: 3, drop: 1, early_drop: 2 }),
      ],
      { entries: 9, accounting: 0 },
    ),
  ];
  const portRange = { first: 40000, last: 40099 };
  const { clock, metrics, table, counters, scope } = defaultModeMetrics(scripted(kernel), {
    nat: { k: 2, portRange },
    natTracking: new NatTracking({ k: 2, portRange }),
  });
  scope.events.receiveBuffer = 33554432;

  table.apply('new', summary(tcp(1, 'SYN_SENT')));
  clock.advance(0.002);
  table.apply('update', summary(tcp(1, 'ESTABLISHED')));
  table.apply('new', summary(tcp(2, 'ESTABLISHED', AF_INET6)));
  table.apply('new', summary(udp(3, 'UNREPLIED')));
  table.apply('new', summary(icmp(4, 'UNREPLIED')));
  clock.advance(0.04);
  table.apply('update', summary(udp(3, 'REPLIED')));
  clock.advance(7);
  table.apply('destroy', summary(destroyed(udp(3, 'REPLIED'))));
  table.apply('new', summary(udp(5, 'ASSURED', AF_INET6)));
  // Translated: two flows source-NATed to one mapping, one through a service to a backend.
  for (const id of [6, 7]) {
    const f = to(udp(id, 'UNREPLIED'), '192.0.2.53', 53);
    table.apply('new', summary(translated(f, { snat: { address: '10.77.0.1', port: 40000 + id } })));
  }
  const service = to(tcp(8, 'SYN_SENT'), '10.96.0.10', 443);
  table.apply(
    'new',
    summary(
      translated(service, {
        snat: { address: '10.77.0.1', port: 40008 },
        dnat: { address: '10.2.0.5', port: 8443 },
      }),
    ),
  );
  counters.eventsNew = 8;
  counters.eventsUpdate = 2;
  counters.eventsDestroy = 1;
  counters.resyncs.startup = 1;
  counters.lastResync = 1_700_000_000;
  const first = await metrics.render();

  clock.advance(90);
  table.apply('update', summary(tcp(1, 'FIN_WAIT')));
  clock.advance(1);
  table.apply('destroy', summary(destroyed(tcp(1, 'FIN_WAIT'))));
  counters.eventsUpdate = 3;
  counters.eventsDestroy = 2;
  counters.overruns = 1;
  scope.events.lost = 17;
  counters.resyncs.overrun = 1;
  counters.decodeErrors = 2;
  counters.lastResync = 1_700_000_091;
  const second = await metrics.render();
  return normalise(`${first}\n# --- second scrape ---\n\n${second}`);
}

describe('/metrics golden output', () => {
  it('is byte for byte the committed fixture', async () => {
    const text = await goldenText();
    if (process.env['UPDATE_GOLDEN'] === '1') writeFileSync(FIXTURE, text);
    assert.equal(text, readFileSync(FIXTURE, 'utf8'));
  });
});

describe('/metrics process metrics', () => {
  it('has the committed metric families, HELP and TYPE (values vary by process)', async () => {
    const metrics = new ExporterMetrics({
      version: '1.2.3',
      scope: new FakeScope(),
      flows: new FlowMetrics(false),
      nat: { k: 10, portRange: { first: 1024, last: 65535 } },
    });
    const families = (await metrics.render())
      .split('\n')
      .filter((l) => l.startsWith('# HELP ') || l.startsWith('# TYPE '))
      .join('\n');
    const fixture = `${ROOT}test/fixtures/metrics.families.txt`;
    if (process.env['UPDATE_GOLDEN'] === '1') writeFileSync(fixture, `${families}\n`);
    assert.equal(`${families}\n`, readFileSync(fixture, 'utf8'));
  });
});
