// Exponential backoff with jitter for list and watch retries. Jitter spreads
// the reconnects of every node's enforcer after an API server restart, so a
// few thousand nodes do not list pods in the same second.

export interface BackoffOptions {
  /** First delay, in milliseconds. */
  initialMs?: number;
  /** Ceiling of the delay before jitter, in milliseconds. */
  maxMs?: number;
  factor?: number;
  /** Fraction of the delay drawn at random and subtracted: 0.2 gives a delay in [0.8 d, d]. */
  jitter?: number;
  /** Uniform random number in [0, 1); tests pass a fixed sequence. */
  random?: () => number;
}

export const defaultBackoff: Required<Omit<BackoffOptions, 'random'>> = {
  initialMs: 500,
  maxMs: 30_000,
  factor: 2,
  jitter: 0.2,
};

export class Backoff {
  private attempt = 0;
  private readonly options: Required<BackoffOptions>;

  constructor(options: BackoffOptions = {}) {
    this.options = { ...defaultBackoff, random: Math.random, ...options };
    const { initialMs, maxMs, factor, jitter } = this.options;
    if (!(initialMs > 0) || !(maxMs >= initialMs) || !(factor >= 1) || !(jitter >= 0 && jitter < 1)) {
      throw new Error(
        `failed to configure backoff: need initialMs > 0, maxMs >= initialMs, factor >= 1 and 0 <= jitter < 1, got ${JSON.stringify({ initialMs, maxMs, factor, jitter })}`,
      );
    }
  }

  /** Failed attempts since the last reset. */
  get attempts(): number {
    return this.attempt;
  }

  /** Returns the delay before the next attempt and counts one more failure. */
  next(): number {
    const { initialMs, maxMs, factor, jitter, random } = this.options;
    const base = Math.min(maxMs, initialMs * factor ** this.attempt);
    this.attempt++;
    return Math.round(base * (1 - jitter * random()));
  }

  reset(): void {
    this.attempt = 0;
  }
}
