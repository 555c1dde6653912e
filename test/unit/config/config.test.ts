import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_PORT, parseConfig, usage } from '../../../src/config.js';
import { ConntrackError } from '../../../src/errors.js';

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
    assert.equal(c.listenHost, '::');
    assert.equal(c.listenPort, DEFAULT_PORT);
    assert.notEqual(DEFAULT_PORT, 9100);
    assert.notEqual(DEFAULT_PORT, 9318);
    assert.notEqual(DEFAULT_PORT, 9371);
    assert.equal(c.telemetryPath, '/metrics');
    assert.equal(c.logLevel, 'info');
    assert.equal(c.logFormat, 'json');
    assert.equal(c.rcvbuf, 16 * 1024 * 1024);
    assert.equal(c.resyncIntervalMs, 0);
    assert.equal(c.preexistingResyncMs, 60_000);
    assert.equal(c.action, 'run');
    assert.ok(Object.isFrozen(c));
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
      [c.listenHost, c.listenPort, c.telemetryPath, c.logLevel, c.logFormat, c.rcvbuf, c.resyncIntervalMs],
      ['::1', 9000, '/conntrack/metrics', 'debug', 'text', 262144, 600_000],
    );
    assert.equal(parseConfig(['--web.listen-address=127.0.0.1:80']).listenHost, '127.0.0.1');
    assert.equal(parseConfig(['--netlink.rcvbuf=8388608']).rcvbuf, 8388608);
    assert.equal(parseConfig(['--help']).action, 'help');
    assert.equal(parseConfig(['--version']).action, 'version');
  });

  it('--netns.all is off by default; its bounds parse', () => {
    const d = parseConfig([]);
    assert.deepEqual([d.netnsAll, d.netnsMax, d.netnsScanMs], [false, 256, 10_000]);
    const c = parseConfig(['--netns.all', '--netns.max=3', '--netns.scan-interval=2s']);
    assert.deepEqual([c.netnsAll, c.netnsMax, c.netnsScanMs], [true, 3, 2000]);
  });

  const bad: [string[], string][] = [
    [['--bogus'], '--bogus'],
    [['--web.listen-address=9466'], '--web.listen-address'],
    [['--web.listen-address=:99999'], '--web.listen-address'],
    [['--web.telemetry-path=metrics'], '--web.telemetry-path'],
    [['--web.telemetry-path=/healthz'], '--web.telemetry-path'],
    [['--log.level=loud'], '--log.level'],
    [['--log.format=xml'], '--log.format'],
    [['--netlink.rcvbuf=lots'], '--netlink.rcvbuf'],
    [['--netlink.rcvbuf=10'], '--netlink.rcvbuf'],
    [['--resync.interval=5'], '--resync.interval'],
    [['--resync.interval=500ms'], '--resync.interval'],
    [['--web.listen-address'], '--web.listen-address'],
    [['positional'], 'positional'],
    [['--netns.max=0'], '--netns.max'],
    [['--netns.max=many'], '--netns.max'],
    [['--netns.scan-interval=0'], '--netns.scan-interval'],
  ];
  for (const [argv, flag] of bad) {
    it(`rejects ${argv.join(' ')} naming ${flag}`, () => {
      assert.ok(configError(argv).message.includes(flag));
    });
  }

  it('usage lists every flag', () => {
    const text = usage();
    for (const f of [
      'web.listen-address',
      'web.telemetry-path',
      'log.level',
      'log.format',
      'netlink.rcvbuf',
      'resync.interval',
      'netns.all',
      'netns.max',
      'netns.scan-interval',
      'version',
      'help',
    ]) {
      assert.ok(text.includes(`--${f}`), f);
    }
  });
});
