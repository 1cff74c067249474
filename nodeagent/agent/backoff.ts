/**
 * Reconnect delays of the registry session: exponential with jitter,
 * reset once a session is established.
 *
 * Defaults: 500 ms doubling to 30 s, +-20 % jitter. A registry restart
 * (a few seconds) is bridged within a second or two; a long outage costs a
 * reconnect attempt every ~30 s per node, so 1000 nodes hammer a
 * recovering registry with ~33 connects/s at most, spread by the jitter
 * (grpc-js' own reconnect backoff: 1 s to 120 s, 20 % jitter; Consul
 * agents: up to 30 s plus jitter scaled by the cluster size).
 */
export interface BackoffPolicy {
  /** First delay, ms. Default 500. */
  initialMs: number;
  /** Upper bound, ms. Default 30000. */
  maxMs: number;
  /** Growth factor per failed attempt. Default 2. */
  multiplier: number;
  /** Relative jitter: the delay is drawn from [d*(1-j), d*(1+j)]. Default 0.2. */
  jitter: number;
}

export const BACKOFF_DEFAULTS: Readonly<BackoffPolicy> = Object.freeze({ initialMs: 500, maxMs: 30_000, multiplier: 2, jitter: 0.2 });

export class Backoff {
  private attempt = 0;
  readonly policy: Readonly<BackoffPolicy>;

  constructor(policy: Partial<BackoffPolicy> = {}, private readonly random: () => number = Math.random) {
    this.policy = Object.freeze({ ...BACKOFF_DEFAULTS, ...policy });
    const p = this.policy;
    if (!(p.initialMs > 0) || !(p.maxMs >= p.initialMs) || !(p.multiplier >= 1) || !(p.jitter >= 0 && p.jitter < 1)) {
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

  /** Back to the first delay (after a session was established). */
  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}
