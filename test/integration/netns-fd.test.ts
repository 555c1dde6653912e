/**
 * Sockets opened inside a network namespace by its file descriptor, from this process (the addon
 * switches a thread into the namespace and back): they see that namespace's table and events, the
 * descriptor stays the caller's, and it keeps naming the same namespace after its name is gone.
 * That last property is why the exporter opens a namespace once and never again by path: a path
 * such as /proc/PID/ns/net may by then name another process's namespace.
 */
import assert from 'node:assert/strict';
import { closeSync, fstatSync, openSync } from 'node:fs';
import { constants as os } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { CtnetlinkClient } from '../../src/ctnetlink/client.js';
import { eventType } from '../../src/ctnetlink/event.js';
import { ConntrackError } from '../../src/errors.js';
import { EventSocket } from '../../src/netlink/events.js';
import { DatagramCursor, MessageCursor } from '../../src/netlink/framing.js';
import { RequestSocket } from '../../src/netlink/request.js';
import * as tool from './harness/conntrack-tool.js';
import { mustRun, Netns, waitFor } from './harness/netns.js';

/** The namespace's entry count and the flows a dump lists, over a socket opened by `fd`. */
async function readThrough(fd: number): Promise<{ entries: number | undefined; dumped: number }> {
  const sock = RequestSocket.open(5000, fd);
  try {
    const client = new CtnetlinkClient(sock);
    const { entries } = await client.globalStats();
    const { flows } = await client.dumpTable({ begin() {}, entry() {} });
    return { entries, dumped: flows };
  } finally {
    sock.close();
  }
}

describe('sockets inside a namespace by file descriptor', () => {
  let ns: Netns;
  let fd: number;

  before(() => {
    ns = Netns.create('fd');
    ns.traffic('udp-noreply=127.0.0.1', 'udp-noreply=127.0.0.1', 'syn=127.0.0.1');
    fd = openSync(`/var/run/netns/${ns.name}`, 'r');
  });

  after(() => {
    closeSync(fd);
    ns?.delete();
  });

  it("reads the namespace's table and leaves the descriptor open", async () => {
    const count = tool.count(ns);
    assert.ok(count >= 3, `the test's flows are there (${count})`);
    assert.deepEqual(await readThrough(fd), { entries: count, dumped: count });
    assert.doesNotThrow(() => fstatSync(fd), 'the addon did not close the caller’s descriptor');
  });

  it("receives the namespace's events", async () => {
    const datagrams = new DatagramCursor();
    const messages = new MessageCursor();
    let events = 0;
    let failure: ConntrackError | undefined;
    const sock = new EventSocket(
      {
        onBatch(batch) {
          const d = datagrams.reset(batch);
          while (d.next()) {
            const m = messages.reset(d.buf, d.start, d.end);
            while (m.next()) if (eventType(m.type, m.flags) === 'new') events++;
          }
        },
        onOverrun() {},
        onError(err) {
          failure = err;
        },
      },
      { netns: fd },
    );
    try {
      ns.traffic('udp-noreply=127.0.0.1');
      await waitFor('a NEW event from the namespace', () => (events > 0 || failure ? events : undefined));
      assert.equal(failure, undefined);
    } finally {
      sock.close();
    }
  });

  it('keeps naming the same namespace after its name is deleted', async () => {
    const before = tool.count(ns);
    // `ip netns del` only unmounts the name: the namespace lives on while a descriptor holds it.
    mustRun('ip', ['netns', 'del', ns.name]);
    assert.deepEqual(await readThrough(fd), { entries: before, dumped: before });
  });

  it('refuses a descriptor that is not a network namespace', () => {
    const devNull = openSync('/dev/null', 'r');
    try {
      assert.throws(
        () => RequestSocket.open(5000, devNull),
        (e: unknown) =>
          e instanceof ConntrackError && e.code === 'CT_ERR_SOCKET' && e.errno === os.errno.EINVAL,
      );
    } finally {
      closeSync(devNull);
    }
  });
});
