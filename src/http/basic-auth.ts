/**
 * HTTP basic authentication against bcrypt hashes (exporter-toolkit's `basic_auth_users`).
 *
 * bcrypt costs tens of milliseconds by design, and Prometheus sends the same credentials every
 * scrape, so a password that verified once is remembered as its SHA-256 digest and later
 * compared with crypto.timingSafeEqual: a scrape costs one hash, not one bcrypt. Wrong
 * passwords are remembered too (a bounded set), so a misconfigured scraper does not burn a
 * bcrypt every scrape. Unknown users are checked against a fixed hash, so the time a refusal
 * takes does not tell which users exist. bcrypt runs one at a time (bcryptjs yields to the event
 * loop while it works): a flood of guesses cannot take every core.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import bcrypt from 'bcryptjs';

/** A bcrypt hash (cost 10) of a random password nobody knows, for unknown users. */
const UNKNOWN_USER_HASH = '$2b$10$ew06YNGJT/QxN84mRGD1DOsCGHnPfaB2.IUcUSswnFt9zUMs.Axu6';
const MAX_REMEMBERED_FAILURES = 256;

interface User {
  readonly hash: string;
  /** SHA-256 of the password that last verified against `hash`. */
  verified: Buffer | undefined;
}

export class BasicAuth {
  private readonly users = new Map<string, User>();
  private readonly failures = new Set<string>();
  private queue: Promise<unknown> = Promise.resolve();
  /** bcrypt comparisons made (for tests: the cache works). */
  bcryptRuns = 0;

  constructor(users: ReadonlyMap<string, string>) {
    for (const [name, hash] of users) this.users.set(name, { hash, verified: undefined });
  }

  get enabled(): boolean {
    return this.users.size > 0;
  }

  /** True when the Authorization header carries a known user and that user's password. */
  async check(authorization: string | undefined): Promise<boolean> {
    const credentials = parseBasic(authorization);
    if (credentials === undefined) return false;
    const { user, password } = credentials;
    const entry = this.users.get(user);
    const digest = createHash('sha256').update(password).digest();
    if (entry?.verified !== undefined && timingSafeEqual(entry.verified, digest)) return true;

    const failureKey = createHash('sha256').update(user).update('\0').update(digest).digest('hex');
    if (this.failures.has(failureKey)) return false;
    const matches = await this.compare(password, entry?.hash ?? UNKNOWN_USER_HASH);
    if (entry !== undefined && matches) {
      entry.verified = digest;
      return true;
    }
    if (this.failures.size >= MAX_REMEMBERED_FAILURES) {
      const oldest = this.failures.values().next().value;
      if (oldest !== undefined) this.failures.delete(oldest);
    }
    this.failures.add(failureKey);
    return false;
  }

  private compare(password: string, hash: string): Promise<boolean> {
    const run = (): Promise<boolean> => {
      this.bcryptRuns++;
      return bcrypt.compare(password, hash);
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }
}

/** `Basic base64(user:password)` -> its parts; undefined when absent or malformed. */
export function parseBasic(header: string | undefined): { user: string; password: string } | undefined {
  if (header === undefined) return undefined;
  const m = /^Basic +([A-Za-z0-9+/]+={0,2}) *$/i.exec(header);
  if (!m?.[1]) return undefined;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}
