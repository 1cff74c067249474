/**
 * Optional health checks: after `initialDelayMs`, one probe every
 * `intervalMs`; a probe that answers false, throws, or does not answer
 * within `timeoutMs` is a failure; `failureThreshold` failures in a row ask
 * for a restart ("health check failed ..."). A success resets the count.
 * The probe itself (HTTP GET, TCP connect, gRPC health) comes from the
 * health-check factory given in the supervisor options; this hook only
 * schedules it, so checks of a process that has gone are never counted.
 */
import type { ProcessHandle } from "../../process";
import type { HealthCheckFactory, HealthProbe, HealthTimings } from "../options";
import type { HookContext, LifecycleHook } from "./base";

/** Runs one probe with a timeout; never rejects. */
export async function runProbe(probe: HealthProbe, timeoutMs: number): Promise<{ ok: boolean; error?: string }> {
  const ac = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<{ ok: boolean; error: string }>((resolve) => {
      timer = setTimeout(() => {
        ac.abort();
        resolve({ ok: false, error: `no answer within ${timeoutMs} ms` });
      }, timeoutMs);
    });
    const answer = probe(ac.signal, timeoutMs).then((r) => {
      const ok = typeof r === "boolean" ? r : r?.ok === true;
      const detail = typeof r === "object" && r !== null ? r.detail : undefined;
      return { ok, error: ok ? undefined : detail ?? "probe answered unhealthy" };
    });
    return await Promise.race([answer, timeout]);
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  } finally {
    clearTimeout(timer);
  }
}

export class HealthHook implements LifecycleHook {
  readonly name = "health";
  private timer: NodeJS.Timeout | undefined;
  /** Bumped whenever checking stops, so a probe in flight for an old run is ignored. */
  private generation = 0;
  private warnedNoFactory = false;

  constructor(private readonly factory: HealthCheckFactory | undefined, private readonly defaults: HealthTimings) {}

  async poststart(ctx: HookContext & { handle: ProcessHandle }): Promise<void> {
    this.begin(ctx, ctx.handle);
  }

  async update(ctx: HookContext): Promise<void> {
    if (ctx.handle) this.begin(ctx, ctx.handle);
    else this.end();
  }

  async stop(): Promise<void> {
    this.end();
  }

  async exited(ctx: HookContext): Promise<void> {
    this.end();
    ctx.setHealthy(null);
  }

  detach(): void {
    this.end();
  }

  private begin(ctx: HookContext, handle: ProcessHandle): void {
    this.end();
    const spec = ctx.desired.health;
    ctx.setHealthy(null);
    if (!spec) return;
    if (!this.factory) {
      if (!this.warnedNoFactory) ctx.log.warn({ instanceId: ctx.instanceId }, "health check configured but no health-check factory given; not checking");
      this.warnedNoFactory = true;
      return;
    }
    const t: HealthTimings = {
      initialDelayMs: spec.initialDelayMs ?? this.defaults.initialDelayMs,
      intervalMs: spec.intervalMs ?? this.defaults.intervalMs,
      timeoutMs: spec.timeoutMs ?? this.defaults.timeoutMs,
      failureThreshold: spec.failureThreshold ?? this.defaults.failureThreshold,
    };
    const probe = this.factory(ctx.instanceId, spec.probe);
    const gen = this.generation;
    let failures = 0;
    const tick = async (): Promise<void> => {
      this.timer = undefined;
      const { ok, error } = await runProbe(probe, t.timeoutMs);
      if (gen !== this.generation) return;
      ctx.setHealthy(ok);
      if (ok) failures = 0;
      else {
        failures++;
        ctx.log.warn({ instanceId: ctx.instanceId, failures, threshold: t.failureThreshold, error }, "health check failed");
        if (failures >= t.failureThreshold) {
          ctx.requestRestart(`health check failed ${failures} times in a row (${error ?? "unhealthy"})`, handle);
          return;
        }
      }
      this.timer = setTimeout(() => void tick(), t.intervalMs);
    };
    this.timer = setTimeout(() => void tick(), t.initialDelayMs);
  }

  private end(): void {
    this.generation++;
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
