/**
 * Sockets that recover, against real sockets (issue 17): a namespace unit's statistics socket
 * is broken for real by putting /dev/null in place of its descriptor (closed, and the lowest free
 * number reopened, as dup2 would), so the next request's sendto fails with ENOTSOCK as a socket
 * that died under us does. The unit reopens it inside its namespace and answers again; a plain
 * RequestSocket, as before the fix, stays broken. Then the namespace's own descriptor is swapped
 * for /dev/null too, so every reopen fails (setns: EINVAL): after the policy's attempts the
 * socket is lost (what fails /healthz), and once the descriptor names the namespace again it
 * recovers. The policy runs on real timers with short delays.
 */
import assert from 'node:assert/strict';
import { closeSync, openSync, readdirSync, readlinkSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { CtnetlinkClient } from '../../src/ctnetlink/client.js';
import { ConntrackError } from '../../src/errors.js';
import { NamespaceProcFiles } from '../../src/kernel/proc.js';
import type { NamespaceRef } from '../../src/namespace/discovery.js';
import { Namespaces } from '../../src/namespace/namespaces.js';
import { RequestSocket } from '../../src/netlink/request.js';
import type { ReopenPolicy } from '../../src/sync/resubscribe.js';
import * as tool from './harness/conntrack-tool.js';
import { Netns, waitFor } from './harness/netns.js';

const ENOTSOCK = 88;
const POLICY: ReopenPolicy = { firstDelayMs: 50, maxDelayMs: 200, attempts: 3 };

function sockets(): Set<number> {
  const out = new Set<number>();
  for (const name of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${name}`).startsWith('socket:')) out.add(Number(name));
    } catch {
      // the directory's own descriptor, gone by the time it is read
    }
  }
  return out;
}

/** The one socket `open` makes (the descriptors it adds that are sockets). */
function socketOpenedBy<T>(open: () => T): [T, number] {
  const before = sockets();
  const made = open();
  const added = [...sockets()].filter((fd) => !before.has(fd));
  assert.equal(added.length, 1, `one new socket (${added.join(', ')})`);
  return [made, added[0]!];
}

/**
 * Opens `path` as descriptor `fd`, as dup2 would: `fd` is closed, then `path` opened until it gets
 * that number (the kernel gives the lowest free one: lower gaps are filled first, closed after).
 */
function openAs(fd: number, path: string): void {
  closeSync(fd);
  const fillers: number[] = [];
  try {
    for (;;) {
      const n = openSync(path, 'r');
      if (n === fd) return;
      assert.ok(n < fd, `descriptor ${fd} was taken meanwhile`);
      fillers.push(n);
    }
  } finally {
    for (const n of fillers) closeSync(n);
  }
}

/** /dev/null in place of `fd`; its owner closes it later (the /dev/null then), not the test. */
const replaceWithDevNull = (fd: number) => openAs(fd, '/dev/null');

describe('request sockets recover (real sockets)', () => {
  let ns: Netns;
  let nsFd: number;
  const log = pino({ level: 'silent' });

  before(() => {
    ns = Netns.create('recover');
    ns.traffic('udp-noreply=127.0.0.1', 'udp-noreply=127.0.0.1', 'syn=127.0.0.1');
    nsFd = openSync(`/var/run/netns/${ns.name}`, 'r');
  });

  after(() => {
    closeSync(nsFd);
    ns?.delete();
  });

  it('before: a plain RequestSocket whose socket broke stays broken', async () => {
    const [sock, fd] = socketOpenedBy(() => RequestSocket.open(5000, nsFd, 4, 0));
    const client = new CtnetlinkClient(sock);
    try {
      assert.equal((await client.globalStats()).entries, tool.count(ns));
      replaceWithDevNull(fd);
      for (let i = 0; i < 3; i++) {
        await assert.rejects(
          client.globalStats(),
          (e: unknown) => e instanceof ConntrackError && e.errno === ENOTSOCK,
        );
        await new Promise((r) => setTimeout(r, POLICY.maxDelayMs));
      }
    } finally {
      sock.close();
    }
  });

  it('after: the unit reopens its statistics socket inside the namespace; one that cannot be reopened is lost until it can', async () => {
    const ref: NamespaceRef = {
      inode: 'recover',
      name: ns.name,
      foundAt: `/var/run/netns/${ns.name}`,
      own: false,
      label: ns.name,
      fd: nsFd,
    };
    const all = new Namespaces({
      observer: { transition() {}, stateLeft() {}, flowEnded() {} },
      log,
      labelled: true,
      resyncIntervalMs: 0,
      silentSchedule: { minSeconds: 0, cpuBudget: 0.02 },
      attribution: {
        topK: 0,
        topSourcePrefixV4: 32,
        topSourcePrefixV6: 64,
        natPortRange: { first: 1024, last: 65535 },
      },
      openProc: (r) => new NamespaceProcFiles(r.fd),
      reopen: { policy: POLICY },
    });
    try {
      const [unit, statsFd] = socketOpenedBy(() => all.add(ref));
      const count = tool.count(ns);
      assert.equal(await unit.probe(), count);

      const others = sockets();
      others.delete(statsFd);
      replaceWithDevNull(statsFd);
      const broke = performance.now();
      assert.equal(await unit.probe(), undefined, 'the request on the broken socket fails');
      assert.equal(unit.sockets[0]!.up, false);
      await waitFor('the statistics socket to be reopened', () => (unit.sockets[0]!.up ? true : undefined));
      const reopenedMs = performance.now() - broke;
      assert.equal(await unit.probe(), count, 'it answers again, from the same namespace');
      assert.deepEqual([unit.sockets[0]!.failures, all.lostSocket()], [1, undefined]);
      console.log(
        `# request socket error: reopened in ${reopenedMs.toFixed(0)} ms (first back-off ${POLICY.firstDelayMs} ms)`,
      );

      // Now the namespace's descriptor names no namespace: every reopen fails (setns: EINVAL).
      const reopened = [...sockets()].filter((fd) => !others.has(fd));
      assert.equal(reopened.length, 1, 'one socket in place of the broken one');
      replaceWithDevNull(nsFd);
      replaceWithDevNull(reopened[0]!);
      const broke2 = performance.now();
      assert.equal(await unit.probe(), undefined);
      await waitFor('the socket to count as lost', () => all.lostSocket(), 5000);
      const lostMs = performance.now() - broke2;
      assert.equal(all.lostSocket(), 'stats');
      assert.equal(unit.sockets[0]!.up, false);
      console.log(
        `# reopen impossible: lost (healthz 503) after ${POLICY.attempts} attempts, ${lostMs.toFixed(0)} ms`,
      );

      // The descriptor names the namespace again: the next attempt succeeds.
      openAs(nsFd, `/var/run/netns/${ns.name}`);
      await waitFor('the socket to recover', () => (unit.sockets[0]!.up ? true : undefined), 5000);
      assert.equal(all.lostSocket(), undefined);
      assert.equal(await unit.probe(), tool.count(ns));
    } finally {
      all.close();
    }
  });
});
