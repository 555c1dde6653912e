/**
 * A token bucket with the semantics of Go's golang.org/x/time/rate Limiter, which
 * exporter-toolkit's `rate_limit` uses: it starts full (`burst` tokens), gains one token every
 * `intervalMs` (continuously, in fractions), holds at most `burst`, and `allow()` takes one token
 * when a whole one is there. Also used per client address for failed logins (basic-auth.ts).
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly intervalMs: number,
    private readonly burst: number,
    /** Monotonic milliseconds; injectable for tests. */
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.last = now();
  }

  /** Takes a token if a whole one is there. */
  allow(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** True when at least one whole token is there (takes none). */
  available(): boolean {
    this.refill();
    return this.tokens >= 1;
  }

  /** Milliseconds until a whole token is there; 0 when one is. */
  waitMs(): number {
    this.refill();
    return this.tokens >= 1 ? 0 : (1 - this.tokens) * this.intervalMs;
  }

  private refill(): void {
    const t = this.now();
    if (t > this.last) this.tokens = Math.min(this.burst, this.tokens + (t - this.last) / this.intervalMs);
    this.last = t;
  }
}
