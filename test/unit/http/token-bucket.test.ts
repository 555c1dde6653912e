import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TokenBucket } from '../../../src/http/token-bucket.js';

describe('TokenBucket (Go x/time/rate semantics, as exporter-toolkit rate_limit)', () => {
  const clock = () => {
    let t = 1000;
    return {
      now: () => t,
      advance: (ms: number) => {
        t += ms;
      },
    };
  };

  it('starts full: burst requests pass at once, the next is refused', () => {
    const c = clock();
    const b = new TokenBucket(1000, 3, c.now);
    assert.deepEqual([b.allow(), b.allow(), b.allow(), b.allow()], [true, true, true, false]);
  });

  it('gains one token per interval, in fractions, up to burst', () => {
    const c = clock();
    const b = new TokenBucket(1000, 2, c.now);
    b.allow();
    b.allow();
    c.advance(500);
    assert.equal(b.allow(), false, 'half a token is not one');
    assert.equal(b.waitMs(), 500);
    c.advance(500);
    assert.equal(b.allow(), true);
    c.advance(60_000);
    assert.deepEqual([b.allow(), b.allow(), b.allow()], [true, true, false], 'capped at burst');
  });

  it('a refused request takes nothing: the wait does not grow', () => {
    const c = clock();
    const b = new TokenBucket(100, 1, c.now);
    b.allow();
    for (let i = 0; i < 10; i++) b.allow();
    c.advance(100);
    assert.equal(b.available(), true);
  });
});
