/**
 * A namespace's own kernel values, read from outside it (issue 16): the conntrack sysctls are per
 * network namespace, and under --netns.all each followed namespace's are read through files the
 * addon opened inside it. On the real kernel: values set differently in two namespaces come back
 * per namespace, and with netlink failing the procfs fallback gives that namespace's count and
 * per-CPU statistics, not the exporter's.
 */
import assert from 'node:assert/strict';
import { closeSync, constants, openSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { ConntrackError } from '../../src/errors.js';
import { NamespaceProcFiles, readSysctl } from '../../src/kernel/proc.js';
import { KernelStatsReader } from '../../src/kernel/stats.js';
import * as tool from './harness/conntrack-tool.js';
import { Netns } from './harness/netns.js';

const failing = {
  globalStats: async () => {
    throw new ConntrackError('CT_ERR_TIMEOUT', 'no reply');
  },
  cpuStats: async () => {
    throw new ConntrackError('CT_ERR_TIMEOUT', 'no reply');
  },
  expectationCpuStats: async () => {
    throw new ConntrackError('CT_ERR_TIMEOUT', 'no reply');
  },
  countExpectations: async () => {
    throw new ConntrackError('CT_ERR_TIMEOUT', 'no reply');
  },
};

describe("a namespace's kernel values, read from outside it", () => {
  let a: Netns;
  let b: Netns;
  const fds: number[] = [];
  const files: NamespaceProcFiles[] = [];
  const open = (ns: Netns) => {
    const fd = openSync(`/var/run/netns/${ns.name}`, constants.O_RDONLY | constants.O_NONBLOCK);
    fds.push(fd);
    const f = new NamespaceProcFiles(fd);
    files.push(f);
    return f;
  };

  before(() => {
    a = Netns.create('nsk-a');
    b = Netns.create('nsk-b');
    a.run('sysctl', ['-qw', 'net.netfilter.nf_conntrack_acct=1', 'net.netfilter.nf_conntrack_timestamp=1']);
    b.run('sysctl', ['-qw', 'net.netfilter.nf_conntrack_acct=0', 'net.netfilter.nf_conntrack_timestamp=0']);
    a.run('sysctl', ['-qw', 'net.netfilter.nf_conntrack_events=1']);
  });

  after(() => {
    for (const f of files) f.close();
    for (const fd of fds) closeSync(fd);
    a?.delete();
    b?.delete();
  });

  it('reads each namespace its own sysctls', async () => {
    const fa = open(a);
    const fb = open(b);
    const read = (f: NamespaceProcFiles, n: string) => readSysctl(f, n);
    assert.deepEqual(
      await Promise.all(
        ['nf_conntrack_acct', 'nf_conntrack_timestamp', 'nf_conntrack_events'].map((n) => read(fa, n)),
      ),
      [1, 1, 1],
    );
    assert.deepEqual(
      await Promise.all(['nf_conntrack_acct', 'nf_conntrack_timestamp'].map((n) => read(fb, n))),
      [0, 0],
    );
    // Read again after a change: the same descriptors follow the namespace's current value.
    b.run('sysctl', ['-qw', 'net.netfilter.nf_conntrack_acct=1']);
    assert.equal(await read(fb, 'nf_conntrack_acct'), 1);
    assert.equal(await read(fa, 'nf_conntrack_no_such_sysctl'), undefined, 'absent is no data');
  });

  it("falls back to the namespace's procfs when netlink fails: its count and its per-CPU statistics", async () => {
    a.traffic('udp-noreply=127.0.0.1', 'udp-noreply=127.0.0.1', 'syn=127.0.0.1');
    b.traffic('udp-noreply=127.0.0.1');
    const ka = await new KernelStatsReader(failing, open(a)).read();
    const kb = await new KernelStatsReader(failing, open(b)).read();
    assert.equal(ka.entries, tool.count(a));
    assert.equal(kb.entries, tool.count(b));
    assert.notEqual(ka.entries, kb.entries);
    assert.equal(ka.errors, 3, 'the netlink requests failed and were counted (the per-CPU ones once)');
    assert.ok(ka.perCpu.length >= 1, 'per-CPU statistics from /proc/net/stat/nf_conntrack of the namespace');
    // The same numbers conntrack -S asks the namespace's kernel for over netlink.
    for (const [ns, k] of [
      [a, ka],
      [b, kb],
    ] as const) {
      const theirs = tool.cpuStats(ns);
      assert.equal(k.perCpu.length, theirs.size, `one line per CPU in ${ns.name}`);
      for (const c of k.perCpu) {
        for (const name of [
          'found',
          'invalid',
          'insert_failed',
          'drop',
          'early_drop',
          'search_restart',
        ] as const) {
          assert.equal(c.values[name], theirs.get(c.cpu)?.get(name), `${ns.name} cpu ${c.cpu} ${name}`);
        }
      }
    }
  });
});
