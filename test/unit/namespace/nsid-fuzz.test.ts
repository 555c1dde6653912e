/**
 * NsidClient against replies no kernel should send, deterministically (seeded, as the decoder
 * fuzz): valid replies with any id, replies whose attributes are random bytes, cut short (in the
 * datagram, or with a consistent but short length), random datagrams, replies to another sequence
 * number, other message types, errors with any errno, datagrams flagged truncated, silence. Every
 * get/ensure must resolve to an id in -1..2^31-1 or reject with one of our error codes (never a
 * TypeError or RangeError, never wrapped as a failed handler), each outcome is counted, none of
 * it breaks the socket (no reopen), and a valid reply afterwards still gets its id.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConntrackError, type ErrorCode } from '../../../src/errors.js';
import { NETNSA_NSID, NsidClient, RTM_NEWNSID } from '../../../src/namespace/nsid.js';
import { encodeMessage, NLMSG_HDRLEN, writeU16h, writeU32h } from '../../../src/netlink/nlmsg.js';
import { RequestSocket } from '../../../src/netlink/request.js';
import { ResilientRequestSocket } from '../../../src/sync/resubscribe.js';
import { ack, type Datagrams, FakeTransport, type SentMessage } from '../../support/fake-transport.js';
import { mulberry32 } from '../helpers/fixtures.js';
import { RecordingLog } from '../sync/scripted.js';

/** FUZZ_SEED=... reproduces a run. */
const SEED = Number(process.env['FUZZ_SEED'] ?? 0x45e1d) >>> 0;
const SEED_HEX = `0x${SEED.toString(16)}`;
const REQUESTS = 2000;
const RTM_NEWLINK = 16;

/** What a request may fail with on replies like these. */
const ALLOWED: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'CT_ERR_TRUNCATED',
  'CT_ERR_ATTR_LENGTH',
  'CT_ERR_MESSAGE_TYPE',
  'CT_ERR_MISSING_ATTR',
  'CT_ERR_KERNEL',
  'CT_ERR_TIMEOUT',
]);

/** RTM_NEWNSID for `seq` with `attrs` after the padded rtgenmsg. */
function newnsid(seq: number, attrs: Buffer, type = RTM_NEWNSID): Buffer {
  return encodeMessage(type, 0, seq, Buffer.concat([Buffer.alloc(4), attrs]));
}

function nsidAttr(id: number): Buffer {
  const a = Buffer.alloc(8);
  writeU16h(a, 8, 0);
  writeU16h(a, NETNSA_NSID, 2);
  writeU32h(a, id >>> 0, 4);
  return a;
}

const SCENARIOS = [
  'valid',
  'random attributes',
  'cut in the datagram',
  'short length',
  'random datagram',
  'another seq',
  'another type',
  'kernel error',
  'flagged truncated',
  'silence',
] as const;
type Scenario = (typeof SCENARIOS)[number];

/** Seeded choices. */
function dice(seed: number) {
  const rand = mulberry32(seed);
  const int = (n: number) => Math.floor(rand() * n);
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
  return { rand, int, bytes };
}
type Dice = ReturnType<typeof dice>;

/** The kernel's side of `scenario` for one request (undefined: delivered otherwise, or nothing). */
function answer(
  d: Dice,
  scenario: Scenario,
  req: SentMessage,
  transport: FakeTransport,
): Datagrams | undefined {
  const seq = req.seq;
  const id = d.rand() < 0.2 ? -1 : d.int(2 ** 31);
  const valid = newnsid(seq, nsidAttr(id));
  switch (scenario) {
    case 'valid':
      return [[valid, ack(seq)]];
    case 'random attributes':
      return [[newnsid(seq, d.bytes(d.int(40))), ack(seq)]];
    case 'cut in the datagram':
      return [[valid.subarray(0, d.int(valid.length))], [ack(seq)]];
    case 'short length': {
      const cut = Buffer.from(valid.subarray(0, NLMSG_HDRLEN + d.int(valid.length - NLMSG_HDRLEN)));
      writeU32h(cut, cut.length, 0);
      return [[cut, ack(seq)]];
    }
    case 'random datagram':
      return [[d.bytes(d.int(64))], [ack(seq)]];
    case 'another seq':
      return [[newnsid(seq + 1 + d.int(5), nsidAttr(id)), ack(seq)]];
    case 'another type':
      return [[newnsid(seq, nsidAttr(id), RTM_NEWLINK + d.int(80)), ack(seq)]];
    case 'kernel error':
      return [[ack(seq, 1 + d.int(133))]];
    case 'flagged truncated':
      queueMicrotask(() => transport.deliver([[valid, ack(seq)]], { truncated: 0 }));
      return undefined;
    case 'silence':
      return undefined;
  }
}

/** An id in range, or one of the allowed errors: the outcome's name, else the test fails. */
async function outcomeOf(request: Promise<number>, where: string): Promise<string> {
  try {
    const id = await request;
    assert.ok(Number.isInteger(id) && id >= -1 && id <= 2 ** 31 - 1, `${where}: id ${id}`);
    return id >= 0 ? 'id' : 'no id';
  } catch (err) {
    if (!(err instanceof ConntrackError)) assert.fail(`${where}: threw ${String(err)}`);
    assert.ok(ALLOWED.has(err.code), `${where}: ${err.code}: ${err.message}`);
    return err.code;
  }
}

/** Mostly valid replies; silence rarely, as each one waits for the 5 ms time-out. */
function chooseScenario(d: Dice): Scenario {
  const s = d.rand() < 0.3 ? 'valid' : SCENARIOS[d.int(SCENARIOS.length)]!;
  return s === 'silence' && d.rand() < 0.7 ? 'valid' : s;
}

/** get or ensure, for a random descriptor. */
function ask(d: Dice, nsids: NsidClient): Promise<number> {
  const fd = d.int(1024);
  return d.rand() < 0.5 ? nsids.get(fd) : nsids.ensure(fd);
}

describe(`fuzzing the namespace-id replies (FUZZ_SEED=${SEED_HEX})`, () => {
  it(`${REQUESTS} requests answered with garbage: an id or one of our errors, counted, and the socket stays`, async (t) => {
    const d = dice(SEED);
    let scenario: Scenario = 'valid';
    const transports: FakeTransport[] = [];
    const socket = new ResilientRequestSocket(
      'nsid',
      (onBroken) => {
        const tr: FakeTransport = new FakeTransport((req) => answer(d, scenario, req, tr));
        transports.push(tr);
        return new RequestSocket(tr, 5, onBroken);
      },
      { log: new RecordingLog() },
    );
    const nsids = new NsidClient(socket, socket.health);
    const outcomes = new Map<string, number>();

    for (let i = 0; i < REQUESTS; i++) {
      scenario = chooseScenario(d);
      const outcome = await outcomeOf(ask(d, nsids), `request ${i}, ${scenario} (FUZZ_SEED=${SEED_HEX})`);
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }
    t.diagnostic(JSON.stringify(Object.fromEntries(outcomes)));

    // Counted, every kind: ids, none, and each failure the garbage can cause.
    const kinds = [
      'id',
      'no id',
      'CT_ERR_TRUNCATED',
      'CT_ERR_MESSAGE_TYPE',
      'CT_ERR_MISSING_ATTR',
      'CT_ERR_KERNEL',
      'CT_ERR_TIMEOUT',
    ];
    for (const k of kinds) assert.ok((outcomes.get(k) ?? 0) > 0, `no outcome ${k} in ${REQUESTS} requests`);
    // Garbage in replies is the request's failure, never the socket's: one socket throughout.
    assert.deepEqual([transports.length, socket.health.failures, socket.health.up], [1, 0, true]);
    // Bounded: one request sent per get (two or three per ensure), nothing queued or pending.
    const sent = transports[0]!.sent.length;
    assert.ok(sent >= REQUESTS && sent <= 3 * REQUESTS, `sent ${sent}`);
    scenario = 'valid';
    assert.ok((await nsids.get(3)) >= -1, 'a valid reply afterwards gets its id');
    nsids.close();
  });
});
