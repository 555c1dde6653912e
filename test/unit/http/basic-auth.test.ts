import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import bcrypt from 'bcryptjs';
import { BasicAuth, parseBasic } from '../../../src/http/basic-auth.js';

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('BasicAuth', () => {
  const users = new Map([
    ['prometheus', bcrypt.hashSync('right', 4)],
    // htpasswd's $2y$ prefix
    ['alice', bcrypt.hashSync('pa:ss wörd', 4).replace(/^\$2b\$/, '$2y$')],
  ]);

  it('accepts the right password, and checks it with bcrypt only once', async () => {
    const auth = new BasicAuth(users);
    assert.equal(await auth.check(basic('prometheus', 'right')), true);
    assert.equal(auth.bcryptRuns, 1);
    for (let i = 0; i < 5; i++) assert.equal(await auth.check(basic('prometheus', 'right')), true);
    assert.equal(auth.bcryptRuns, 1, 'later scrapes compare a digest, not bcrypt');
    assert.equal(await auth.check(basic('alice', 'pa:ss wörd')), true, 'colons and UTF-8 in passwords; $2y$');
  });

  it('refuses a wrong password, an unknown user, and the right password under another user', async () => {
    const auth = new BasicAuth(users);
    assert.equal(await auth.check(basic('prometheus', 'wrong')), false);
    assert.equal(await auth.check(basic('prometheus', 'righ')), false);
    assert.equal(await auth.check(basic('prometheus', '')), false);
    assert.equal(await auth.check(basic('mallory', 'right')), false);
    assert.equal(await auth.check(basic('alice', 'right')), false);
    // A verified password does not open the door for a wrong one afterwards.
    assert.equal(await auth.check(basic('prometheus', 'right')), true);
    assert.equal(await auth.check(basic('prometheus', 'wrong')), false);
  });

  it('an unknown user costs a bcrypt like a known one (no user enumeration by timing)', async () => {
    const auth = new BasicAuth(users);
    await auth.check(basic('mallory', 'x'));
    assert.equal(auth.bcryptRuns, 1);
  });

  it('remembers refusals: a misconfigured scraper does not cost a bcrypt per scrape', async () => {
    const auth = new BasicAuth(users);
    for (let i = 0; i < 3; i++) assert.equal(await auth.check(basic('prometheus', 'stale')), false);
    assert.equal(auth.bcryptRuns, 1);
  });

  it('malformed headers are refused without bcrypt', async () => {
    const auth = new BasicAuth(users);
    for (const h of [
      undefined,
      '',
      'Bearer abc',
      'Basic',
      'Basic !!!',
      `Basic ${Buffer.from('nocolon').toString('base64')}`,
    ]) {
      assert.equal(await auth.check(h), false, String(h));
    }
    assert.equal(auth.bcryptRuns, 0);
  });

  it('parseBasic splits at the first colon', () => {
    assert.deepEqual(parseBasic(basic('u', 'a:b')), { user: 'u', password: 'a:b' });
    assert.deepEqual(parseBasic(`basic  ${Buffer.from('u:').toString('base64')}`), {
      user: 'u',
      password: '',
    });
    assert.equal(parseBasic('Digest x'), undefined);
  });
});
