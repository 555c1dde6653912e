/** Timeout sysctls' names -> protocol and state, and their reading per namespace. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { ProcFiles, ProcPath } from '../../../src/kernel/proc.js';
import { OwnProcFiles } from '../../../src/kernel/proc.js';
import { TimeoutReader, timeoutLabels } from '../../../src/kernel/timeouts.js';

describe('timeoutLabels', () => {
  const cases: [string, { protocol: string; state: string } | undefined][] = [
    ['nf_conntrack_tcp_timeout_time_wait', { protocol: 'tcp', state: 'TIME_WAIT' }],
    ['nf_conntrack_tcp_timeout_syn_sent', { protocol: 'tcp', state: 'SYN_SENT' }],
    ['nf_conntrack_tcp_timeout_max_retrans', { protocol: 'tcp', state: 'MAX_RETRANS' }],
    ['nf_conntrack_tcp_timeout_unacknowledged', { protocol: 'tcp', state: 'UNACKNOWLEDGED' }],
    ['nf_conntrack_udp_timeout', { protocol: 'udp', state: 'UNREPLIED' }],
    ['nf_conntrack_udp_timeout_stream', { protocol: 'udp', state: 'ASSURED' }],
    ['nf_conntrack_udplite_timeout_stream', { protocol: 'udplite', state: 'ASSURED' }],
    ['nf_conntrack_gre_timeout', { protocol: 'gre', state: 'UNREPLIED' }],
    ['nf_conntrack_gre_timeout_stream', { protocol: 'gre', state: 'ASSURED' }],
    ['nf_conntrack_icmp_timeout', { protocol: 'icmp', state: 'ALL' }],
    ['nf_conntrack_icmpv6_timeout', { protocol: 'icmpv6', state: 'ALL' }],
    ['nf_conntrack_generic_timeout', { protocol: 'generic', state: 'ALL' }],
    ['nf_conntrack_sctp_timeout_shutdown_ack_sent', { protocol: 'sctp', state: 'SHUTDOWN_ACK_SENT' }],
    ['nf_conntrack_dccp_timeout_timewait', { protocol: 'dccp', state: 'TIMEWAIT' }],
    // Not flow timeouts.
    ['nf_conntrack_frag6_timeout', undefined],
    ['nf_conntrack_tcp_max_retrans', undefined],
    ['nf_conntrack_udp_timeout_bogus', undefined],
    ['nf_conntrack_max', undefined],
  ];
  for (const [name, labels] of cases) {
    it(`${name} -> ${labels ? `${labels.protocol} ${labels.state}` : 'not a flow timeout'}`, () => {
      assert.deepEqual(timeoutLabels(name), labels);
    });
  }
});

describe('TimeoutReader', () => {
  const root = mkdtempSync(join(tmpdir(), 'ctx-timeouts-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  const nf = join(root, 'sys/net/netfilter');
  mkdirSync(nf, { recursive: true });
  for (const [k, v] of Object.entries({
    nf_conntrack_tcp_timeout_established: '432000',
    nf_conntrack_udp_timeout: '30',
    nf_conntrack_generic_timeout: 'soon',
    nf_conntrack_frag6_timeout: '60',
  })) {
    writeFileSync(join(nf, k), `${v}\n`);
  }

  /** OwnProcFiles, counting the reads. */
  class Counting implements ProcFiles {
    reads = 0;
    private readonly files = new OwnProcFiles(root);
    read(path: ProcPath) {
      return this.files.read(path);
    }
    readSync(path: ProcPath) {
      this.reads++;
      return this.files.readSync(path);
    }
    close() {}
  }

  it('reads the timeouts this kernel has; one that is not a number is counted and left out', () => {
    const files = new Counting();
    const reader = new TimeoutReader(files);
    let failed = 0;
    const t = reader.read(() => failed++);
    assert.deepEqual(
      new Set(t),
      new Set([
        { protocol: 'tcp', state: 'ESTABLISHED', seconds: 432000 },
        { protocol: 'udp', state: 'UNREPLIED', seconds: 30 },
      ]),
    );
    assert.equal(failed, 1, 'nf_conntrack_generic_timeout');
    // The names this kernel lacks are looked for once: the next read asks for the three it has.
    const first = files.reads;
    reader.read(() => failed++);
    assert.equal(files.reads - first, 3);
  });
});
