/**
 * RestartTracker: decides, after a servant ended unexpectedly, whether to
 * restart it and after what delay, or to give up. It only decides; the
 * instance supervisor acts (as Nomad's taskrunner/restarts does).
 *
 * Policy: exponential backoff with jitter, a crash-loop limit over a sliding
 * window, and a reset after a stable run. Defaults, and why:
 *
 * | knob            | Sgrid   | PM2                       | supervisord          | Nomad (service)       | Tars (tarsnode)              |
 * |-----------------|---------|---------------------------|----------------------|-----------------------|------------------------------|
 * | first delay     | 1 s     | exp_backoff 100 ms        | 1 s (then +1 s each) | delay 15 s            | next monitor pass (~1 s)     |
 * | growth          | x2      | x1.5                      | linear               | none ("delay" mode)   | none                         |
 * | delay cap       | 60 s    | 15 s                      | startretries bound   | -                     | -                            |
 * | jitter          | +-20 %  | none                      | none                 | 25 %                  | none                         |
 * | crash-loop limit| 10/10min| max_restarts 16 (unstable)| startretries 3       | attempts 2 / 30 min   | ActivatorMaxCount 10 / interval, then punish |
 * | stable run      | 30 s    | 30 s resets exp backoff   | startsecs 1 s        | -                     | -                            |
 *
 * - 1 s doubling to 60 s: a servant that dies because a dependency is down
 *   comes back within a second when the blip was short, and a hard crash
 *   costs the node at most one spawn a minute. PM2's 15 s cap retries
 *   harder than a shared node should; Nomad's flat 15 s delays every
 *   recovery, including the first.
 * - +-20 % jitter: after a node-wide event (a shared dependency restarts),
 *   instances do not restart in lock-step. Nomad uses 25 %.
 * - 10 restarts within 10 minutes, then FAILED: Tars' ActivatorMaxCount of
 *   10 is the closest precedent (Sgrid is Tars-shaped). With the backoff
 *   above, a tight crash loop reaches the limit after about 5 minutes
 *   (1+2+4+8+16+32+60+60+60+60 s), long enough to ride out a slow
 *   dependency and short enough that a broken release is flagged quickly.
 *   supervisord's 3 is too eager for network services; Nomad's 2 relies on
 *   rescheduling elsewhere, which the node agent cannot do. FAILED is
 *   sticky until someone acts (restart, or a new desired version).
 * - A run of 30 s counts as stable (as PM2): the delay goes back to 1 s and
 *   the crash window is cleared, so rare crashes never add up to FAILED.
 */
import { lazySchema } from "../lazy-schema";
import { hasExactly, isInt, isNumber } from "../plain-checks";
import { Backoff, ConfigError } from "sgridnext";

export interface RestartPolicy {
  /** Delay before the first restart after a stable run, ms. Default 1000. */
  initialDelayMs: number;
  /** Upper bound of the delay, ms. Default 60000. */
  maxDelayMs: number;
  /** Factor the delay grows by with each consecutive restart. Default 2. */
  multiplier: number;
  /** Relative jitter: the delay is drawn uniformly from [d*(1-j), d*(1+j)], then capped. Default 0.2. */
  jitter: number;
  /** Restarts allowed within `windowMs`; the next failure makes the instance FAILED. Default 10. */
  maxRestarts: number;
  /** Sliding window for the crash-loop limit, ms. Default 600000 (10 min). */
  windowMs: number;
  /** A run at least this long resets the delay and clears the window, ms. Default 30000. */
  stableAfterMs: number;
}

export const RESTART_DEFAULTS: Readonly<RestartPolicy> = Object.freeze({
  initialDelayMs: 1000,
  maxDelayMs: 60_000,
  multiplier: 2,
  jitter: 0.2,
  maxRestarts: 10,
  windowMs: 600_000,
  stableAfterMs: 30_000,
});

/** A whole policy the schema below takes as it is. */
function plainlyValid(v: unknown): boolean {
  const ms = (x: unknown) => isInt(x, 0);
  return hasExactly(v, {
    initialDelayMs: ms, maxDelayMs: ms, multiplier: (x) => isNumber(x, 1), jitter: (x) => isNumber(x, 0, 1),
    maxRestarts: ms, windowMs: (x) => isInt(x, 1), stableAfterMs: ms,
  }, Object.keys(RESTART_DEFAULTS));
}

/** Checked at the agent's start without zod when plainly valid (exported for test/nodeagent/lazy-options.test.ts). */
export const restartPolicySchema = lazySchema((z) => z.object({
  initialDelayMs: z.number().int().min(0),
  maxDelayMs: z.number().int().min(0),
  multiplier: z.number().min(1),
  jitter: z.number().min(0).max(1),
  maxRestarts: z.number().int().min(0),
  windowMs: z.number().int().positive(),
  stableAfterMs: z.number().int().min(0),
}).strict(), plainlyValid);

/** What to do after a failure. */
export interface RestartDecision {
  action: "restart" | "fail";
  /** Wait before restarting, ms (0 with "fail"). */
  delayMs: number;
  /** Consecutive restarts since the last stable run, this one included. */
  attempt: number;
  /** With "fail": why, e.g. "crash loop: 10 restarts within 600 s". */
  reason?: string;
}

/** Validates a partial policy against the defaults; throws ConfigError (caller misuse). */
export function restartPolicy(partial: Partial<RestartPolicy> = {}): Readonly<RestartPolicy> {
  const merged = { ...RESTART_DEFAULTS, ...partial };
  const r = restartPolicySchema.safeParse(merged);
  if (!r.success) throw new ConfigError(`invalid restart policy: ${r.error.issues[0]?.path.join(".")}: ${r.error.issues[0]?.message}`);
  if (merged.maxDelayMs < merged.initialDelayMs) throw new ConfigError("invalid restart policy: maxDelayMs is below initialDelayMs");
  return Object.freeze(merged);
}

export class RestartTracker {
  readonly policy: Readonly<RestartPolicy>;
  private readonly backoff: Backoff;
  private history: number[] = [];

  constructor(policy: Partial<RestartPolicy> = {}, random: () => number = Math.random, private readonly now: () => number = Date.now) {
    this.policy = restartPolicy(policy);
    const p = this.policy;
    this.backoff = new Backoff({ initialMs: p.initialDelayMs, maxMs: p.maxDelayMs, multiplier: p.multiplier, jitter: p.jitter }, random);
  }

  /** Consecutive restarts since the last stable run. */
  get attempt(): number {
    return this.backoff.attempts;
  }

  /**
   * Records one unexpected end of a run that lasted `ranForMs` and decides.
   * Never throws.
   */
  onFailure(ranForMs: number): RestartDecision {
    const p = this.policy;
    const now = this.now();
    if (ranForMs >= p.stableAfterMs) this.reset();
    this.history = this.history.filter((t) => now - t < p.windowMs);
    if (this.history.length >= p.maxRestarts) {
      return { action: "fail", delayMs: 0, attempt: this.backoff.attempts, reason: `crash loop: ${this.history.length} restarts within ${Math.round(p.windowMs / 1000)} s` };
    }
    this.history.push(now);
    const delayMs = this.backoff.next();
    return { action: "restart", delayMs, attempt: this.backoff.attempts };
  }

  /** Forgets every failure (after a stable run, or when someone acts on a FAILED instance). */
  reset(): void {
    this.backoff.reset();
    this.history = [];
  }
}
