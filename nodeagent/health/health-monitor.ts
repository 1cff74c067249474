/**
 * Runs one health check on a schedule and decides when an instance is
 * unhealthy.
 *
 * Timeline: wait `initialDelayMs`, check, then wait `intervalMs` after each
 * check ends before the next starts (checks never overlap). After
 * `failureThreshold` consecutive failures the monitor emits `unhealthy`
 * once; it emits `healthy` on the first success and on the first success
 * after being unhealthy. Every check also emits `check`.
 *
 * Defaults, and why: interval 10 s and failure threshold 3 as Kubernetes
 * probes and Consul/Nomad checks (a servant is declared unhealthy after
 * ~30 s of failures, long enough to ride out a GC pause, short enough to
 * matter); timeout 2 s (Kubernetes' 1 s is tight for a JVM under load,
 * Nomad examples use 2 s); initial delay 5 s, a servant's usual time to
 * bind its adapters (Kubernetes defaults to 0 but then relies on startup
 * probes, which Sgrid does not have).
 *
 * Timers are unref'ed; `stop()` is idempotent and a check under way when it
 * is called is ignored.
 */
import { EventEmitter } from "node:events";
import { lazySchema } from "../lazy-schema";
import type { HealthCheck, HealthResult, HealthTarget } from "./base";
import { resolve as resolveCheck } from "./check-names";

export interface HealthMonitorOptions {
  /** Check to run: "http", "tcp", "grpc", a registered name, or a HealthCheck. Required. */
  check: string | HealthCheck;
  /** What to probe. Required. */
  target: HealthTarget;
  /** Wait before the first check, ms. Default 5 000. */
  initialDelayMs?: number;
  /** Wait between the end of one check and the start of the next, ms. Default 10 000. */
  intervalMs?: number;
  /** Each check's timeout, ms. Default 2 000. */
  timeoutMs?: number;
  /** Consecutive failures after which `unhealthy` is emitted. Default 3. */
  failureThreshold?: number;
}

export const HEALTH_MONITOR_DEFAULTS = Object.freeze({ initialDelayMs: 5_000, intervalMs: 10_000, timeoutMs: 2_000, failureThreshold: 3 });

const optionsSchema = lazySchema((z) => z.object({
  target: z.object({
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535),
    path: z.string().startsWith("/").optional(),
    service: z.string().optional(),
  }),
  initialDelayMs: z.number().int().min(0).default(HEALTH_MONITOR_DEFAULTS.initialDelayMs),
  intervalMs: z.number().int().positive().default(HEALTH_MONITOR_DEFAULTS.intervalMs),
  timeoutMs: z.number().int().positive().default(HEALTH_MONITOR_DEFAULTS.timeoutMs),
  failureThreshold: z.number().int().positive().default(HEALTH_MONITOR_DEFAULTS.failureThreshold),
}));

export type HealthState = "unknown" | "healthy" | "unhealthy";

/** Payload of the `check`, `healthy` and `unhealthy` events. */
export interface HealthEvent extends HealthResult {
  consecutiveFailures: number;
}

export class HealthMonitor extends EventEmitter {
  readonly options: Readonly<Required<Omit<HealthMonitorOptions, "check">>>;
  readonly checker: HealthCheck;
  private _state: HealthState = "unknown";
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private generation = 0;
  private running = false;

  /** Throws TypeError on an unknown check name, ZodError on bad options. */
  constructor(options: HealthMonitorOptions) {
    super();
    this.checker = resolveCheck(options.check);
    const parsed = optionsSchema.parse(options);
    this.options = Object.freeze({ ...parsed, target: Object.freeze({ ...parsed.target }) });
  }

  get state(): HealthState {
    return this._state;
  }

  get consecutiveFailures(): number {
    return this.failures;
  }

  /** Starts checking (idempotent). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(this.options.initialDelayMs, ++this.generation);
  }

  /** Stops checking (idempotent). */
  stop(): void {
    this.running = false;
    this.generation++;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(delayMs: number, gen: number): void {
    this.timer = setTimeout(() => void this.tick(gen), delayMs);
    this.timer.unref();
  }

  private async tick(gen: number): Promise<void> {
    let result: HealthResult;
    try {
      result = await this.checker.check(this.options.target, this.options.timeoutMs);
    } catch (err) {
      // A registered third-party check broke the never-throws contract; count it as a failure.
      result = { ok: false, detail: err instanceof Error ? err.message : String(err) };
    }
    if (gen !== this.generation) return;
    this.record(result);
    if (gen === this.generation) this.schedule(this.options.intervalMs, gen);
  }

  private record(result: HealthResult): void {
    this.failures = result.ok ? 0 : this.failures + 1;
    const event: HealthEvent = { ...result, consecutiveFailures: this.failures };
    this.emit("check", event);
    if (result.ok && this._state !== "healthy") {
      this._state = "healthy";
      this.emit("healthy", event);
    } else if (!result.ok && this.failures >= this.options.failureThreshold && this._state !== "unhealthy") {
      this._state = "unhealthy";
      this.emit("unhealthy", event);
    }
  }
}
