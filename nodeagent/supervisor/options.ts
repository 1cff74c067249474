/**
 * Options of the instance supervisor (shared by every instance of a node),
 * with one DEFAULTS object. Values in an instance's desired spec win over
 * these. Every default is chosen against PM2, supervisord, Nomad and Tars:
 *
 * - Restart policy: see restart-tracker.ts (1 s doubling to 60 s, +-20 %
 *   jitter, FAILED after 10 restarts in 10 min, stable after 30 s).
 * - Stop: SIGTERM, then 10 s grace, then SIGKILL to the whole cgroup.
 *   supervisord (stopsignal TERM, stopwaitsecs 10) and systemd
 *   (TimeoutStopSec 90 s) wait at least this long; PM2's 1.6 s kill_timeout
 *   and Nomad's 5 s kill_timeout cut off servers that drain connections.
 *   10 s lets a gRPC server finish in-flight calls without making a
 *   publish over many instances crawl.
 * - Keepalive timeout: 60 s. Framework servants send a keepalive every
 *   10 s (as Tars servers report to tarsnode), so six must be missed in a
 *   row; a GC pause or a busy event loop is not mistaken for a hang.
 * - Health checks: first check 5 s after start, then every 10 s, 2 s
 *   timeout, restart after 3 consecutive failures. Kubernetes probes use
 *   period 10 s and failureThreshold 3 (with a 1 s timeout, which is tight
 *   for a JVM under load); Nomad requires interval and timeout to be set
 *   and suggests the same order of magnitude; supervisord and PM2 have none.
 */
import { lazySchema } from "../lazy-schema";
import { hasExactly, isInt, isNumberRecord, isString } from "../plain-checks";
import { ConfigError } from "sgridnext";
import type { StopOptions } from "../process";
import { type RestartPolicy, restartPolicy } from "./restart-tracker";

/**
 * One health check run: resolves true (or `{ ok: true }`) when healthy; a
 * `detail` ("HTTP 503", "connect ECONNREFUSED ...") ends up in the restart
 * reason. Gets the timeout and a signal aborted when it passes; a probe that
 * rejects or does not answer in time counts as a failure.
 */
export type HealthProbe = (signal: AbortSignal, timeoutMs: number) => Promise<boolean | { ok: boolean; detail?: string }>;

/** Turns a health probe description (from a desired spec) into a check. Supplied by the health-check module. */
export type HealthCheckFactory = (instanceId: string, probe: Record<string, unknown>) => HealthProbe;

export interface HealthTimings {
  /** Wait after start before the first check, ms. Default 5000. */
  initialDelayMs: number;
  /** Time between checks, ms. Default 10000. */
  intervalMs: number;
  /** A check not answered within this is a failure, ms. Default 2000. */
  timeoutMs: number;
  /** Consecutive failures that restart the instance. Default 3. */
  failureThreshold: number;
}

export interface SupervisorOptions {
  /** Restart policy; missing keys take RESTART_DEFAULTS. */
  restart?: Partial<RestartPolicy>;
  /** Stop signal and grace when a desired spec names none. Default SIGTERM and 10000 ms. */
  stop?: StopOptions;
  /** Keepalive timeout when a desired spec enables keepalive without one, ms. Default 60000. */
  keepaliveTimeoutMs?: number;
  /** Health timings when a desired spec names none. */
  health?: Partial<HealthTimings>;
  /** Makes health checks from probe descriptions; without it, health specs are ignored (logged once per instance). */
  healthCheckFactory?: HealthCheckFactory;
}

export interface ResolvedSupervisorOptions {
  restart: Readonly<RestartPolicy>;
  stop: Readonly<Required<StopOptions>>;
  keepaliveTimeoutMs: number;
  health: Readonly<HealthTimings>;
  healthCheckFactory?: HealthCheckFactory;
}

export const SUPERVISOR_DEFAULTS = Object.freeze({
  stop: Object.freeze({ signal: "SIGTERM" as NodeJS.Signals, graceMs: 10_000 }),
  keepaliveTimeoutMs: 60_000,
  health: Object.freeze({ initialDelayMs: 5000, intervalMs: 10_000, timeoutMs: 2000, failureThreshold: 3 }),
});

/** Options the schema below takes as they are. */
function plainlyValid(v: unknown): boolean {
  const positive = (x: unknown) => isInt(x, 1);
  return hasExactly(v, {
    restart: isNumberRecord,
    stop: (x) => hasExactly(x, { signal: (s) => isString(s, 0, /^SIG[A-Z0-9]+$/), graceMs: (n) => isInt(n, 0) }, []),
    keepaliveTimeoutMs: positive,
    health: (x) => hasExactly(x, { initialDelayMs: (n) => isInt(n, 0), intervalMs: positive, timeoutMs: positive, failureThreshold: positive }, []),
    healthCheckFactory: (f) => typeof f === "function",
  }, []);
}

/** Checked at the agent's start without zod when plainly valid (exported for test/nodeagent/lazy-options.test.ts). */
export const supervisorOptionsSchema = lazySchema((z) => z.object({
  restart: z.record(z.string(), z.number()).optional(),
  stop: z.object({ signal: z.string().regex(/^SIG[A-Z0-9]+$/).optional(), graceMs: z.number().int().min(0).optional() }).strict().optional(),
  keepaliveTimeoutMs: z.number().int().positive().optional(),
  health: z.object({
    initialDelayMs: z.number().int().min(0).optional(),
    intervalMs: z.number().int().positive().optional(),
    timeoutMs: z.number().int().positive().optional(),
    failureThreshold: z.number().int().positive().optional(),
  }).strict().optional(),
  healthCheckFactory: z.custom<HealthCheckFactory>((v) => typeof v === "function", "must be a function").optional(),
}).strict(), plainlyValid);

/** Validates once, fills defaults, freezes. Throws ConfigError (caller misuse). */
export function resolveSupervisorOptions(options: SupervisorOptions = {}): ResolvedSupervisorOptions {
  const r = supervisorOptionsSchema.safeParse(options);
  if (!r.success) throw new ConfigError(`invalid supervisor options: ${r.error.issues[0]?.path.join(".")}: ${r.error.issues[0]?.message}`);
  return Object.freeze({
    restart: restartPolicy(options.restart),
    stop: Object.freeze({ ...SUPERVISOR_DEFAULTS.stop, ...options.stop }),
    keepaliveTimeoutMs: options.keepaliveTimeoutMs ?? SUPERVISOR_DEFAULTS.keepaliveTimeoutMs,
    health: Object.freeze({ ...SUPERVISOR_DEFAULTS.health, ...options.health }),
    healthCheckFactory: options.healthCheckFactory,
  });
}
