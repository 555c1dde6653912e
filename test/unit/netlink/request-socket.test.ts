/**
 * RequestSocket's logic without a kernel: the fake transport (test/support/fake-transport.ts)
 * replays replies the way the kernel frames them (several messages per datagram, several
 * datagrams per batch), so matching by sequence number, multipart dumps, DONE with an errno,
 * DUMP_INTR, truncation, socket errors and time-outs are tested without root.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConntrackError } from '../../../src/errors.js';
import {
  encodeMessage,
  NLM_F_ACK,
  NLM_F_DUMP,
  NLM_F_DUMP_INTR,
  NLM_F_MULTI,
  NLMSG_HDRLEN,
} from '../../../src/netlink/nlmsg.js';
import { RequestSocket } from '../../../src/netlink/request.js';
import { ack, done, FakeTransport } from '../../support/fake-transport.js';

const CT_GET = 0x101;

function entry(seq: number, n: number, flags = NLM_F_MULTI): Buffer {
  const payload = Buffer.alloc(8);
  payload.writeUInt32BE(n, 4);
  return encodeMessage(0x100, flags, seq, payload);
}

function collect(sock: RequestSocket, flags: number) {
  const values: number[] = [];
  const result = sock.request(CT_GET, flags, Buffer.alloc(4), (buf, _t, _f, start) =>
    values.push(buf.readUInt32BE(start + NLMSG_HDRLEN + 4)),
  );
  return { values, result };
}

const tick = () => new Promise((r) => setImmediate(r));
const kernelError = (code: string, errno?: number) => (e: unknown) =>
  e instanceof ConntrackError && e.code === code && (errno === undefined || e.errno === errno);

describe('RequestSocket', () => {
  it('streams a multipart dump across datagrams and batches until DONE', async () => {
    const t = new FakeTransport();
    const { values, result } = collect(new RequestSocket(t), NLM_F_DUMP);
    await tick();
    const seq = t.lastSeq;
    assert.equal(t.sent[0]!.flags & NLM_F_DUMP, NLM_F_DUMP);
    t.deliver([[entry(seq, 1), entry(seq, 2)], [entry(seq, 3)]]);
    t.deliver([[entry(seq, 4), done(seq)]]);
    assert.deepEqual(await result, { interrupted: false, messages: 4 });
    assert.deepEqual(values, [1, 2, 3, 4]);
    // idle -> in flight -> idle: the socket keeps the process alive only while a request runs
    assert.deepEqual(t.refs, [false, true, false]);
  });

  it('ignores replies to other sequence numbers (a late reply to a timed-out request)', async () => {
    const t = new FakeTransport();
    const { values, result } = collect(new RequestSocket(t), NLM_F_DUMP);
    await tick();
    const seq = t.lastSeq;
    t.deliver([
      [entry(seq - 1, 99), done(seq - 1)],
      [entry(seq, 1), done(seq)],
    ]);
    assert.deepEqual(await result, { interrupted: false, messages: 1 });
    assert.deepEqual(values, [1]);
  });

  it('reports NLM_F_DUMP_INTR', async () => {
    const t = new FakeTransport();
    const { result } = collect(new RequestSocket(t), NLM_F_DUMP);
    await tick();
    t.deliver([[entry(t.lastSeq, 1, NLM_F_MULTI | NLM_F_DUMP_INTR), done(t.lastSeq)]]);
    assert.equal((await result).interrupted, true);
  });

  it('rejects a dump whose DONE carries an errno, and a request answered with NLMSG_ERROR', async () => {
    const t = new FakeTransport();
    const sock = new RequestSocket(t);
    const a = collect(sock, NLM_F_DUMP);
    await tick();
    t.deliver([[entry(t.lastSeq, 1), done(t.lastSeq, 12)]]);
    await assert.rejects(a.result, kernelError('CT_ERR_KERNEL', 12));
    const b = collect(sock, 0);
    await tick();
    assert.equal(t.sent[1]!.flags & NLM_F_ACK, NLM_F_ACK, 'non-dump requests ask for an ACK');
    t.deliver([[ack(t.lastSeq, 1)]]);
    await assert.rejects(b.result, kernelError('CT_ERR_KERNEL', 1));
  });

  it('ends a non-dump request at its ACK, after its (NLM_F_MULTI) reply', async () => {
    const t = new FakeTransport();
    const { values, result } = collect(new RequestSocket(t), 0);
    await tick();
    t.deliver([[entry(t.lastSeq, 7)], [ack(t.lastSeq)]]);
    assert.deepEqual(await result, { interrupted: false, messages: 1 });
    assert.deepEqual(values, [7]);
  });

  it('fails a request whose reply datagram was truncated', async () => {
    const t = new FakeTransport();
    const { result } = collect(new RequestSocket(t), NLM_F_DUMP);
    await tick();
    t.deliver([[entry(t.lastSeq, 1)]], { truncated: 0 });
    await assert.rejects(result, kernelError('CT_ERR_TRUNCATED'));
  });

  it('fails, and does not complete, a reply whose lost datagram comes before its end', async () => {
    const t = new FakeTransport();
    const { values, result } = collect(new RequestSocket(t), NLM_F_DUMP);
    await tick();
    t.deliver([[entry(t.lastSeq, 1)], [entry(t.lastSeq, 2), done(t.lastSeq)]], { truncated: 0 });
    await assert.rejects(result, kernelError('CT_ERR_TRUNCATED'));
    assert.deepEqual(values, [], 'nothing after the lost datagram was delivered');
  });

  it('fails a request whose reply is malformed', async () => {
    const t = new FakeTransport();
    const { result } = collect(new RequestSocket(t), NLM_F_DUMP);
    await tick();
    const bad = entry(t.lastSeq, 1);
    bad.writeUInt32LE(bad.length + 64, 0); // claims more bytes than the datagram has
    t.deliver([[bad]]);
    await assert.rejects(result, kernelError('CT_ERR_TRUNCATED'));
  });

  it('times out on silence, then serves the next request', async () => {
    const t = new FakeTransport();
    const sock = new RequestSocket(t, 20);
    const a = collect(sock, NLM_F_DUMP);
    await assert.rejects(a.result, kernelError('CT_ERR_TIMEOUT'));
    const b = collect(sock, NLM_F_DUMP);
    await tick();
    t.deliver([[done(t.lastSeq)]]);
    assert.deepEqual(await b.result, { interrupted: false, messages: 0 });
  });

  it('runs requests one at a time, in order', async () => {
    const t = new FakeTransport();
    const sock = new RequestSocket(t);
    const a = collect(sock, NLM_F_DUMP);
    const b = collect(sock, NLM_F_DUMP);
    await tick();
    assert.equal(t.sent.length, 1, 'the second waits for the first');
    t.deliver([[entry(t.lastSeq, 1), done(t.lastSeq)]]);
    await a.result;
    await tick();
    assert.equal(t.sent.length, 2);
    t.deliver([[entry(t.lastSeq, 2), done(t.lastSeq)]]);
    await b.result;
    assert.deepEqual([a.values, b.values], [[1], [2]]);
  });

  it('a socket error rejects the request in flight; the next one is served', async () => {
    const t = new FakeTransport();
    const sock = new RequestSocket(t);
    const a = collect(sock, NLM_F_DUMP);
    await tick();
    t.fail(new ConntrackError('CT_ERR_SOCKET', 'recvmmsg failed', { errno: 105 }));
    await assert.rejects(a.result, kernelError('CT_ERR_SOCKET', 105));
    const b = collect(sock, NLM_F_DUMP);
    await tick();
    t.deliver([[done(t.lastSeq)]]);
    assert.deepEqual(await b.result, { interrupted: false, messages: 0 });
  });

  it('close rejects the request in flight and closes the transport', async () => {
    const t = new FakeTransport();
    const sock = new RequestSocket(t);
    const a = collect(sock, NLM_F_DUMP);
    await tick();
    sock.close();
    await assert.rejects(a.result, kernelError('CT_ERR_SOCKET'));
    assert.equal(t.closed, true);
    await assert.rejects(collect(sock, 0).result, kernelError('CT_ERR_SOCKET'));
  });
});
