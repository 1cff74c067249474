/**
 * InstanceSupervisor: the state machine of one instance on this node.
 *
 *                      (1)                       (2)
 *     +----------+  -------->  +------------+  -------->  +--------+
 *     | inactive |             | activating |             | active |
 *     +----------+             +------------+             +--------+
 *        ^     ^                  |      ^   ^               |    |
 *        |     |               (3)|   (4)|   |(7)         (5)|    |(6)
 *        |     |                  v      |   |               v    v
 *        |     |               +---------+   |  (5)   +--------------+
 *        |     |               | backoff | <-|------- | deactivating |
 *        |     |               +---------+   +------- +--------------+
 *        |     |                  |(8)                        |
 *        |  (9)|                  v                           |
 *        |     |               +--------+                     |
 *        |     +-------------- | failed |                     |
 *        |                     +--------+                     |
 *        +----------------------------------------------------+
 *                                (10)
 *
 *   (1) setDesired(active)
 *   (2) the process was launched (or, at agent start, adopted)
 *   (3) launch failed, and the RestartTracker says restart after a delay
 *   (4) the backoff delay elapsed
 *   (5) the process ended unexpectedly (exit, keepalive timeout, failed
 *       health check: the latter two are stopped via deactivating first),
 *       and the tracker says restart after a delay
 *   (6) a stop is needed: setDesired(inactive), a new version or launch
 *       spec, restart(), keepalive timeout, failed health check
 *   (7) stopped for a new version or restart(): started again at once
 *   (8) the tracker says fail (crash loop), from any failure; FAILED is
 *       sticky, with its reason, until someone acts: a new version or
 *       launch spec, restart(), or an inactive -> active toggle
 *   (9) setDesired(inactive) (also from backoff and activating)
 *  (10) stopped, and the desired state is inactive
 *
 * Names follow Tars (inactive/activating/active/deactivating) and
 * supervisord (backoff, failed ~ FATAL).
 *
 * Concurrency: every transition runs as one task on a private serial queue
 * (setDesired, an exit, a timer, a hook's restart request), so a transition
 * never interleaves with another. The process's exit is "expected" exactly
 * when the supervisor cleared `running` before stopping it.
 */
import { EventEmitter } from "node:events";
import { getLogger, Mutex, type Logger } from "sgridnext";
import { type CgroupUsage, assertInstanceId } from "../cgroups";
import type { ExitInfo, ProcessHandle, ProcessWrangler } from "../process";
import { exitInfo } from "../process";
import type { StateStore } from "../state";
import {
  type DesiredSpec, type InstanceRecord, type InstanceState, type ObservedState,
  changedInPlace, needsRestart, validateDesiredSpec,
} from "./desired-spec";
import { type ResolvedSupervisorOptions, type SupervisorOptions, resolveSupervisorOptions } from "./options";
import { RestartTracker } from "./restart-tracker";
import type { HookContext, LifecycleHook } from "./hooks/base";
import { CgroupHook } from "./hooks/cgroup-hook";
import { LaunchHook } from "./hooks/launch-hook";
import { KeepaliveHook } from "./hooks/keepalive-hook";
import { HealthHook } from "./hooks/health-hook";

export interface InstanceSupervisorDeps {
  /** Launches, adopts, watches and stops processes (and owns the cgroup backend). */
  wrangler: ProcessWrangler;
  /** Where the instance's record is persisted; absent = nothing persisted. */
  store?: StateStore<InstanceRecord>;
  /** Supervisor options (raw or already resolved). */
  options?: SupervisorOptions | ResolvedSupervisorOptions;
  /** Further lifecycle hooks, run after the built-in ones. */
  hooks?: LifecycleHook[];
  /** Randomness for backoff jitter (tests pin it). Default Math.random. */
  random?: () => number;
}

type Phase = "prestart" | "poststart" | "update" | "stop" | "exited" | "destroy";

interface Running {
  handle: ProcessHandle;
  /** The desired spec the process was started with (or adopted under). */
  spec: DesiredSpec;
  adopted: boolean;
}

function isResolved(o: SupervisorOptions | ResolvedSupervisorOptions | undefined): o is ResolvedSupervisorOptions {
  return o !== undefined && Object.isFrozen(o) && typeof (o as ResolvedSupervisorOptions).keepaliveTimeoutMs === "number" && Object.isFrozen((o as ResolvedSupervisorOptions).restart);
}

/** Events: "state" (ObservedState) on every change. */
export class InstanceSupervisor extends EventEmitter<{ state: [ObservedState] }> {
  readonly instanceId: string;
  private readonly wrangler: ProcessWrangler;
  private readonly store: StateStore<InstanceRecord> | undefined;
  private readonly opts: ResolvedSupervisorOptions;
  private readonly tracker: RestartTracker;
  private readonly keepaliveHook: KeepaliveHook;
  private readonly hooks: LifecycleHook[];
  private readonly log: Logger = getLogger("agent.supervisor");
  private readonly ctx: HookContext;

  private state: InstanceState = "inactive";
  private since = Date.now();
  private desired: DesiredSpec | undefined;
  private running: Running | undefined;
  private restarts = 0;
  private lastExitReason: string | null = null;
  /** Set while FAILED (sticky until someone acts). */
  private failedReason: string | null = null;
  private failedAt = 0;
  private retryInMs: number | null = null;
  private healthy: boolean | null = null;
  private backoffTimer: NodeJS.Timeout | undefined;
  private pendingRestart: string | undefined;
  private readonly transitions = new Mutex();
  private detached = false;

  constructor(instanceId: string, deps: InstanceSupervisorDeps) {
    super();
    this.instanceId = instanceId;
    this.wrangler = deps.wrangler;
    assertInstanceId(instanceId);
    this.store = deps.store;
    this.opts = isResolved(deps.options) ? deps.options : resolveSupervisorOptions(deps.options as SupervisorOptions | undefined);
    this.tracker = new RestartTracker(this.opts.restart, deps.random);
    this.keepaliveHook = new KeepaliveHook(this.opts.keepaliveTimeoutMs);
    this.hooks = [
      new CgroupHook(this.wrangler.cgroups),
      new LaunchHook(this.wrangler),
      this.keepaliveHook,
      new HealthHook(this.opts.healthCheckFactory, this.opts.health),
      ...(deps.hooks ?? []),
    ];
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    this.ctx = {
      instanceId,
      get desired() { return self.desired!; },
      get handle() { return self.running?.handle; },
      log: this.log,
      requestRestart: (reason, handle) => this.requestRestart(reason, handle),
      setHealthy: (h) => this.setHealthy(h),
    };
  }

  // ---- public API -------------------------------------------------------------

  /**
   * Sets what the instance should be and reconciles toward it. Resolves when
   * this reconcile pass is done (the process launched or stopped); never
   * rejects (failures show in the observed state). Throws
   * InvalidDesiredSpecError at once for a bad spec. Re-sending the same spec
   * (the registry resends the full desired state on every reconnect) changes
   * nothing, and in particular does not clear FAILED.
   */
  setDesired(spec: DesiredSpec): Promise<void> {
    const next = validateDesiredSpec(spec);
    return this.enqueue(async () => {
      const prev = this.desired;
      this.desired = next;
      const acted = prev === undefined || needsRestart(prev, next) || (prev.state === "inactive" && next.state === "active");
      if (acted && prev !== undefined) this.giveAnotherChance();
      await this.persist();
      await this.reconcile();
    });
  }

  /** Restarts the running process (or retries a FAILED instance at once). Not counted as a failure. */
  restart(reason = "restart requested"): Promise<void> {
    return this.enqueue(async () => {
      if (this.desired?.state !== "active") return;
      this.giveAnotherChance();
      if (this.running) this.pendingRestart = reason;
      await this.reconcile();
    });
  }

  /** A keepalive from the servant (called by the local channel). */
  keepalive(): void {
    this.keepaliveHook.beat();
  }

  /**
   * At agent start: picks up the persisted record. The recorded process is
   * adopted when it is still the same process; failing that, a session
   * leader found in the instance's cgroup (the agent died between spawn and
   * saving); otherwise the instance is started as its desired state says.
   * Never starts a second process next to a live one.
   */
  resume(record: InstanceRecord): Promise<void> {
    const desired = validateDesiredSpec(record.desired);
    return this.enqueue(async () => {
      this.desired = desired;
      this.restarts = record.restarts ?? 0;
      this.lastExitReason = record.lastExitReason ?? null;
      let handle: ProcessHandle | undefined;
      if (record.handle && (await this.wrangler.adopt(record.handle))) handle = record.handle;
      else {
        const leader = await this.wrangler.findLeader(this.instanceId);
        if (leader && (await this.wrangler.adopt(leader))) {
          handle = leader;
          this.log.warn({ instanceId: this.instanceId, pid: leader.pid }, "adopted an unrecorded process found in the instance's cgroup");
        }
      }
      if (handle) {
        this.running = { handle, spec: desired, adopted: true };
        this.watchExit(handle);
        await this.runHooks("poststart", true);
        await this.transition("active");
        await this.reconcile();
        return;
      }
      if (record.failed && desired.state === "active") {
        this.failedReason = record.failed.reason;
        this.failedAt = record.failed.at;
        await this.transition("failed");
        return;
      }
      if (record.handle && desired.state === "active") {
        // It died while no agent was watching: a failure like any other exit.
        this.lastExitReason = "exited while the agent was not running";
        await this.afterFailure(this.lastExitReason, Date.now() - record.handle.startedAt);
        return;
      }
      if (desired.state === "inactive") await this.runHooks("destroy");
      await this.reconcile();
    });
  }

  /** The observed state now. */
  observed(): ObservedState {
    return {
      instanceId: this.instanceId,
      state: this.state,
      pid: this.running?.handle.pid ?? null,
      restarts: this.restarts,
      lastExitReason: this.lastExitReason,
      version: this.running?.spec.version ?? this.desired?.version ?? null,
      failedReason: this.state === "failed" ? this.failedReason : null,
      retryInMs: this.state === "backoff" ? this.retryInMs : null,
      healthy: this.healthy,
      adopted: this.running?.adopted ?? false,
      since: this.since,
    };
  }

  /** The running process's handle, if any. */
  get handle(): ProcessHandle | undefined {
    return this.running?.handle;
  }

  /** The desired spec last set, if any. */
  get desiredSpec(): DesiredSpec | undefined {
    return this.desired;
  }

  /** Usage of the instance's cgroup. */
  usage(): Promise<CgroupUsage> {
    return this.wrangler.cgroups.usage(this.instanceId);
  }

  /** Resolves once every queued transition has run. */
  idle(): Promise<void> {
    return this.transitions.run(() => undefined);
  }

  /**
   * Stops supervising WITHOUT touching the process (agent shutdown or
   * upgrade): timers stop, watches end, the process keeps running and the
   * next agent re-adopts it. Queued transitions are dropped.
   */
  detach(): void {
    if (this.detached) return;
    this.detached = true;
    this.clearBackoff();
    for (const hook of this.hooks) {
      try {
        hook.detach?.(this.ctx);
      } catch (err) {
        this.log.warn({ instanceId: this.instanceId, hook: hook.name, err: (err as Error).message }, "hook detach failed");
      }
    }
    if (this.running) this.wrangler.detach(this.running.handle);
  }

  // ---- transitions (each runs as one queued task) -----------------------------

  private enqueue(task: () => Promise<void>): Promise<void> {
    return this.transitions.run(() => (this.detached ? undefined : task())).catch((err: unknown) => {
      this.log.error({ instanceId: this.instanceId, err: (err as Error)?.stack ?? String(err) }, "supervisor transition failed");
    });
  }

  private async reconcile(): Promise<void> {
    const d = this.desired;
    if (!d) return;
    if (d.state === "inactive") {
      this.clearBackoff();
      this.pendingRestart = undefined;
      if (this.running) await this.stopRunning("desired state inactive");
      if (this.state !== "inactive") {
        await this.runHooks("destroy");
        this.failedReason = null;
        this.tracker.reset();
        await this.transition("inactive");
      }
      return;
    }
    if (this.failedReason !== null) return; // FAILED is sticky
    if (this.running) {
      const r = this.running;
      const why = this.pendingRestart
        ?? (r.spec.version !== d.version ? `new version ${d.version}` : needsRestart(r.spec, d) ? "new launch spec" : undefined);
      this.pendingRestart = undefined;
      if (why === undefined) {
        if (changedInPlace(r.spec, d)) {
          const prev = r.spec;
          r.spec = d;
          await this.runHooks("update", prev);
          await this.persist();
        }
        return;
      }
      await this.stopRunning(why);
    }
    if (this.backoffTimer) return; // waiting out a restart delay
    await this.start();
  }

  private async start(): Promise<void> {
    const spec = this.desired!;
    await this.transition("activating");
    let handle: ProcessHandle;
    try {
      await this.runHooks("prestart", undefined, true);
      handle = await this.startHook().start!(this.ctx);
    } catch (err) {
      this.lastExitReason = `failed to start: ${(err as Error).message}`;
      this.log.error({ instanceId: this.instanceId, err: (err as Error).message }, "servant failed to start");
      await this.afterFailure(this.lastExitReason, 0);
      return;
    }
    this.running = { handle, spec, adopted: false };
    this.watchExit(handle);
    await this.runHooks("poststart", false);
    await this.transition("active"); // persists the handle before anyone hears "active"
  }

  private async onExit(handle: ProcessHandle, info: ExitInfo): Promise<void> {
    if (this.running?.handle !== handle) return; // stopped on purpose, or stale
    this.running = undefined;
    this.lastExitReason = info.reason;
    this.log.warn({ instanceId: this.instanceId, pid: handle.pid, reason: info.reason }, "servant exited");
    await this.runHooks("exited", info);
    if (this.desired?.state !== "active") {
      await this.persist();
      await this.reconcile();
      return;
    }
    await this.afterFailure(info.reason, info.at - handle.startedAt);
  }

  private requestRestart(reason: string, handle: ProcessHandle): void {
    void this.enqueue(async () => {
      if (this.running?.handle !== handle || this.state !== "active") return;
      const ranFor = Date.now() - handle.startedAt;
      this.log.warn({ instanceId: this.instanceId, pid: handle.pid, reason }, "restarting servant");
      await this.stopRunning(reason);
      this.lastExitReason = reason;
      if (this.desired?.state !== "active") {
        await this.reconcile();
        return;
      }
      await this.afterFailure(reason, ranFor);
    });
  }

  /** After an unexpected end: backoff and retry, or FAILED, as the tracker decides. */
  private async afterFailure(reason: string, ranForMs: number): Promise<void> {
    const decision = this.tracker.onFailure(ranForMs);
    if (decision.action === "fail") {
      this.failedReason = `${decision.reason ?? "gave up"}; last: ${reason}`;
      this.failedAt = Date.now();
      this.log.error({ instanceId: this.instanceId, reason: this.failedReason }, "servant FAILED; not restarting until someone acts");
      await this.runHooks("destroy");
      await this.transition("failed");
      return;
    }
    this.restarts++;
    this.retryInMs = decision.delayMs;
    this.clearBackoff();
    this.backoffTimer = setTimeout(() => {
      this.backoffTimer = undefined;
      void this.enqueue(() => this.reconcile());
    }, decision.delayMs);
    await this.transition("backoff");
  }

  /** Stops the running process on purpose (its exit is expected from here on). */
  private async stopRunning(why: string): Promise<ExitInfo> {
    const r = this.running!;
    this.running = undefined;
    await this.transition("deactivating");
    await this.runHooks("stop");
    let info: ExitInfo;
    try {
      info = await this.wrangler.stop(r.handle, { ...this.opts.stop, ...this.desired?.stop });
    } catch (err) {
      // Processes stuck (e.g. in uninterruptible sleep): the next prestart kills what is left.
      this.log.error({ instanceId: this.instanceId, err: (err as Error).message }, "stop did not empty the cgroup");
      info = exitInfo(null, null, false, true);
    }
    this.lastExitReason = `stopped: ${why}`;
    await this.runHooks("exited", info);
    return info;
  }

  // ---- helpers ----------------------------------------------------------------

  private giveAnotherChance(): void {
    this.failedReason = null;
    this.tracker.reset();
    this.clearBackoff();
  }

  private startHook(): LifecycleHook {
    const hook = this.hooks.find((h) => h.start);
    if (!hook) throw new Error("no lifecycle hook implements start");
    return hook;
  }

  private watchExit(handle: ProcessHandle): void {
    void this.wrangler.wait(handle).then((info) => this.enqueue(() => this.onExit(handle, info)));
  }

  private clearBackoff(): void {
    clearTimeout(this.backoffTimer);
    this.backoffTimer = undefined;
  }

  private setHealthy(healthy: boolean | null): void {
    if (this.healthy === healthy) return;
    this.healthy = healthy;
    if (!this.detached) this.emit("state", this.observed());
  }

  private async runHooks(phase: Phase, arg?: unknown, throwOnError = false): Promise<void> {
    for (const hook of this.hooks) {
      const fn = hook[phase] as ((ctx: HookContext, a?: unknown) => Promise<void>) | undefined;
      if (!fn) continue;
      try {
        await fn.call(hook, this.ctx, arg);
      } catch (err) {
        if (throwOnError) throw err;
        this.log.error({ instanceId: this.instanceId, hook: hook.name, phase, err: (err as Error).message }, "lifecycle hook failed");
      }
    }
  }

  private async transition(state: InstanceState): Promise<void> {
    this.state = state;
    this.since = Date.now();
    if (state !== "backoff") this.retryInMs = null;
    this.log.debug({ instanceId: this.instanceId, state }, "instance state");
    this.emit("state", this.observed());
    await this.persist();
  }

  private async persist(): Promise<void> {
    if (!this.store || !this.desired || this.detached) return;
    const record: InstanceRecord = { desired: this.desired, restarts: this.restarts, lastExitReason: this.lastExitReason };
    if (this.running) record.handle = this.running.handle;
    if (this.failedReason !== null && this.state === "failed") record.failed = { reason: this.failedReason, at: this.failedAt };
    try {
      await this.store.set(this.instanceId, record);
    } catch (err) {
      this.log.error({ instanceId: this.instanceId, err: (err as Error).message }, "cannot persist instance state");
    }
  }
}
