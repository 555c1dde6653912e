/**
 * Malformed input, deterministically (seeded): random bytes, every truncation of every captured
 * message, single-byte mutations, lying 16-bit attribute lengths at every nesting depth, flipped
 * nested flags. Each decoder must return or throw a ConntrackError whose code is one of the
 * decoder codes of errors.ts and whose offset lies inside the input; anything else (RangeError,
 * TypeError, an error without offset, ...) fails with the seed, the case and the input's hex.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decodeCpuStats,
  decodeExpectationCpuStats,
  decodeGlobalStats,
} from '../../../src/ctnetlink/stats.js';
import { FlowSummary, summarizeFlow } from '../../../src/ctnetlink/summary.js';
import { ConntrackError, type ErrorCode } from '../../../src/errors.js';
import { decodeNsidReply } from '../../../src/namespace/nsid.js';
import { NLA_F_NESTED, NLA_HDRLEN } from '../../../src/netlink/attributes.js';
import { MessageCursor } from '../../../src/netlink/framing.js';
import { align4, readU16h, readU32h, writeU16h, writeU32h } from '../../../src/netlink/nlmsg.js';
import { decodeEvent } from '../../support/codec/event.js';
import { decodeFlow } from '../../support/codec/flow.js';
import { allFixtures, bytes, mulberry32 } from '../helpers/fixtures.js';

/** FUZZ_SEED=... reproduces a run; every test derives its own generator from it. */
const SEED = Number(process.env['FUZZ_SEED'] ?? 0x5eed_c0de) >>> 0;
const seedOf = (test: number): number => (SEED + Math.imul(test, 0x9e3779b9)) >>> 0;
const SEED_HEX = `0x${SEED.toString(16)}`;

/** What a decoder may throw on bad bytes; the other codes belong to sockets, requests and flags. */
const DECODER_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'CT_ERR_TRUNCATED',
  'CT_ERR_ATTR_LENGTH',
  'CT_ERR_NESTING',
  'CT_ERR_MESSAGE_TYPE',
  'CT_ERR_MISSING_ATTR',
]);

const messages = new MessageCursor();
/** Frames a datagram into messages, as the event path and the request socket do. */
function frame(buf: Buffer): void {
  const m = messages.reset(buf);
  while (m.next());
}

class Tally {
  inputs = 0;
  returned = 0;
  threw = 0;
  readonly codes = new Map<ErrorCode, number>();
}

const DECODERS: readonly (readonly [string, (buf: Buffer) => unknown])[] = [
  ['decodeFlow', (buf) => decodeFlow(buf, 0, buf.length)],
  ['summarizeFlow', (buf) => summarizeFlow(buf, 0, buf.length, new FlowSummary())],
  [
    'decodeEvent',
    (buf) =>
      decodeEvent(
        buf,
        buf.length >= 6 ? readU16h(buf, 4) : 0,
        buf.length >= 8 ? readU16h(buf, 6) : 0,
        0,
        buf.length,
      ),
  ],
  ['decodeCpuStats', (buf) => decodeCpuStats(buf, 0, buf.length)],
  ['decodeExpectationCpuStats', (buf) => decodeExpectationCpuStats(buf, 0, buf.length)],
  ['decodeGlobalStats', (buf) => decodeGlobalStats(buf, 0, buf.length)],
  // rtnetlink, not ctnetlink: the namespace-id reply (its request/reply fuzz: namespace/nsid-fuzz).
  ['decodeNsidReply', (buf) => decodeNsidReply(buf, 0, buf.length)],
  ['MessageCursor', frame],
];

function check(buf: Buffer, what: string, tally: Tally): void {
  tally.inputs++;
  for (const [name, decode] of DECODERS) {
    try {
      decode(buf);
      tally.returned++;
    } catch (err) {
      const where = () => `${name} on ${what} (FUZZ_SEED=${SEED_HEX}): ${buf.toString('hex')}`;
      if (!(err instanceof ConntrackError)) assert.fail(`${where()}\nthrew ${String(err)}`);
      if (!DECODER_CODES.has(err.code)) assert.fail(`${where()}\nthrew code ${err.code}`);
      if (err.offset === undefined || err.offset < 0 || err.offset > buf.length) {
        assert.fail(`${where()}\n${err.code} with offset ${err.offset} outside ${buf.length} bytes`);
      }
      tally.threw++;
      tally.codes.set(err.code, (tally.codes.get(err.code) ?? 0) + 1);
    }
  }
}

interface AttrHeader {
  /** Offset of nla_len. */
  at: number;
  len: number;
  /** End of the enclosing nest (or message). */
  parentEnd: number;
}

/** Every attribute header in a well-formed nfnetlink message, at any depth (nests carry NLA_F_NESTED). */
function attributeHeaders(buf: Buffer): AttrHeader[] {
  const out: AttrHeader[] = [];
  const walk = (from: number, end: number) => {
    let off = from;
    while (off + NLA_HDRLEN <= end) {
      const len = readU16h(buf, off);
      if (len < NLA_HDRLEN || off + len > end) return;
      out.push({ at: off, len, parentEnd: end });
      if (readU16h(buf, off + 2) & NLA_F_NESTED) walk(off + NLA_HDRLEN, off + len);
      off += align4(len);
    }
  };
  walk(20, Math.min(buf.length, readU32h(buf, 0)));
  return out;
}

/**
 * Message `s` with the length of attribute header `h` replaced by each lie around its true length
 * and its room, and with its nested flag flipped (a scalar that claims to be a nest, a nest that
 * claims to be a scalar).
 */
function headerLies(s: Buffer, h: AttrHeader, what: string, tally: Tally): void {
  const room = h.parentEnd - h.at;
  for (const lie of [0, 1, 3, 4, h.len - 1, h.len + 1, h.len + 4, room, room + 1, room + 4, 0xffff]) {
    if (lie < 0 || lie > 0xffff || lie === h.len) continue;
    const b = Buffer.from(s);
    writeU16h(b, lie, h.at);
    check(b, `${what} nla_len at ${h.at}: ${h.len} -> ${lie}`, tally);
  }
  const b = Buffer.from(s);
  writeU16h(b, readU16h(b, h.at + 2) ^ NLA_F_NESTED, h.at + 2);
  check(b, `${what} nested flag flipped at ${h.at}`, tally);
}

describe(`fuzzing the decoders (FUZZ_SEED=${SEED_HEX})`, () => {
  const seeds = allFixtures.map(bytes);
  /** A generator of its own per test, so each test is the same alone or in the suite. */
  const generator = (test: number) => {
    const rand = mulberry32(seedOf(test));
    return { rand, int: (n: number) => Math.floor(rand() * n) };
  };

  it('random bytes, bare and behind a plausible netlink and nfgenmsg header', (t) => {
    const tally = new Tally();
    const { rand, int } = generator(0);
    for (let i = 0; i < 3000; i++) {
      const b = Buffer.alloc(int(256));
      for (let j = 0; j < b.length; j++) b[j] = int(256);
      if (i % 2 === 1 && b.length >= 20) {
        writeU32h(b, b.length, 0);
        writeU16h(b, [0x100, 0x101, 0x102, 0x104, 0x105][int(5)]!, 4);
        b[16] = rand() < 0.5 ? 2 : 10;
      }
      check(b, `random #${i}`, tally);
    }
    t.diagnostic(`${tally.inputs} inputs, ${tally.threw} rejections`);
    assert.ok(tally.threw > 0);
  });

  it('every truncation of every captured message, with and without a matching nlmsg_len', (t) => {
    const tally = new Tally();
    for (const [i, s] of seeds.entries()) {
      for (let len = 0; len < s.length; len++) {
        check(s.subarray(0, len), `fixture ${i} cut to ${len}`, tally);
        if (len >= 16) {
          const b = Buffer.from(s.subarray(0, len));
          writeU32h(b, len, 0);
          check(b, `fixture ${i} cut to ${len}, nlmsg_len ${len}`, tally);
        }
      }
    }
    t.diagnostic(`${tally.inputs} inputs, ${tally.threw} rejections`);
    assert.ok(tally.codes.get('CT_ERR_TRUNCATED')! > 1000, 'truncations are rejected as truncated');
  });

  it('single-byte mutations of captured messages', (t) => {
    const tally = new Tally();
    const { int } = generator(2);
    for (let i = 0; i < 12_000; i++) {
      const k = int(seeds.length);
      const b = Buffer.from(seeds[k]!);
      const at = int(b.length);
      b[at] = int(256);
      check(b, `fixture ${k} byte ${at} := ${b[at]}`, tally);
    }
    t.diagnostic(`${tally.inputs} inputs, ${tally.threw} rejections`);
    assert.ok(tally.threw > 100, `byte mutations are rejected (${tally.threw})`);
    assert.ok(tally.returned > 1000, `harmless mutations decode (${tally.returned})`);
  });

  it('16-bit length lies at random offsets and in every attribute header at every depth', (t) => {
    const tally = new Tally();
    const { int } = generator(3);
    for (let i = 0; i < 4000; i++) {
      const k = int(seeds.length);
      const b = Buffer.from(seeds[k]!);
      const at = 2 * int(b.length >> 1);
      const v = int(0x10000);
      if (at + 2 <= b.length) writeU16h(b, v, at);
      check(b, `fixture ${k} u16 at ${at} := ${v}`, tally);
    }
    for (const [k, s] of seeds.entries()) {
      for (const h of attributeHeaders(s)) headerLies(s, h, `fixture ${k}`, tally);
    }
    t.diagnostic(`${tally.inputs} inputs, ${tally.threw} rejections`);
    for (const code of ['CT_ERR_TRUNCATED', 'CT_ERR_ATTR_LENGTH', 'CT_ERR_NESTING'] as const) {
      assert.ok((tally.codes.get(code) ?? 0) > 0, `length and nesting lies produce ${code}`);
    }
  });

  it('datagrams of several messages, mutated', (t) => {
    const tally = new Tally();
    const { int } = generator(4);
    for (let i = 0; i < 2000; i++) {
      const parts = [seeds[int(seeds.length)]!, seeds[int(seeds.length)]!];
      const b = Buffer.concat(
        parts.map((p) => Buffer.concat([p, Buffer.alloc(align4(p.length) - p.length)])),
      );
      const at = int(b.length);
      b[at] = int(256);
      check(b, `two messages, byte ${at} := ${b[at]}`, tally);
    }
    t.diagnostic(`${tally.inputs} inputs, ${tally.threw} rejections`);
    assert.ok(tally.threw > 0);
  });

  it('non-event message types are refused by decodeEvent', () => {
    const tally = new Tally();
    const stats = seeds.find((s) => (readU16h(s, 4) & 0xff) === 5)!;
    check(stats, 'a CT_GET_STATS reply', tally);
    // decodeEvent, and decodeNsidReply (no RTM_NEWNSID either)
    assert.equal(tally.codes.get('CT_ERR_MESSAGE_TYPE'), 2);
  });

  it('a million byte and length mutations through the decoders of the event and dump paths', (t) => {
    const { int } = generator(5);
    const summary = new FlowSummary();
    const flows = seeds.filter((b) => readU16h(b, 4) >> 8 === 1 && (readU16h(b, 4) & 0xff) <= 2);
    const hot: readonly (readonly [string, (buf: Buffer) => unknown])[] = [
      ['summarizeFlow', (buf) => summarizeFlow(buf, 0, buf.length, summary)],
      ['MessageCursor', frame],
    ];
    /** How many of the decoders rejected input `i`; each rejection must be our own typed error. */
    const rejections = (b: Buffer, i: number): number => {
      let n = 0;
      for (const [name, decode] of hot) {
        try {
          decode(b);
        } catch (err) {
          if (!(err instanceof ConntrackError) || !DECODER_CODES.has(err.code)) {
            assert.fail(
              `${name} (FUZZ_SEED=${SEED_HEX}, input ${i}): ${b.toString('hex')}\nthrew ${String(err)}`,
            );
          }
          n++;
        }
      }
      return n;
    };
    // Input i: a flow with a byte (odd i) or a u16 (even i) overwritten in place, decoded, then
    // put back (a million inputs without a million copies). Each returns its rejections.
    const byteMutated = (b: Buffer, i: number): number => {
      const at = int(b.length);
      const saved = b[at]!;
      b[at] = int(256);
      const n = rejections(b, i);
      b[at] = saved;
      return n;
    };
    const u16Mutated = (b: Buffer, i: number): number => {
      const at = 2 * int(b.length >> 1);
      const saved = readU16h(b, at);
      if (at + 2 > b.length) return rejections(b, i);
      writeU16h(b, int(0x10000), at);
      const n = rejections(b, i);
      writeU16h(b, saved, at);
      return n;
    };
    let inputs = 0;
    let rejected = 0;
    const N = 1_000_000;
    for (let i = 0; i < N; i++) {
      inputs++;
      const b = flows[int(flows.length)]!;
      rejected += i & 1 ? byteMutated(b, i) : u16Mutated(b, i);
    }
    t.diagnostic(`${inputs} inputs, ${rejected} rejections, FUZZ_SEED=${SEED_HEX}`);
    assert.equal(inputs, N);
    assert.ok(rejected > N / 10, `length lies are rejected (${rejected})`);
  });
});
