/**
 * Request sockets that recover, without a kernel: statistics, dumps and namespace ids go through
 * fake transports (test/support/fake-transport.ts) that fail as the addon reports failures (a
 * receive error, a send that throws), and the reopen policy runs on fake timers. The same policy
 * as the event socket's (resubscribe.test.ts): back-off from 1 s, lost after 5 failed attempts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CtnetlinkClient } from '../../../src/ctnetlink/client.js';
import { IPCTNL_MSG_CT_GET_STATS } from '../../../src/ctnetlink/constants.js';
import { ConntrackError } from '../../../src/errors.js';
import type { NamespaceRef } from '../../../src/namespace/discovery.js';
import { NsidClient, RTM_NEWNSID } from '../../../src/namespace/nsid.js';
import { NFNL_SUBSYS_CTNETLINK } from '../../../src/netlink/nfnetlink.js';
import { encodeMessage, writeU16h, writeU32h } from '../../../src/netlink/nlmsg.js';
import { RequestSocket } from '../../../src/netlink/request.js';
import { ResilientRequestSocket } from '../../../src/sync/resubscribe.js';
import { ack, FakeTransport } from '../../support/fake-transport.js';
import { fakeFd, fakeNamespaces } from '../helpers/fake-ct.js';
import { FakeTimers } from './fake-timers.js';
import { RecordingLog } from './scripted.js';

const socketError = (e: unknown) => e instanceof ConntrackError && e.code === 'CT_ERR_SOCKET';

/** CT_GET_STATS answered with `entries`, as the kernel frames it (the reply, then the ACK). */
function statsKernel(entries: number): FakeTransport {
  return new FakeTransport((req) => {
    const p = Buffer.alloc(12);
    p.writeUInt16LE(8, 4); // nla_len
    p.writeUInt16LE(1, 6); // CTA_STATS_GLOBAL_ENTRIES
    p.writeUInt32BE(entries, 8);
    return [[encodeMessage(req.type, 0, req.seq, p), ack(req.seq)]];
  });
}

/** A resilient socket over fake transports; `refuse` attempts to open throw. */
function setup(kernel: () => FakeTransport = () => statsKernel(5)) {
  const timers = new FakeTimers();
  const log = new RecordingLog();
  const transports: FakeTransport[] = [];
  const state = { refuse: 0 };
  const socket = new ResilientRequestSocket(
    'stats',
    (onBroken) => {
      if (state.refuse > 0) {
        state.refuse--;
        throw new ConntrackError('CT_ERR_SOCKET', 'opening the ctnetlink request socket: EMFILE');
      }
      const t = kernel();
      transports.push(t);
      return new RequestSocket(t, 5000, onBroken);
    },
    { log, timers },
  );
  return { socket, client: new CtnetlinkClient(socket), timers, log, transports, state };
}

describe('ResilientRequestSocket (request sockets reopen as the event socket does)', () => {
  it('a receive error fails the request in flight, closes the socket, and a second later it answers again', async () => {
    const { socket, client, timers, log, transports } = setup(() => new FakeTransport());
    const inFlight = client.globalStats();
    await timers.advance(0);
    transports[0]!.fail(new ConntrackError('CT_ERR_SOCKET', 'netlink receive: recvmmsg failed'));
    await assert.rejects(inFlight, socketError);
    assert.deepEqual([transports[0]!.closed, socket.health.up, socket.health.failures], [true, false, 1]);
    assert.equal(log.last('error')['socket'], 'stats');

    // While it is down a request fails at once (procfs stands in), nothing is sent anywhere.
    await assert.rejects(client.globalStats(), socketError);
    assert.equal(transports[0]!.sent.length, 1);

    await timers.advance(1000);
    assert.deepEqual([transports.length, socket.health.up, socket.health.lost], [2, true, false]);
    const again = client.globalStats();
    await timers.advance(0);
    const seq = transports[1]!.lastSeq;
    const p = Buffer.alloc(12);
    writeU16h(p, 8, 4);
    writeU16h(p, 1, 6);
    p.writeUInt32BE(11, 8);
    transports[1]!.deliver([[encodeMessage(0x104, 0, seq, p), ack(seq)]]);
    assert.equal((await again).entries, 11);
    socket.close();
  });

  it('a send that fails (sendto: EBADF) breaks the socket the same way', async () => {
    const { socket, client, timers, transports } = setup();
    assert.equal((await client.globalStats()).entries, 5);
    transports[0]!.sendError = Object.assign(new Error('sendto: Bad file descriptor'), { errno: 9 });
    await assert.rejects(
      client.globalStats(),
      (e: unknown) => socketError(e) && (e as ConntrackError).errno === 9,
    );
    assert.deepEqual([transports[0]!.closed, socket.health.up], [true, false]);
    await timers.advance(1000);
    assert.equal((await client.globalStats()).entries, 5);
    assert.equal(transports.length, 2);
    socket.close();
  });

  it('a kernel error or a time-out is the request’s failure, not the socket’s: nothing is reopened', async () => {
    const { socket, client, timers, transports } = setup(
      () => new FakeTransport((req) => [[ack(req.seq, 22)]]), // EINVAL
    );
    await assert.rejects(
      client.globalStats(),
      (e: unknown) => e instanceof ConntrackError && e.code === 'CT_ERR_KERNEL',
    );
    await timers.advance(60_000);
    assert.deepEqual(
      [transports.length, transports[0]!.closed, socket.health.up, socket.health.failures],
      [1, false, true, 0],
    );
    socket.close();
  });

  it('lost after 5 failed reopen attempts in a row; open again when an attempt succeeds', async () => {
    const { socket, client, timers, transports, state } = setup();
    state.refuse = 100;
    transports[0]!.fail(new ConntrackError('CT_ERR_SOCKET', 'netlink receive: recvmmsg failed'));
    await timers.advance(30_999);
    assert.deepEqual([socket.health.lost, state.refuse], [false, 96], 'four attempts by 31 s');
    await timers.advance(1);
    assert.deepEqual([socket.health.lost, state.refuse], [true, 95]);
    await assert.rejects(client.globalStats(), socketError);
    state.refuse = 0;
    await timers.advance(30_000);
    assert.deepEqual([socket.health.up, socket.health.lost], [true, false]);
    assert.equal((await client.globalStats()).entries, 5);
    socket.close();
    assert.equal(timers.pending, 0);
  });

  it('closed while down: no attempt, no timer, and a late error of the old socket changes nothing', async () => {
    const { socket, timers, transports } = setup();
    const first = transports[0]!;
    first.fail(new ConntrackError('CT_ERR_SOCKET', 'netlink receive: recvmmsg failed'));
    socket.close();
    assert.equal(timers.pending, 0);
    first.fail(new ConntrackError('CT_ERR_SOCKET', 'netlink receive: recvmmsg failed'));
    await timers.advance(60_000);
    assert.deepEqual([transports.length, socket.health.failures, socket.health.lost], [1, 1, false]);
  });
});

describe('the namespace unit’s sockets and the namespace-id socket recover (both modes)', () => {
  const ref = (label: string, own = false): NamespaceRef => ({
    inode: label,
    name: label,
    foundAt: `/run/netns/${label}`,
    own,
    label,
    fd: fakeFd(label),
  });

  for (const labelled of [false, true]) {
    it(`${labelled ? '--netns.all' : 'default mode'}: a failed statistics socket is reopened inside its namespace; one that cannot be is reported lost`, async () => {
      const timers = new FakeTimers();
      const refuse = new Set<string>();
      const { all, kernels, transports } = fakeNamespaces({ labelled, refuse, timers, ids: { a: 3 } });
      const label = labelled ? 'a' : 'home';
      await all.apply({
        added: [ref('home', true), ...(labelled ? [ref('a')] : [])],
        removed: [],
        skipped: 0,
      });
      kernels.get(label)!.entries = 4;
      const unit = all.followed.find((u) => u.ref.label === label)!;
      unit.activate();
      await unit.seeded;
      assert.deepEqual(
        unit.sockets.map((s) => [s.name, s.up]),
        [
          ['stats', true],
          ['dump', true],
        ],
      );
      assert.equal(await unit.probe(), 4);
      const statsTransport = transports.find((t) =>
        t.sent.some((m) => m.type === ((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET_STATS)),
      )!;
      const opened = transports.length;
      statsTransport.fail(new ConntrackError('CT_ERR_SOCKET', 'netlink receive: recvmmsg failed'));
      assert.equal(unit.sockets[0]!.up, false);
      assert.equal(await unit.probe(), undefined, 'down: no count, an error counted');
      await timers.advance(1000);
      assert.equal(transports.length, opened + 1, 'reopened through the namespace descriptor');
      assert.equal(await unit.probe(), 4);
      assert.equal(all.lostSocket(), undefined);

      // The namespace can no longer be entered: after 5 attempts /healthz is told.
      refuse.add(label);
      transports.at(-1)!.fail(new ConntrackError('CT_ERR_SOCKET', 'netlink receive: recvmmsg failed'));
      await timers.advance(30_999);
      assert.equal(all.lostSocket(), undefined, 'still within its attempts');
      await timers.advance(1);
      assert.equal(all.lostSocket(), 'stats');
      refuse.clear();
      await timers.advance(30_000);
      assert.equal(all.lostSocket(), undefined);
      all.close();
      assert.equal(timers.pending, 0, 'closing the namespaces stops every retry');
    });
  }

  it('NsidClient: a failed rtnetlink socket is reopened and the next scan gets its id', async () => {
    const timers = new FakeTimers();
    const transports: FakeTransport[] = [];
    const reply = (seq: number) => {
      const p = Buffer.alloc(12);
      writeU16h(p, 8, 4);
      writeU16h(p, 1, 6); // NETNSA_NSID
      writeU32h(p, 6, 8);
      return encodeMessage(RTM_NEWNSID, 0, seq, p);
    };
    const socket = new ResilientRequestSocket(
      'nsid',
      (onBroken) => {
        const t = new FakeTransport((req) => [[reply(req.seq), ack(req.seq)]]);
        transports.push(t);
        return new RequestSocket(t, 5000, onBroken);
      },
      { log: new RecordingLog(), timers },
    );
    const nsids = new NsidClient(socket, socket.health);
    assert.equal(await nsids.get(3), 6);
    transports[0]!.fail(new ConntrackError('CT_ERR_SOCKET', 'netlink receive: recvmmsg failed'));
    await assert.rejects(nsids.ensure(3), socketError);
    assert.equal(nsids.health?.up, false);
    await timers.advance(1000);
    assert.equal(await nsids.ensure(3), 6);
    nsids.close();
  });
});
