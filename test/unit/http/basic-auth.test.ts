import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import bcrypt from 'bcryptjs';
import { type AuthOutcome, BasicAuth, parseBasic } from '../../../src/http/basic-auth.js';

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const kind = async (p: Promise<AuthOutcome>): Promise<AuthOutcome['kind']> => (await p).kind;

describe('BasicAuth', () => {
  const users = new Map([
    ['prometheus', bcrypt.hashSync('right', 4)],
    // htpasswd's $2y$ prefix
    ['alice', bcrypt.hashSync('pa:ss wörd', 4).replace(/^\$2b\$/, '$2y$')],
  ]);

  it('accepts the right password, and checks it with bcrypt only once', async () => {
    const auth = new BasicAuth(users);
    assert.equal(await kind(auth.check(basic('prometheus', 'right'))), 'ok');
    assert.equal(auth.bcryptRuns, 1);
    for (let i = 0; i < 5; i++) assert.equal(await kind(auth.check(basic('prometheus', 'right'))), 'ok');
    assert.equal(auth.bcryptRuns, 1, 'later scrapes compare a digest, not bcrypt');
    assert.equal(await kind(auth.check(basic('alice', 'pa:ss wörd'))), 'ok', 'colons and UTF-8; $2y$');
  });

  it('refuses a wrong password, an unknown user, and the right password under another user', async () => {
    const auth = new BasicAuth(users);
    for (const [u, p] of [
      ['prometheus', 'wrong'],
      ['prometheus', 'righ'],
      ['prometheus', ''],
      ['mallory', 'right'],
      ['alice', 'right'],
    ] as const) {
      assert.equal(await kind(auth.check(basic(u, p))), 'denied', `${u}:${p}`);
    }
    // A verified password does not open the door for a wrong one afterwards.
    assert.equal(await kind(auth.check(basic('prometheus', 'right'))), 'ok');
    assert.equal(await kind(auth.check(basic('prometheus', 'wrong'))), 'denied');
  });

  it('an unknown user costs a bcrypt at the highest cost among the users (no enumeration by timing)', async () => {
    const auth = new BasicAuth(users);
    await auth.check(basic('mallory', 'x'));
    assert.equal(auth.bcryptRuns, 1);
    assert.equal(auth.decoyCost, 4);
    const mixed = new BasicAuth(
      new Map([
        ['a', bcrypt.hashSync('x', 4)],
        ['b', bcrypt.hashSync('x', 6)],
        ['c', bcrypt.hashSync('x', 5)],
      ]),
    );
    assert.equal(mixed.decoyCost, 6);
    assert.equal(await kind(mixed.check(basic('nobody', 'x'))), 'denied');
  });

  it('remembers refusals: a misconfigured scraper does not cost a bcrypt per scrape', async () => {
    const auth = new BasicAuth(users);
    for (let i = 0; i < 3; i++) assert.equal(await kind(auth.check(basic('prometheus', 'stale'))), 'denied');
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
      assert.equal(await kind(auth.check(h)), 'denied', String(h));
    }
    assert.equal(auth.bcryptRuns, 0);
  });

  it('requests with the same credentials share one check', async () => {
    const auth = new BasicAuth(users);
    const all = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        kind(auth.check(basic('prometheus', 'right'), { address: `127.0.0.${i + 1}` })),
      ),
    );
    assert.deepEqual(new Set(all), new Set(['ok']));
    assert.equal(auth.bcryptRuns, 1);
  });

  it('one check pending per client address: a second is refused at once (429), others are not', async () => {
    const auth = new BasicAuth(users);
    const first = auth.check(basic('prometheus', 'guess1'), { address: '127.0.0.2' });
    const second = await auth.check(basic('prometheus', 'guess2'), { address: '127.0.0.2' });
    assert.deepEqual(second, { kind: 'throttled', retryAfterSeconds: 1 });
    // The same host over IPv4-mapped IPv6 is the same client; another /64 is not.
    assert.equal(
      await kind(auth.check(basic('prometheus', 'guess3'), { address: '::ffff:127.0.0.2' })),
      'throttled',
    );
    const other = auth.check(basic('prometheus', 'right'), { address: '127.0.0.1' });
    assert.equal(auth.pending, 2, "the other client's check waits behind one check, not a flood");
    assert.equal(await kind(first), 'denied');
    assert.equal(await kind(other), 'ok');
    assert.equal(auth.bcryptRuns, 2);
  });

  it('a budget of failed checks per client address: beyond it, 429 without bcrypt', async () => {
    const auth = new BasicAuth(users, { failureBurst: 3, failureIntervalMs: 3_600_000 });
    for (let i = 0; i < 3; i++) {
      assert.equal(
        await kind(auth.check(basic('prometheus', `guess${i}`), { address: '2001:db8::1' })),
        'denied',
      );
    }
    const refused = await auth.check(basic('prometheus', 'right'), { address: '2001:db8::2' });
    assert.equal(refused.kind, 'throttled', 'the same /64: even the right password waits');
    assert.ok(refused.kind === 'throttled' && refused.retryAfterSeconds > 1000, JSON.stringify(refused));
    assert.equal(auth.bcryptRuns, 3);
    assert.equal(await kind(auth.check(basic('prometheus', 'right'), { address: '2001:db8:0:1::1' })), 'ok');
    // Once verified, the password is remembered and no budget applies to it.
    assert.equal(await kind(auth.check(basic('prometheus', 'right'), { address: '2001:db8::2' })), 'ok');
    assert.equal(auth.bcryptRuns, 4);
  });

  it('remembers the budgets of a bounded number of addresses, the least recently seen forgotten', async () => {
    const auth = new BasicAuth(users, { failureBurst: 1, failureIntervalMs: 3_600_000, maxClients: 2 });
    assert.equal(await kind(auth.check(basic('x', '1'), { address: '10.0.0.1' })), 'denied');
    assert.equal(await kind(auth.check(basic('x', '2'), { address: '10.0.0.1' })), 'throttled');
    assert.equal(await kind(auth.check(basic('x', '3'), { address: '10.0.0.2' })), 'denied');
    assert.equal(await kind(auth.check(basic('x', '4'), { address: '10.0.0.3' })), 'denied');
    // 10.0.0.1 was forgotten to make room for 10.0.0.3; 10.0.0.2 was not.
    assert.equal(await kind(auth.check(basic('x', '5'), { address: '10.0.0.1' })), 'denied');
    assert.equal(await kind(auth.check(basic('x', '6'), { address: '10.0.0.3' })), 'throttled');
  });

  it('a bounded queue: beyond maxPending checks, 503 at once', async () => {
    const auth = new BasicAuth(users, { maxPending: 2 });
    const waiting = [1, 2].map((i) => auth.check(basic('x', `${i}`), { address: `10.0.0.${i}` }));
    assert.deepEqual(await auth.check(basic('x', '3'), { address: '10.0.0.3' }), { kind: 'busy' });
    assert.deepEqual(await Promise.all(waiting.map(kind)), ['denied', 'denied']);
  });

  it('the bound is in work: a cost above 10 leaves fewer places (at least one)', () => {
    const at = (cost: number) =>
      new BasicAuth(
        new Map([['p', bcrypt.hashSync('x', 4).replace('$04$', `$${String(cost).padStart(2, '0')}$`)]]),
        {
          maxPending: 8,
        },
      ).maxPending;
    assert.deepEqual([at(4), at(10), at(11), at(12), at(13), at(14)], [8, 8, 4, 2, 1, 1]);
  });

  it('a check whose client has gone before its turn is skipped', async () => {
    const auth = new BasicAuth(users);
    const running = auth.check(basic('prometheus', 'first'), { address: '10.0.0.1' });
    const gone = new AbortController();
    const skipped = auth.check(basic('prometheus', 'second'), { address: '10.0.0.2', signal: gone.signal });
    gone.abort();
    assert.equal(await kind(running), 'denied');
    assert.equal(await kind(skipped), 'denied');
    assert.equal(auth.bcryptRuns, 1);
    assert.equal(auth.abandoned, 1);
    // Skipped, not refused: the budget is untouched and the guess not remembered as wrong.
    assert.equal(await kind(auth.check(basic('prometheus', 'second'), { address: '10.0.0.2' })), 'denied');
    assert.equal(auth.bcryptRuns, 2);
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
