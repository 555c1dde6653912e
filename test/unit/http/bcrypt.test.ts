import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import bcrypt from 'bcryptjs';
import { compareOffThread } from '../../../src/http/bcrypt.js';

describe('bcrypt on a worker thread', () => {
  const hash = bcrypt.hashSync('right', 10);

  it('compares as bcryptjs does', async () => {
    assert.deepEqual(await Promise.all([compareOffThread('right', hash), compareOffThread('wrong', hash)]), [
      true,
      false,
    ]);
  });

  it('leaves the event loop free while it works', async () => {
    let turns = 0;
    const tick = (): void => {
      turns++;
      if (!done) setImmediate(tick);
    };
    let done = false;
    const check = compareOffThread('right', hash).finally(() => {
      done = true;
    });
    setImmediate(tick);
    assert.equal(await check, true);
    // A cost-10 bcrypt is thousands of loop turns long; on the main thread there would be none.
    assert.ok(turns > 1, `${turns} turns`);
  });

  it('a malformed hash is an error, not a refusal', async () => {
    await assert.rejects(compareOffThread('x', `$2x$10$${'a'.repeat(53)}`));
  });
});
