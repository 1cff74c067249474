/**
 * Which endpoints of one proxy are usable right now (failover).
 *
 * An endpoint is set aside when it fails `consecutiveFailures` calls in a
 * row (default 3), or when at least `minCalls` (10) calls in the last
 * `windowMs` (10 s) have a failure ratio >= `failureRatio` (0.5). "Failure"
 * means UNAVAILABLE (connect refused, reset) or DEADLINE_EXCEEDED: the servant
 * is unreachable or too slow, not a business error. A set-aside endpoint is
 * retried after `retryAfterMs` (5 s, doubling per failed probe up to
 * `maxRetryAfterMs`, 60 s): one probe call is let through; success restores it.
 * If every endpoint is set aside, the one whose pause ends first is used
 * anyway — a proxy never refuses to try.
 *
 * Tars' defaults, for comparison: 2 consecutive timeouts or a timeout ratio
 * >= 50% over >= 2 calls in 60 s; retry after 30 s. Ours react faster because
 * a proxy here also learns of dead endpoints from the registry within 1 s.
 */
import { Backoff } from "../primitives";
import { endpointKey, type Endpoint } from "../endpoint";

export interface EndpointHealthOptions {
  /** Consecutive failures that set an endpoint aside. Default 3. */
  consecutiveFailures?: number;
  /** Failure ratio over the window that sets it aside. Default 0.5. */
  failureRatio?: number;
  /** Minimum calls in the window before the ratio counts. Default 10. */
  minCalls?: number;
  /** Window for the ratio, ms. Default 10000. */
  windowMs?: number;
  /** First pause before a probe, ms. Default 5000. */
  retryAfterMs?: number;
  /** Longest pause, ms. Default 60000. */
  maxRetryAfterMs?: number;
}

export const ENDPOINT_HEALTH_DEFAULTS: Readonly<Required<EndpointHealthOptions>> = Object.freeze({
  consecutiveFailures: 3,
  failureRatio: 0.5,
  minCalls: 10,
  windowMs: 10_000,
  retryAfterMs: 5_000,
  maxRetryAfterMs: 60_000,
});

interface State {
  consecutive: number;
  windowStart: number;
  calls: number;
  failures: number;
  asideUntil: number; // 0 = usable
  pause: Backoff; // pauses before probes: retryAfterMs, doubling per failed probe
  probing: boolean;
}

export class EndpointHealth {
  private readonly opts: Readonly<Required<EndpointHealthOptions>>;
  private readonly states = new Map<string, State>();

  constructor(options: EndpointHealthOptions = {}) {
    this.opts = Object.freeze({ ...ENDPOINT_HEALTH_DEFAULTS, ...options });
  }

  private state(ep: Endpoint): State {
    const key = endpointKey(ep);
    let s = this.states.get(key);
    if (!s) {
      s = { consecutive: 0, windowStart: Date.now(), calls: 0, failures: 0, asideUntil: 0, pause: new Backoff({ initialMs: this.opts.retryAfterMs, maxMs: Math.max(this.opts.retryAfterMs, this.opts.maxRetryAfterMs), jitter: 0 }), probing: false };
      this.states.set(key, s);
    }
    return s;
  }

  /** Number of endpoints currently set aside; 0 lets `usable` return its input untouched (the hot path). */
  private asideCount = 0;

  /** The usable subset of `endpoints` (never empty when `endpoints` is not), in the same order. */
  usable(endpoints: readonly Endpoint[], exclude?: ReadonlySet<Endpoint>): readonly Endpoint[] {
    if (this.asideCount === 0 && exclude === undefined) return endpoints;
    const now = Date.now();
    const out: Endpoint[] = [];
    let soonest: Endpoint | undefined;
    let soonestAt = Infinity;
    for (const ep of endpoints) {
      if (exclude?.has(ep)) continue;
      const s = this.states.get(endpointKey(ep));
      if (!s || s.asideUntil === 0) { out.push(ep); continue; }
      if (now >= s.asideUntil && !s.probing) { out.push(ep); continue; }
      if (s.asideUntil < soonestAt) { soonestAt = s.asideUntil; soonest = ep; }
    }
    if (out.length === 0 && soonest) out.push(soonest);
    return out;
  }

  /** Marks the start of a call; a set-aside endpoint past its pause becomes the probe. */
  begin(ep: Endpoint): void {
    if (this.asideCount === 0) return;
    const s = this.states.get(endpointKey(ep));
    if (s && s.asideUntil !== 0 && Date.now() >= s.asideUntil) s.probing = true;
  }

  success(ep: Endpoint): void {
    if (this.states.size === 0) return;
    const s = this.states.get(endpointKey(ep));
    if (!s) return;
    this.roll(s);
    s.calls++;
    s.consecutive = 0;
    if (s.asideUntil !== 0) { s.asideUntil = 0; this.asideCount--; s.pause.reset(); s.probing = false; s.calls = 1; s.failures = 0; }
  }

  failure(ep: Endpoint): void {
    const s = this.state(ep);
    this.roll(s);
    s.calls++;
    s.failures++;
    s.consecutive++;
    const now = Date.now();
    if (s.asideUntil !== 0) {
      if (s.probing) { s.asideUntil = now + s.pause.next(); s.probing = false; }
      return;
    }
    const ratioTrip = s.calls >= this.opts.minCalls && s.failures / s.calls >= this.opts.failureRatio;
    if (s.consecutive >= this.opts.consecutiveFailures || ratioTrip) { s.asideUntil = now + s.pause.next(); this.asideCount++; }
  }

  /** True when the endpoint is currently set aside. */
  isAside(ep: Endpoint): boolean {
    const s = this.states.get(endpointKey(ep));
    return !!s && s.asideUntil !== 0;
  }

  /** Forgets endpoints no longer in the list. */
  retain(endpoints: readonly Endpoint[]): void {
    const keep = new Set(endpoints.map(endpointKey));
    for (const [k, s] of this.states) {
      if (keep.has(k)) continue;
      if (s.asideUntil !== 0) this.asideCount--;
      this.states.delete(k);
    }
  }

  private roll(s: State): void {
    const now = Date.now();
    if (now - s.windowStart > this.opts.windowMs) { s.windowStart = now; s.calls = 0; s.failures = 0; }
  }
}
