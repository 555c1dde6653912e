/**
 * The rest of the kernel's picture on the real kernel (issue 18): a TFTP expectation made by real
 * traffic (nftables `ct helper` in the test's namespace) shows in conntrack_expectations and the
 * expectation counters as `conntrack -L expect` and `conntrack -S expect` show them, and goes
 * when the server answers; the timeouts equal the namespace's sysctls, also after one is changed
 * there (and not in the host's); the table's kernel memory equals the nf_conntrack slab cache of
 * /proc/slabinfo and grows with it as flows are made. Under --netns.all a followed namespace's
 * expectations and timeouts carry its netns label.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import * as tool from './harness/conntrack-tool.js';
import { ExporterProcess } from './harness/exporter.js';
import { Netns, UNTRACKED_PORTS, waitFor } from './harness/netns.js';
import type { Scrape } from './harness/promtext.js';

/**
 * Tracking as TRACKING_RULESET, plus the TFTP helper on UDP port 69. Port 69 and the flood's
 * ports are dropped on input: the request needs no server to create its expectation (the helper
 * sees it on the way out), and no ICMP errors come back.
 */
const RULESET = `table inet ctx {
  ct helper tftp-69 {
    type "tftp" protocol udp;
  }
  chain raw {
    type filter hook output priority raw; policy accept;
    tcp dport { ${UNTRACKED_PORTS.join(', ')} } notrack
    tcp sport { ${UNTRACKED_PORTS.join(', ')} } notrack
  }
  chain out {
    type filter hook output priority 0; policy accept;
    ct state new counter
    udp dport 69 ct helper set "tftp-69"
  }
  chain in {
    type filter hook input priority 0; policy accept;
    udp dport 69 drop
    udp dport 10000-59999 drop
  }
}
`;

const CLIENT_PORT = 40069;
const SERVER_PORT = 40070;

/** A TFTP read request from 127.0.0.1:CLIENT_PORT to port 69: the helper expects the server's answer. */
function tftpRequest(ns: Netns): void {
  ns.run(process.execPath, [
    '-e',
    `const s = require('node:dgram').createSocket('udp4');
     s.bind(${CLIENT_PORT}, '127.0.0.1', () => s.send(Buffer.from('\\x00\\x01boot.img\\x00octet\\x00', 'latin1'), 69, '127.0.0.1', () => s.close()));`,
  ]);
}

/** The server's first DATA packet, from another port as TFTP does: the expected flow. */
function tftpAnswer(ns: Netns): void {
  ns.run(process.execPath, [
    '-e',
    `const s = require('node:dgram').createSocket('udp4');
     s.bind(${SERVER_PORT}, '127.0.0.1', () => s.send(Buffer.from('\\x00\\x03\\x00\\x01data', 'latin1'), ${CLIENT_PORT}, '127.0.0.1', () => s.close()));`,
  ]);
}

/** `conntrack -L expect`: one line per expectation. */
function expectations(ns: Netns): number {
  return ns
    .run('conntrack', ['-L', 'expect'])
    .split('\n')
    .filter((l) => l.trim() !== '').length;
}

/** `conntrack -S expect` summed over CPUs: expect_new, expect_create, expect_delete. */
function expectationStats(ns: Netns): Map<string, number> {
  const sum = new Map<string, number>();
  for (const line of ns.run('conntrack', ['-S', 'expect']).split('\n')) {
    for (const [k, v] of tool.parseCpuStatsLine(line)?.stats ?? []) sum.set(k, (sum.get(k) ?? 0) + v);
  }
  return sum;
}

function sysctl(ns: Netns, name: string): number {
  return Number(ns.run('cat', [`/proc/sys/net/netfilter/${name}`]).trim());
}

/** The nf_conntrack cache's bytes as /proc/slabinfo shows them: <num_objs> x <objsize>. */
function slabinfoBytes(): { bytes: number; free: number } {
  const line = readFileSync('/proc/slabinfo', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('nf_conntrack '));
  assert.ok(line, 'this kernel has its own nf_conntrack slab cache');
  const [, active, num, size] = line.trim().split(/\s+/).map(Number);
  return { bytes: num! * size!, free: num! - active! };
}

/** Scrapes until `check` holds for a scrape; returns it. */
function until(exp: ExporterProcess, what: string, check: (s: Scrape) => boolean, timeoutMs = 10_000) {
  let last = '';
  return waitFor(
    what,
    () => {
      const s = exp.scrape();
      last = s.text
        .split('\n')
        .filter((l) => /^conntrack_(expectations|stat_expect|kernel_memory|timeout_seconds)/.test(l))
        .join('\n');
      return check(s) ? s : undefined;
    },
    timeoutMs,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\nlast scrape:\n${last}\nexporter log:\n${exp.stdout.slice(-3000)}`);
  });
}

const one = (s: Scrape, name: string, labels: Record<string, string> = {}) => s.all(name, labels)[0]?.value;

describe("the kernel's picture: expectations, timeouts, table memory", () => {
  let ns: Netns;
  let exp: ExporterProcess;

  before(async () => {
    ns = Netns.create('kpic', RULESET);
    exp = await ExporterProcess.start(ns);
  });
  after(async () => {
    await exp?.stop();
    ns?.delete();
  });

  it('a TFTP expectation shows in the count and the counters, and goes when the server answers', async () => {
    const first = exp.scrape();
    assert.equal(one(first, 'conntrack_expectations'), 0);
    assert.equal(one(first, 'conntrack_expectations_limit'), sysctl(ns, 'nf_conntrack_expect_max'));

    tftpRequest(ns);
    assert.equal(expectations(ns), 1, 'conntrack -L expect shows the TFTP expectation');
    const made = await until(exp, 'one expectation', (s) => one(s, 'conntrack_expectations') === 1);
    const stats = expectationStats(ns);
    assert.equal(stats.get('expect_create'), 1);
    assert.equal(one(made, 'conntrack_stat_expect_create_total'), stats.get('expect_create'));
    assert.equal(one(made, 'conntrack_stat_expect_new_total'), 0);

    tftpAnswer(ns);
    assert.equal(expectations(ns), 0, 'the answer used the expectation');
    const used = await until(exp, 'the expectation used', (s) => one(s, 'conntrack_expectations') === 0);
    const later = expectationStats(ns);
    assert.equal(later.get('expect_new'), 1, 'the answer became a flow of its own from the expectation');
    for (const name of ['expect_new', 'expect_create', 'expect_delete']) {
      assert.equal(one(used, `conntrack_stat_${name}_total`), later.get(name), name);
    }
  });

  it("the timeouts equal the namespace's sysctls, also after one is changed there", async () => {
    const s = exp.scrape();
    const timeouts = s.all('conntrack_timeout_seconds');
    assert.ok(
      timeouts.length >= 17,
      `tcp (10), udp (2), icmp, icmpv6, generic, gre (2) at least: ${timeouts.length}`,
    );
    const name = (protocol: string, state: string) => {
      if (state === 'ALL') return `nf_conntrack_${protocol}_timeout`;
      if (state === 'UNREPLIED') return `nf_conntrack_${protocol}_timeout`;
      if (state === 'ASSURED') return `nf_conntrack_${protocol}_timeout_stream`;
      return `nf_conntrack_${protocol}_timeout_${state.toLowerCase()}`;
    };
    for (const t of timeouts) {
      const { protocol = '', state = '' } = t.labels;
      assert.equal(t.value, sysctl(ns, name(protocol, state)), `${protocol} ${state}`);
    }

    const host = Number(readFileSync('/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_time_wait', 'utf8'));
    ns.run('sysctl', ['-qw', 'net.netfilter.nf_conntrack_tcp_timeout_time_wait=77']);
    ns.run('sysctl', ['-qw', 'net.netfilter.nf_conntrack_udp_timeout_stream=99']);
    const changed = exp.scrape();
    assert.equal(one(changed, 'conntrack_timeout_seconds', { protocol: 'tcp', state: 'TIME_WAIT' }), 77);
    assert.equal(one(changed, 'conntrack_timeout_seconds', { protocol: 'udp', state: 'ASSURED' }), 99);
    assert.equal(
      Number(readFileSync('/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_time_wait', 'utf8')),
      host,
      "the host's own timeout did not change: timeouts are per namespace",
    );
  });

  it('the memory figure is the slab cache of /proc/slabinfo and grows with the table', async () => {
    const buckets = sysctl(ns, 'nf_conntrack_buckets');
    let before = { bytes: 0, free: 0 };
    // The cache is the node's: other namespaces' flows come and go too, so compare until equal.
    const s0 = await until(exp, 'the slab figure to equal /proc/slabinfo', (s) => {
      before = slabinfoBytes();
      return one(s, 'conntrack_kernel_memory_bytes', { part: 'slab' }) === before.bytes;
    });
    assert.equal(one(s0, 'conntrack_kernel_memory_bytes', { part: 'hash' }), buckets * 8);

    const FLOWS = 5000;
    const count0 = tool.count(ns);
    ns.node('test/integration/harness/flood.js', ['20', '50000', '16', 'ports', `${FLOWS}`]);
    assert.ok(tool.count(ns) - count0 >= FLOWS * 0.95, 'the flood made its flows');
    let now = { bytes: 0, free: 0 };
    const s1 = await until(exp, 'the slab figure to equal /proc/slabinfo after the flood', (s) => {
      now = slabinfoBytes();
      return one(s, 'conntrack_kernel_memory_bytes', { part: 'slab' }) === now.bytes;
    });
    const grown = one(s1, 'conntrack_kernel_memory_bytes', { part: 'slab' })! - before.bytes;
    // The new entries fill the free objects first, then new slabs: 256 bytes each on this kernel.
    assert.ok(
      grown >= (FLOWS * 0.95 - before.free) * 256,
      `the cache grew by ${grown} bytes for ${FLOWS} flows (${before.free} objects were free)`,
    );
  });
});

describe("--netns.all: a followed namespace's expectations and timeouts carry its label", () => {
  let home: Netns;
  let followed: Netns;
  let exp: ExporterProcess;

  before(async () => {
    home = Netns.create('kpic-home');
    followed = Netns.create('kpic-b', RULESET);
    followed.run('sysctl', ['-qw', 'net.netfilter.nf_conntrack_tcp_timeout_time_wait=55']);
    exp = await ExporterProcess.start(home, ['--netns.all', '--netns.scan-interval=1s']);
  });
  after(async () => {
    await exp?.stop();
    followed?.delete();
    home?.delete();
  });

  it('shows them per namespace', async () => {
    tftpRequest(followed);
    assert.equal(expectations(followed), 1);
    const netns = followed.name;
    const s = await until(
      exp,
      `conntrack_expectations{netns="${netns}"} 1`,
      (x) => one(x, 'conntrack_expectations', { netns }) === 1,
      20_000,
    );
    assert.equal(one(s, 'conntrack_timeout_seconds', { netns, protocol: 'tcp', state: 'TIME_WAIT' }), 55);
    assert.equal(one(s, 'conntrack_stat_expect_create_total', { netns }), 1);
    // The limit and the memory are the node's: never labelled.
    assert.equal(s.all('conntrack_expectations_limit', { netns }).length, 0);
    assert.equal(s.all('conntrack_kernel_memory_bytes', { netns }).length, 0);
  });
});
