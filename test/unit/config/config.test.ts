import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { DEFAULT_PORT, FLAGS, parseConfig, usage } from '../../../src/config.js';
import { ConntrackError } from '../../../src/errors.js';
import { ROOT } from '../../paths.js';

function configError(argv: string[]): ConntrackError {
  try {
    parseConfig(argv);
  } catch (err) {
    assert.ok(err instanceof ConntrackError, `expected ConntrackError, got ${String(err)}`);
    assert.equal(err.code, 'CT_ERR_CONFIG');
    return err;
  }
  assert.fail(`expected ${argv.join(' ')} to be rejected`);
}

describe('parseConfig', () => {
  it('defaults', () => {
    const c = parseConfig([]);
    assert.deepEqual(c.listen, [{ host: '::', port: DEFAULT_PORT }]);
    assert.equal(c.webConfigFile, undefined);
    assert.notEqual(DEFAULT_PORT, 9100);
    assert.notEqual(DEFAULT_PORT, 9318);
    assert.notEqual(DEFAULT_PORT, 9371);
    assert.equal(c.telemetryPath, '/metrics');
    assert.equal(c.webMaxRequests, 40, "node_exporter's --web.max-requests default");
    assert.equal(c.logLevel, 'info');
    assert.equal(c.logFormat, 'json');
    assert.equal(c.rcvbuf, 16 * 1024 * 1024);
    assert.equal(c.resyncIntervalMs, 0);
    assert.equal(c.silentResyncMs, 5_000);
    assert.deepEqual([c.topK, c.topSourcePrefixV4, c.topSourcePrefixV6], [10, 32, 64]);
    assert.equal(c.memoryLimit, undefined, "the memory cgroup's limit");
    assert.deepEqual(c.natPortRange, { first: 1024, last: 65535 }, "masquerade's range");
    assert.equal(c.action, 'run');
    assert.ok(Object.isFrozen(c));
  });

  it('--memory.limit takes bytes or binary units, and 0 to turn the budget off', () => {
    const limit = (v: string) => parseConfig([`--memory.limit=${v}`]).memoryLimit;
    assert.equal(limit('256MiB'), 256 * 1024 ** 2);
    assert.equal(limit('1G'), 1024 ** 3);
    assert.equal(limit('1TiB'), 1024 ** 4);
    assert.equal(limit('33554432'), 32 * 1024 ** 2);
    assert.equal(limit('0'), 0);
  });

  it('--nat.port-range takes FIRST-LAST or one port', () => {
    const range = (v: string) => parseConfig([`--nat.port-range=${v}`]).natPortRange;
    assert.deepEqual(range('40000-40099'), { first: 40000, last: 40099 });
    assert.deepEqual(range('1-65535'), { first: 1, last: 65535 });
    assert.deepEqual(range('5000'), { first: 5000, last: 5000 });
  });

  it('log.format auto is text on a terminal', () => {
    assert.equal(parseConfig([], true).logFormat, 'text');
    assert.equal(parseConfig(['--log.format=json'], true).logFormat, 'json');
  });

  it('parses every flag', () => {
    const c = parseConfig([
      '--web.listen-address=[::1]:9000',
      '--web.telemetry-path',
      '/conntrack/metrics',
      '--log.level=debug',
      '--log.format=text',
      '--netlink.rcvbuf=256KiB',
      '--resync.interval=10m',
    ]);
    assert.deepEqual(
      [c.listen, c.telemetryPath, c.logLevel, c.logFormat, c.rcvbuf, c.resyncIntervalMs],
      [[{ host: '::1', port: 9000 }], '/conntrack/metrics', 'debug', 'text', 262144, 600_000],
    );
    assert.deepEqual(parseConfig(['--web.listen-address=127.0.0.1:80']).listen, [
      { host: '127.0.0.1', port: 80 },
    ]);
    assert.equal(parseConfig(['--web.config.file=/etc/web.yml']).webConfigFile, '/etc/web.yml');
    assert.equal(parseConfig(['--netlink.rcvbuf=8388608']).rcvbuf, 8388608);
    assert.equal(parseConfig(['--resync.silent-interval=30s']).silentResyncMs, 30_000);
    assert.equal(parseConfig(['--resync.silent-interval=0']).silentResyncMs, 0);
    assert.equal(parseConfig([]).silentCpuBudget, 0.02);
    assert.equal(parseConfig(['--resync.silent-budget=5%']).silentCpuBudget, 0.05);
    assert.equal(parseConfig(['--resync.silent-budget=0.5%']).silentCpuBudget, 0.005);
    const top = parseConfig(['--top.k=0', '--top.source-prefix-ipv4=24', '--top.source-prefix-ipv6=128']);
    assert.deepEqual([top.topK, top.topSourcePrefixV4, top.topSourcePrefixV6], [0, 24, 128]);
    assert.equal(parseConfig(['--web.max-requests=0']).webMaxRequests, 0, '0 turns the limit off');
    assert.equal(parseConfig(['--web.max-requests=5']).webMaxRequests, 5);
    assert.equal(parseConfig(['--help']).action, 'help');
    assert.equal(parseConfig(['--version']).action, 'version');
  });

  it('--web.listen-address repeats: one socket per address, in order', () => {
    const c = parseConfig(['--web.listen-address=127.0.0.1:9466', '--web.listen-address', '[::1]:9467']);
    assert.deepEqual(c.listen, [
      { host: '127.0.0.1', port: 9466 },
      { host: '::1', port: 9467 },
    ]);
  });

  it('--netns.all is off by default; its bounds parse', () => {
    const d = parseConfig([]);
    assert.deepEqual([d.netnsAll, d.netnsMax, d.netnsScanMs], [false, 256, 10_000]);
    const c = parseConfig(['--netns.all', '--netns.max=3', '--netns.scan-interval=2s']);
    assert.deepEqual([c.netnsAll, c.netnsMax, c.netnsScanMs], [true, 3, 2000]);
  });

  const bad: [string[], string][] = [
    [['--web.listen-address=:9466', '--web.listen-address=nope'], '--web.listen-address'],
    [['--bogus'], '--bogus'],
    [['--web.listen-address=9466'], '--web.listen-address'],
    [['--web.listen-address=:99999'], '--web.listen-address'],
    [['--web.telemetry-path=metrics'], '--web.telemetry-path'],
    [['--web.telemetry-path=/healthz'], '--web.telemetry-path'],
    [['--log.level=loud'], '--log.level'],
    [['--log.format=xml'], '--log.format'],
    [['--netlink.rcvbuf=lots'], '--netlink.rcvbuf'],
    [['--netlink.rcvbuf=10'], '--netlink.rcvbuf'],
    [['--netlink.rcvbuf=2GiB'], '--netlink.rcvbuf'], // the addon refuses socket buffers over 1 GiB
    [['--resync.interval=5'], '--resync.interval'],
    [['--resync.interval=500ms'], '--resync.interval'],
    [['--resync.silent-interval=5'], '--resync.silent-interval'],
    [['--resync.silent-budget=2'], '--resync.silent-budget'],
    [['--resync.silent-budget=0%'], '--resync.silent-budget'],
    [['--resync.silent-budget=150%'], '--resync.silent-budget'],
    [['--web.listen-address'], '--web.listen-address'],
    [['positional'], 'positional'],
    [['--top.k=-1'], '--top.k'],
    [['--top.k=ten'], '--top.k'],
    [['--top.k=1001'], '--top.k'],
    [['--top.source-prefix-ipv4=33'], '--top.source-prefix-ipv4'],
    [['--top.source-prefix-ipv6=129'], '--top.source-prefix-ipv6'],
    [['--top.source-prefix-ipv6=/64'], '--top.source-prefix-ipv6'],
    [['--web.max-requests=-1'], '--web.max-requests'],
    [['--web.max-requests=many'], '--web.max-requests'],
    [['--web.max-requests=10001'], '--web.max-requests'],
    [['--memory.limit=lots'], '--memory.limit'],
    [['--memory.limit=-1'], '--memory.limit'],
    [['--memory.limit=1MiB'], '--memory.limit'],
    [['--memory.limit=2TiB'], '--memory.limit'],
    [['--nat.port-range=0-100'], '--nat.port-range'],
    [['--nat.port-range=100-99'], '--nat.port-range'],
    [['--nat.port-range=1024-65536'], '--nat.port-range'],
    [['--nat.port-range=1024:65535'], '--nat.port-range'],
    [['--nat.port-range='], '--nat.port-range'],
    [['--nat.port-range=many'], '--nat.port-range'],
    [['--netns.max=0'], '--netns.max'],
    [['--netns.max=many'], '--netns.max'],
    [['--netns.scan-interval=0'], '--netns.scan-interval'],
  ];
  for (const [argv, flag] of bad) {
    it(`rejects ${argv.join(' ')} naming ${flag}`, () => {
      assert.ok(configError(argv).message.includes(flag));
    });
  }

  /**
   * One non-default value per flag, typed by the flag table itself: a new flag does not compile
   * until it has one here, and the tests below check it parses and changes the config.
   */
  const NOT_DEFAULT: Readonly<Record<keyof typeof FLAGS, string>> = {
    'web.listen-address': '[::1]:9000',
    'web.config.file': '/etc/conntrack-exporter/web.yml',
    'web.telemetry-path': '/conntrack/metrics',
    'web.max-requests': '5',
    'web.disable-exporter-metrics': '',
    'log.level': 'debug',
    'log.format': 'text',
    'netlink.rcvbuf': '256KiB',
    'resync.interval': '10m',
    'resync.silent-interval': '30s',
    'resync.silent-budget': '5%',
    'top.k': '3',
    'top.source-prefix-ipv4': '24',
    'top.source-prefix-ipv6': '128',
    'nat.port-range': '40000-40099',
    'memory.limit': '256MiB',
    'netns.all': '',
    'netns.max': '3',
    'netns.scan-interval': '2s',
    version: '',
    help: '',
  };

  for (const [flag, value] of Object.entries(NOT_DEFAULT)) {
    it(`--${flag} changes the config`, () => {
      const argv =
        FLAGS[flag as keyof typeof FLAGS].type === 'boolean' ? [`--${flag}`] : [`--${flag}=${value}`];
      assert.notDeepEqual(parseConfig(argv), parseConfig([]), `--${flag} had no effect`);
    });
  }

  it('usage and README list every flag', () => {
    const text = usage();
    const readme = readFileSync(`${ROOT}README.md`, 'utf8');
    for (const flag of Object.keys(FLAGS)) {
      assert.ok(text.includes(`--${flag}`), `usage: --${flag}`);
      assert.ok(readme.includes(`\`--${flag}\``), `README: --${flag}`);
    }
  });
});
