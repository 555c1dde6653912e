/**
 * HTTP basic authentication against bcrypt hashes (exporter-toolkit's `basic_auth_users`), built
 * so that unauthenticated clients cannot starve it.
 *
 * - bcrypt costs tens of milliseconds by design and Prometheus sends the same credentials every
 *   scrape, so a password that verified once is remembered (an HMAC under a key made at start,
 *   compared in constant time: a scrape costs one hash, not a bcrypt). exporter-toolkit caches
 *   too, with the plain password in its cache key. Wrong credentials are remembered as well
 *   (a bounded set): a misconfigured scraper costs no bcrypt per scrape.
 * - bcrypt runs one check at a time (exporter-toolkit holds a mutex), on a worker thread so the
 *   event loop keeps serving scrapes and reading requests, from a bounded queue: when
 *   `maxPending` checks wait, a new one is refused at once (503) instead of waiting behind them.
 *   Requests with the same credentials share one check. A check whose clients have all gone
 *   before its turn is skipped.
 * - Per client address (an IPv6 /64: client-address.ts): one check pending at a time, and a
 *   budget of failed checks (a token bucket: `failureBurst`, then one more per
 *   `failureIntervalMs`); beyond either, 429 at once without bcrypt. So a flood from one address
 *   holds at most one place in the queue, and a correct login from elsewhere waits behind at
 *   most one of its checks. The budgets live in a map of at most `maxClients` addresses, the
 *   least recently seen forgotten first.
 * - Unknown users are checked against a decoy hash at the highest cost among the users, so the
 *   time a refusal takes does not tell which users exist (as long as all users share one cost).
 */
import { createHmac, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import bcrypt from 'bcryptjs';
import { compareOffThread } from './bcrypt.js';
import { clientKey } from './client-address.js';
import { TokenBucket } from './token-bucket.js';

const MAX_REMEMBERED_FAILURES = 256;
/** The cost the pending bound is expressed at; a check at cost c weighs 2^(c - 10) of them. */
const REFERENCE_COST = 10;

export interface AuthLimits {
  /** bcrypt checks waiting or running at once, counted at cost 10 (fewer at higher costs, at least 1). */
  readonly maxPending: number;
  /** Failed checks one client address may cause in a row... */
  readonly failureBurst: number;
  /** ...and then one more per this many milliseconds. */
  readonly failureIntervalMs: number;
  /** Client addresses whose failure budget is remembered. */
  readonly maxClients: number;
}

export const DEFAULT_AUTH_LIMITS: AuthLimits = Object.freeze({
  maxPending: 8,
  failureBurst: 10,
  failureIntervalMs: 6000,
  maxClients: 4096,
});

export type AuthOutcome =
  | { readonly kind: 'ok' }
  /** Wrong or missing credentials: 401. */
  | { readonly kind: 'denied' }
  /** This client has a check pending or has spent its failure budget: 429. */
  | { readonly kind: 'throttled'; readonly retryAfterSeconds: number }
  /** Too many checks pending from all clients: 503. */
  | { readonly kind: 'busy' };

const OK: AuthOutcome = { kind: 'ok' };
const DENIED: AuthOutcome = { kind: 'denied' };
const BUSY: AuthOutcome = { kind: 'busy' };

export interface Client {
  /** The peer's address (the socket's, not a forwarded header). */
  readonly address?: string | undefined;
  /** Aborted when the client has gone: its check need not run. */
  readonly signal?: AbortSignal | undefined;
}

interface User {
  readonly hash: string;
  /** Digest of the password that last verified against `hash`. */
  verified: Buffer | undefined;
}

interface PendingCheck {
  readonly password: string;
  readonly hash: string;
  /** The client that started it (and whose budget a failure spends). */
  readonly client: string;
  /** One per request waiting for the result. */
  readonly signals: AbortSignal[];
  /** The result; undefined when every request had gone before it ran. */
  readonly result: PromiseWithResolvers<boolean | undefined>;
}

const BCRYPT_BASE64 = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** bcrypt's cost, from the hash's "$2b$NN$" prefix. */
export function bcryptCost(hash: string): number {
  return Number(hash.slice(4, 6));
}

/**
 * A hash nobody knows the password of, at `cost`: a real salt and random digest characters.
 * Checking a password against it costs a full bcrypt at that cost, as for a real user, without
 * spending one at start-up to make it.
 */
function decoyHash(cost: number): string {
  let digest = '';
  for (let i = 0; i < 31; i++) digest += BCRYPT_BASE64[randomInt(BCRYPT_BASE64.length)];
  return bcrypt.genSaltSync(cost) + digest;
}

export class BasicAuth {
  private readonly users = new Map<string, User>();
  private readonly failures = new Set<string>();
  /** Keys the remembered-password digests: they are useless outside this process. */
  private readonly key = randomBytes(32);
  private readonly decoy: string;
  readonly limits: AuthLimits;
  /** Checks waiting or running: the limit scaled by the cost. */
  readonly maxPending: number;

  private readonly queue: PendingCheck[] = [];
  private readonly byCredentials = new Map<string, PendingCheck>();
  private readonly pendingByClient = new Map<string, number>();
  private readonly budgets = new Map<string, TokenBucket>();
  private running = false;

  /** bcrypt comparisons made (for tests: the caches work). */
  bcryptRuns = 0;
  /** Checks skipped because their clients had gone. */
  abandoned = 0;

  constructor(
    users: ReadonlyMap<string, string>,
    limits: Partial<AuthLimits> = {},
    /** bcrypt's comparison; a test passes one it controls. */
    private readonly compare: (password: string, hash: string) => Promise<boolean> = compareOffThread,
  ) {
    this.limits = { ...DEFAULT_AUTH_LIMITS, ...limits };
    let maxCost = 4;
    for (const [name, hash] of users) {
      this.users.set(name, { hash, verified: undefined });
      maxCost = Math.max(maxCost, bcryptCost(hash));
    }
    this.decoy = decoyHash(maxCost);
    const weight = 2 ** Math.max(0, maxCost - REFERENCE_COST);
    this.maxPending = Math.max(1, Math.floor(this.limits.maxPending / weight));
  }

  get enabled(): boolean {
    return this.users.size > 0;
  }

  /** The cost unknown users are checked at: the highest among the users. */
  get decoyCost(): number {
    return bcryptCost(this.decoy);
  }

  /** Checks waiting or running now. */
  get pending(): number {
    return this.queue.length + (this.running ? 1 : 0);
  }

  /** Whether the Authorization header carries a known user and that user's password. */
  async check(authorization: string | undefined, client: Client = {}): Promise<AuthOutcome> {
    const credentials = parseBasic(authorization);
    if (credentials === undefined) return DENIED;
    const { user, password } = credentials;
    const entry = this.users.get(user);
    const digest = createHmac('sha256', this.key)
      .update(`${Buffer.byteLength(user)}:${user}`)
      .update(password)
      .digest();
    if (entry?.verified !== undefined && timingSafeEqual(entry.verified, digest)) return OK;
    const credentialKey = digest.toString('base64');
    if (this.failures.has(credentialKey)) return DENIED;

    let check = this.byCredentials.get(credentialKey);
    if (check === undefined) {
      const who = clientKey(client.address);
      const refusal = this.admit(who);
      if (refusal !== undefined) return refusal;
      check = this.enqueue(credentialKey, password, entry?.hash ?? this.decoy, who);
    }
    if (client.signal !== undefined) check.signals.push(client.signal);
    const matches = await check.result.promise;
    if (matches === undefined) return DENIED;
    if (entry !== undefined && matches) {
      entry.verified = digest;
      return OK;
    }
    return DENIED;
  }

  /** Why `client` may not start a check now, or undefined when it may. */
  private admit(client: string): AuthOutcome | undefined {
    const budget = this.budget(client);
    if (!budget.available()) {
      return { kind: 'throttled', retryAfterSeconds: Math.max(1, Math.ceil(budget.waitMs() / 1000)) };
    }
    if (this.pendingByClient.has(client)) return { kind: 'throttled', retryAfterSeconds: 1 };
    if (this.pending >= this.maxPending) return BUSY;
    return undefined;
  }

  /** The failure budget of a client, most recently seen last; the least recent is forgotten. */
  private budget(client: string): TokenBucket {
    let bucket = this.budgets.get(client);
    if (bucket === undefined) {
      bucket = new TokenBucket(this.limits.failureIntervalMs, this.limits.failureBurst);
      if (this.budgets.size >= this.limits.maxClients) {
        const oldest = this.budgets.keys().next().value;
        if (oldest !== undefined) this.budgets.delete(oldest);
      }
    } else {
      this.budgets.delete(client);
    }
    this.budgets.set(client, bucket);
    return bucket;
  }

  private enqueue(credentialKey: string, password: string, hash: string, client: string): PendingCheck {
    const check: PendingCheck = {
      password,
      hash,
      client,
      signals: [],
      result: Promise.withResolvers<boolean | undefined>(),
    };
    this.queue.push(check);
    this.byCredentials.set(credentialKey, check);
    this.pendingByClient.set(client, (this.pendingByClient.get(client) ?? 0) + 1);
    void check.result.promise.then(
      (matches) => this.settled(credentialKey, check, matches),
      () => this.settled(credentialKey, check, undefined),
    );
    void this.drain();
    return check;
  }

  private settled(credentialKey: string, check: PendingCheck, matches: boolean | undefined): void {
    this.byCredentials.delete(credentialKey);
    const n = (this.pendingByClient.get(check.client) ?? 1) - 1;
    if (n > 0) this.pendingByClient.set(check.client, n);
    else this.pendingByClient.delete(check.client);
    if (matches !== false) return;
    // A refusal spends the starter's budget and is remembered, so the same guess is free next time.
    this.budget(check.client).allow();
    if (this.failures.size >= MAX_REMEMBERED_FAILURES) {
      const oldest = this.failures.values().next().value;
      if (oldest !== undefined) this.failures.delete(oldest);
    }
    this.failures.add(credentialKey);
  }

  /** Runs the queue, one bcrypt at a time, on a worker thread (bcrypt.ts). */
  private async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (let check = this.queue.shift(); check !== undefined; check = this.queue.shift()) {
        if (check.signals.length > 0 && check.signals.every((s) => s.aborted)) {
          this.abandoned++;
          check.result.resolve(undefined);
          continue;
        }
        this.bcryptRuns++;
        try {
          check.result.resolve(await this.compare(check.password, check.hash));
        } catch (err) {
          check.result.reject(err);
        }
      }
    } finally {
      this.running = false;
    }
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
