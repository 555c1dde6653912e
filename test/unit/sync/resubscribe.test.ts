import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConntrackError } from '../../../src/errors.js';
import type { EventSocketHandlers } from '../../../src/netlink/events.js';
import type { Batch } from '../../../src/netlink/transport.js';
import { Collector } from '../../../src/sync/collector.js';
import {
  type EventConsumer,
  type OpenEventSocket,
  REOPEN_POLICY,
  ResilientEventSocket,
} from '../../../src/sync/resubscribe.js';
import { encodeFlow } from '../../support/codec/flow.js';
import { batchOf } from '../../support/fake-transport.js';
import { tcp } from '../helpers/flows.js';
import { FakeTimers } from './fake-timers.js';
import { emptyTable, RecordingLog, ScriptedDumper } from './scripted.js';

class FakeSocket implements OpenEventSocket {
  closed = false;
  readonly receiveBufferSize = 2 * 16 * 1024 * 1024;
  constructor(readonly handlers: EventSocketHandlers) {}
  close(): void {
    this.closed = true;
  }
  /** What the addon reports when a receive fails. */
  fail(): void {
    this.handlers.onError(new ConntrackError('CT_ERR_SOCKET', 'netlink receive: recvmmsg failed'));
  }
}

/** Opens fake sockets; the next `failures` attempts throw, as opening in a namespace being torn down does. */
class FakeSocketFactory {
  readonly opened: FakeSocket[] = [];
  failures = 0;
  readonly open = (handlers: EventSocketHandlers): FakeSocket => {
    if (this.failures > 0) {
      this.failures--;
      throw new ConntrackError('CT_ERR_SOCKET', 'opening the ctnetlink event socket: ENOMEM');
    }
    const s = new FakeSocket(handlers);
    this.opened.push(s);
    return s;
  };
  get last(): FakeSocket {
    const s = this.opened.at(-1);
    assert.ok(s, 'no socket was opened');
    return s;
  }
}

class CountingConsumer implements EventConsumer {
  batches = 0;
  lost = 0;
  resubscribed = 0;
  onBatch(_batch: Batch): void {
    this.batches++;
  }
  onOverrun(lost: number): void {
    this.lost += lost;
  }
  onResubscribed(): void {
    this.resubscribed++;
  }
}

function setup(consumer: EventConsumer = new CountingConsumer()) {
  const sockets = new FakeSocketFactory();
  const timers = new FakeTimers();
  const log = new RecordingLog();
  const events = new ResilientEventSocket(consumer, sockets.open, log, timers);
  return { sockets, timers, log, events };
}

describe('ResilientEventSocket (the reconnect policy)', () => {
  it('passes batches and overruns through to the consumer', () => {
    const consumer = new CountingConsumer();
    const { sockets, events } = setup(consumer);
    sockets.last.handlers.onBatch(batchOf([Buffer.alloc(16)]));
    sockets.last.handlers.onOverrun(12);
    assert.deepEqual([consumer.batches, consumer.lost, consumer.resubscribed], [1, 12, 0]);
    assert.equal(events.receiveBufferSize, 2 * 16 * 1024 * 1024);
  });

  it('a failed socket is closed and reopened a second later, backing off 2 s, 4 s; the consumer hears once, when it is open', async () => {
    const consumer = new CountingConsumer();
    const { sockets, timers, log, events } = setup(consumer);
    const first = sockets.last;
    first.fail();
    assert.equal(first.closed, true);
    assert.equal(events.receiveBufferSize, undefined, 'no socket while it is being reopened');
    assert.deepEqual([events.health.up, events.health.failures], [false, 1]);
    sockets.failures = 2;
    await timers.advance(999);
    assert.equal(sockets.failures, 2, 'not before a second');
    await timers.advance(1);
    assert.equal(sockets.failures, 1, 'first attempt at 1 s');
    await timers.advance(1999);
    assert.equal(sockets.failures, 1, 'the second 2 s later');
    await timers.advance(1);
    assert.deepEqual([sockets.failures, sockets.opened.length, consumer.resubscribed], [0, 1, 0]);
    await timers.advance(4000);
    assert.equal(sockets.opened.length, 2);
    assert.equal(consumer.resubscribed, 1);
    assert.equal(sockets.last.closed, false);
    assert.equal(events.receiveBufferSize, 2 * 16 * 1024 * 1024);
    assert.deepEqual([events.health.up, events.health.lost], [true, false]);
    assert.equal(log.count('error'), 3, 'the failure and the two failed attempts');
    await timers.advance(60_000);
    assert.deepEqual([sockets.opened.length, consumer.resubscribed, timers.pending], [2, 1, 0]);
  });

  it(`lost after ${REOPEN_POLICY.attempts} failed attempts in a row (31 s), still retried every 30 s, and healthy again once open`, async () => {
    const { sockets, timers, events } = setup();
    sockets.last.fail();
    sockets.failures = 1000;
    await timers.advance(1000 + 2000 + 4000 + 8000);
    assert.deepEqual([events.health.lost, sockets.failures], [false, 996]);
    await timers.advance(16_000);
    assert.deepEqual([events.health.lost, sockets.failures], [true, 995], 'lost at the fifth');
    await timers.advance(29_999);
    assert.equal(sockets.failures, 995, 'the back-off stops at 30 s');
    await timers.advance(1);
    assert.equal(sockets.failures, 994);
    sockets.failures = 0;
    await timers.advance(30_000);
    assert.deepEqual([events.health.up, events.health.lost, events.health.failures], [true, false, 1]);
    sockets.last.fail();
    assert.deepEqual([events.health.up, events.health.lost, events.health.failures], [false, false, 2]);
    await timers.advance(1000);
    assert.equal(events.health.up, true, 'a new failure starts the back-off at 1 s again');
  });

  it('closed while it waits to reopen: no reopening, no timer left', async () => {
    const consumer = new CountingConsumer();
    const { sockets, timers, events } = setup(consumer);
    sockets.last.fail();
    events.close();
    assert.equal(timers.pending, 0);
    await timers.advance(10_000);
    assert.equal(sockets.opened.length, 1);
    assert.equal(consumer.resubscribed, 0);
  });

  it('closed after failed attempts: the retries stop', async () => {
    const { sockets, timers, events } = setup();
    sockets.last.fail();
    sockets.failures = 100;
    await timers.advance(3_000);
    events.close();
    await timers.advance(60_000);
    assert.equal(sockets.failures, 98, 'attempts at 1 s and 3 s, none after close');
    assert.equal(events.health.lost, false, 'a closed socket is not lost');
  });

  it('the first open failing is the caller’s error: thrown, nothing retried', () => {
    const sockets = new FakeSocketFactory();
    sockets.failures = 1;
    const timers = new FakeTimers();
    assert.throws(
      () => new ResilientEventSocket(new CountingConsumer(), sockets.open, new RecordingLog(), timers),
      (e: unknown) => e instanceof ConntrackError && e.code === 'CT_ERR_SOCKET',
    );
    assert.equal(timers.pending, 0);
  });

  it('a late error from a socket already replaced is ignored', async () => {
    const consumer = new CountingConsumer();
    const { sockets, timers } = setup(consumer);
    const first = sockets.last;
    first.fail();
    await timers.advance(1000);
    const second = sockets.last;
    first.fail();
    assert.equal(second.closed, false);
    assert.equal(timers.pending, 0);
    assert.equal(consumer.resubscribed, 1);
  });

  it('a reopen means a resync whose new flows are followed as silent', async () => {
    const timers = new FakeTimers();
    const dumper = new ScriptedDumper([]);
    const table = emptyTable();
    const log = new RecordingLog();
    const collector = new Collector({ table, dumper, log, timers, cpuClock: () => 0 });
    const sockets = new FakeSocketFactory();
    new ResilientEventSocket(collector, sockets.open, log, timers);
    await collector.start();
    sockets.last.handlers.onBatch(batchOf([encodeFlow(tcp(1, 'SYN_SENT'), { type: 'new' })]));
    assert.deepEqual([table.size, table.silentFlows], [1, 0]);
    sockets.last.fail();
    dumper.flows = [tcp(1, 'ESTABLISHED'), tcp(2, 'ESTABLISHED')]; // 2 was made while nobody listened
    await timers.advance(1000);
    assert.equal(collector.counters.resyncs.overrun, 1);
    assert.deepEqual([table.size, table.silentFlows], [2, 1]);
    collector.stop();
  });
});
