// Token bucket: `burst` tokens, refilled continuously at one token per
// `refillMs`. Used to cap the API calls the Event recorder makes per involved
// object and in total.

export interface TokenBucketOptions {
  burst: number;
  refillMs: number;
}

export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    private readonly options: TokenBucketOptions,
    now: number,
  ) {
    if (!(options.burst >= 1) || !(options.refillMs > 0)) {
      throw new Error(`failed to configure rate limit: need burst >= 1 and refillMs > 0, got ${JSON.stringify(options)}`);
    }
    this.tokens = options.burst;
    this.updatedAt = now;
  }

  /** Whole tokens available at `now`. */
  available(now: number): number {
    this.refill(now);
    return Math.floor(this.tokens);
  }

  /** Takes one token when one is available. */
  take(now: number): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Milliseconds until a token is available, 0 when one is. */
  waitMs(now: number): number {
    this.refill(now);
    return this.tokens >= 1 ? 0 : Math.ceil((1 - this.tokens) * this.options.refillMs);
  }

  /** True when the bucket is full, so forgetting it loses nothing. */
  full(now: number): boolean {
    this.refill(now);
    return this.tokens >= this.options.burst;
  }

  private refill(now: number): void {
    // A clock that steps back must not drain the bucket.
    const elapsed = Math.max(0, now - this.updatedAt);
    this.tokens = Math.min(this.options.burst, this.tokens + elapsed / this.options.refillMs);
    this.updatedAt = Math.max(now, this.updatedAt);
  }
}
