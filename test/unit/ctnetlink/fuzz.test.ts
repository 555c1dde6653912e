/**
 * Malformed input: random bytes, every truncation of every captured message, and bit-level
 * mutations of them. Each decoder must return or throw a ConntrackError with a known code and an
 * offset inside the input; anything else (RangeError, TypeError, ...) fails with the input's hex.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeEvent } from '../../../src/ctnetlink/event.js';
import { decodeFlow } from '../../../src/ctnetlink/flow.js';
import { decodeCpuStats, decodeGlobalStats } from '../../../src/ctnetlink/stats.js';
import { ConntrackError } from '../../../src/errors.js';
import { forEachMessage, readU16h } from '../../../src/netlink/nlmsg.js';
import { allFixtures, bytes } from '../helpers/fixtures.js';

const SEED = 0x5eed_c0de;
const CODES = new Set(['CT_ERR_TRUNCATED', 'CT_ERR_ATTR_LENGTH', 'CT_ERR_NESTING', 'CT_ERR_MESSAGE_TYPE']);

/** mulberry32: small, seedable, good enough to explore. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Outcome {
  threw: number;
  ok: number;
}

function check(buf: Buffer, outcome: Outcome): void {
  const decoders: [string, () => unknown][] = [
    ['decodeFlow', () => decodeFlow(buf, 0, buf.length)],
    [
      'decodeEvent',
      () =>
        decodeEvent(
          buf,
          buf.length >= 6 ? readU16h(buf, 4) : 0,
          buf.length >= 8 ? readU16h(buf, 6) : 0,
          0,
          buf.length,
        ),
    ],
    ['decodeCpuStats', () => decodeCpuStats(buf, 0, buf.length)],
    ['decodeGlobalStats', () => decodeGlobalStats(buf, 0, buf.length)],
    ['forEachMessage', () => forEachMessage(buf, () => {})],
  ];
  for (const [name, run] of decoders) {
    try {
      run();
      outcome.ok++;
    } catch (err) {
      if (!(err instanceof ConntrackError) || !CODES.has(err.code)) {
        assert.fail(`${name} threw ${String(err)} (seed ${SEED}) on ${buf.toString('hex')}`);
      }
      if (err.offset !== undefined) {
        assert.ok(
          err.offset >= 0 && err.offset <= buf.length,
          `${name}: offset ${err.offset} outside ${buf.length} bytes`,
        );
      }
      outcome.threw++;
    }
  }
}

describe(`fuzzing the decoders (seed 0x${SEED.toString(16)})`, () => {
  const seeds = allFixtures.map(bytes);
  const rand = prng(SEED);
  const int = (n: number) => Math.floor(rand() * n);

  it('random bytes', () => {
    const o = { threw: 0, ok: 0 };
    for (let i = 0; i < 5000; i++) {
      const b = Buffer.alloc(int(200));
      for (let j = 0; j < b.length; j++) b[j] = int(256);
      check(b, o);
    }
    assert.ok(o.threw > 0);
  });

  it('every truncation of every captured message', () => {
    const o = { threw: 0, ok: 0 };
    for (const s of seeds) for (let len = 0; len < s.length; len++) check(s.subarray(0, len), o);
    assert.ok(o.threw > 1000, `truncations are rejected (${o.threw})`);
  });

  it('byte flips and attribute length lies in captured messages', () => {
    const o = { threw: 0, ok: 0 };
    for (let i = 0; i < 20_000; i++) {
      const b = Buffer.from(seeds[int(seeds.length)]!);
      const at = 20 + int(Math.max(1, b.length - 21));
      if (rand() < 0.5) {
        b[at] = int(256);
      } else {
        // an attribute (or nested attribute) length that lies: aligned offsets hold nla_len
        const aligned = at & ~3;
        if (aligned + 2 <= b.length) b.writeUInt16LE(int(0x10000), aligned);
      }
      check(b, o);
    }
    assert.ok(o.threw > 1000, `mutations are rejected (${o.threw})`);
    assert.ok(o.ok > 1000, `harmless mutations decode (${o.ok})`);
  });
});
