/**
 * Retry delays: exponential with jitter, reset after a success. One
 * implementation for every retry loop of Sgrid (agent reconnects, proxies
 * re-watching the registry, the config loader, the native client's
 * reconnects, endpoint health, migrations, restart delays), each with its
 * own policy.
 *
 * The delay of attempt n (from 0) is min(maxMs, initialMs * multiplier^n),
 * then drawn uniformly from [d*(1-jitter), d*(1+jitter)] and capped at maxMs
 * again. Jitter spreads the retries of many clients that failed together
 * (grpc-js: 1 s to 120 s, 20 %; Envoy: 25 ms base, 10x cap, full jitter).
 * Time and randomness are injected only through `random`, so tests are
 * deterministic.
 */
export interface BackoffPolicy {
  /** First delay, ms (0: retry at once, every time). Default 500. */
  initialMs: number;
  /** Upper bound, ms. Default 30000. */
  maxMs: number;
  /** Growth factor per failed attempt. Default 2. */
  multiplier: number;
  /** Relative jitter in [0, 1]: the delay is drawn from [d*(1-j), d*(1+j)]. Default 0.2. */
  jitter: number;
}

export const BACKOFF_DEFAULTS: Readonly<BackoffPolicy> = Object.freeze({ initialMs: 500, maxMs: 30_000, multiplier: 2, jitter: 0.2 });

export class Backoff {
  private attempt = 0;
  readonly policy: Readonly<BackoffPolicy>;

  /** Throws TypeError for a policy that cannot work (negative delays, max below initial, shrinking, jitter outside [0, 1]). */
  constructor(policy: Partial<BackoffPolicy> = {}, private readonly random: () => number = Math.random) {
    this.policy = Object.freeze({ ...BACKOFF_DEFAULTS, ...policy });
    const p = this.policy;
    if (!(p.initialMs >= 0) || !(p.maxMs >= p.initialMs) || !(p.multiplier >= 1) || !(p.jitter >= 0 && p.jitter <= 1)) {
      throw new TypeError(`invalid backoff policy ${JSON.stringify(p)}`);
    }
  }

  /** The delay before the next attempt, ms (grows with each call until reset()). */
  next(): number {
    const p = this.policy;
    const base = Math.min(p.maxMs, p.initialMs * p.multiplier ** this.attempt);
    this.attempt++;
    const jittered = base * (1 - p.jitter + 2 * p.jitter * this.random());
    return Math.round(Math.min(p.maxMs, jittered));
  }

  /** Back to the first delay (after a success). */
  reset(): void {
    this.attempt = 0;
  }

  /** Delays handed out since the last reset. */
  get attempts(): number {
    return this.attempt;
  }
}
