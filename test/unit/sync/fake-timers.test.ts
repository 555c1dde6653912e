import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeTimers } from './fake-timers.js';

describe('FakeTimers', () => {
  it('fires what falls due, earliest first, each at its own moment; intervals repeat', async () => {
    const t = new FakeTimers(0);
    const fired: string[] = [];
    const at = (name: string) => () => fired.push(`${name}@${t.now()}`);
    t.setTimeout(at('b'), 20);
    t.setTimeout(at('a'), 10);
    t.setTimeout(at('a2'), 10);
    t.setInterval(at('i'), 15);
    t.setTimeout(at('late'), 100);
    await t.advance(45);
    assert.deepEqual(fired, ['a@10', 'a2@10', 'i@15', 'b@20', 'i@30', 'i@45']);
    assert.equal(t.now(), 45);
    assert.equal(t.pending, 2, 'the interval and the late timer');
  });

  it('a cleared timer never fires; a timer set by a timer fires in the same advance if due', async () => {
    const t = new FakeTimers(0);
    const fired: number[] = [];
    const h = t.setTimeout(() => fired.push(-1), 5);
    t.clearTimeout(h);
    const i = t.setInterval(() => fired.push(-2), 5);
    t.clearInterval(i);
    t.setTimeout(() => t.setTimeout(() => fired.push(t.now()), 10), 10);
    await t.advance(30);
    assert.deepEqual(fired, [20]);
    assert.equal(t.pending, 0);
  });

  it('lets the promises a timer starts settle before the next timer fires', async () => {
    const t = new FakeTimers(0);
    const seen: string[] = [];
    t.setTimeout(() => {
      void Promise.resolve()
        .then(() => undefined)
        .then(() => seen.push('continuation'));
    }, 1);
    t.setTimeout(() => seen.push('next timer'), 2);
    await t.advance(2);
    assert.deepEqual(seen, ['continuation', 'next timer']);
  });
});
