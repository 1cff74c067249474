/**
 * The durable task runner: runs publish / start / stop / restart / undeploy
 * tasks stored in the database, one batch at a time, by changing instances'
 * desired state and waiting for the observed state agents report.
 *
 *   task:  pending ──claim──> running ──all items final / stop-on-failure──> success | partial | failed
 *   item:  NOT_START ──batch starts──> RUNNING ──observed / timeout──> SUCCESS | FAILED(reason)
 *
 * Durability: everything lives in the task rows. A runner claims a task with
 * a lease (TaskRepo.claim, TASK_RUNNER_DEFAULTS.leaseMs = 30 s) and renews it
 * every third of the lease while it works; a registry that dies mid-task
 * leaves a lease that runs out, and any registry process sharing the
 * database (this one after a restart, or another) claims it and resumes: the
 * actions below are idempotent, and a batch's deadline counts from its items'
 * stored start time, so it is not extended by a restart. Two processes never
 * run one task at once: the claim is one atomic conditional UPDATE, and a
 * runner that fails to renew its lease stops touching the task.
 *
 * Per kind, for each item (instance):
 * - publish: desired patch := target (params.patchId, or params.targets[id]
 *   for a rollback), desired state := active; the instance is drained (kept
 *   out of FindObject's active list) while it switches if it was active on
 *   another version, and undrained once observed active on the target. Done
 *   when observed active with observedPatchId = target.
 * - start: desired active; done when observed active (on its desired patch).
 * - stop: desired inactive; done when observed inactive (or failed: not running).
 * - restart: stop then start. Phase one sets drained + desired inactive and
 *   waits for the instance to be seen stopped; phase two sets desired active
 *   (still drained) and waits for active, then undrains. The phase is read
 *   back from the instance (drained and desired active = phase two), so a
 *   resumed restart does not stop the instance twice.
 * - undeploy: desired inactive; once stopped (or its node offline: the agent
 *   drops instances missing from its desired state when it reconnects) the
 *   instance is removed.
 * Surges (./surge.ts): a publish (rollback) or restart item that would stop
 * the last serving endpoint of an Obj first starts a surge beside the
 * instance on other ports, switches the instance only once the surge serves,
 * and removes the surge once the instance serves again.
 * Canaries (./canary.ts): a publish with params.canary runs batch 1 (the
 * canary instances) with their weights set, bakes and judges it, then
 * promotes it (the next batches run) or rolls it back (the task ends failed
 * and a rollback task takes the canary instances back), or holds it for a
 * person (Admin.DecideCanary).
 * Items whose node is offline say so in their reason while they wait.
 * An instance reported `failed` after its item started fails the item at
 * once (with the agent's last exit reason); one that is still not done at
 * the batch deadline (params.batchTimeoutMs, else settings.batchTimeoutMs)
 * fails with a reason naming what was observed. With stopOnFailure, a batch
 * with a failed item is the last one: later items stay NOT_START.
 *
 * Final status: every item SUCCESS = success, none = failed, some = partial.
 *
 * The runner wakes on the change feed (topics `instances`, `nodes`: an
 * agent's report; `tasks`: a new task), when a waiting item's settle time
 * is reached (the verdict's wakeAt: an instance observed active for
 * settleMs, a surge's grace over), and otherwise checks every
 * TASK_RUNNER_DEFAULTS.pollMs (2 s); it scans for orphaned tasks every
 * scanMs (10 s).
 */
import { PeriodicTask, type Logger } from "sgridnext";
import type { RegistryContext } from "../server/context";
import type { InstanceRecord, TaskItemRecord, TaskRecord, TaskStatus, Topic } from "../store/records";
import { Canaries, canaryOf } from "./canary";
import { Surges, type Verdict } from "./surge";
import { describe, targetPatch, TaskSteps } from "./task-steps";

export interface TaskRunnerSettings {
  leaseMs: number;
  pollMs: number;
  scanMs: number;
  settleMs: number;
  drainGraceMs: number;
}

export const TASK_RUNNER_DEFAULTS: Readonly<TaskRunnerSettings> = Object.freeze({
  /** Lease on a running task, ms; renewed every third of it. */
  leaseMs: 30_000,
  /** Longest wait between two checks of a batch without any change-feed wake-up, ms. */
  pollMs: 2_000,
  /** Period of the scan for unfinished tasks nobody runs (a dead registry's), ms. */
  scanMs: 10_000,
  /**
   * An instance counts as started (publish, start, restart) only once it has
   * been observed active, on the right version, for this long, ms. A program
   * that crashes at once is briefly "active" after each spawn; without this,
   * its publish would report SUCCESS while it crash-loops. PM2's min_uptime
   * is 1 s; supervisord's startsecs 1 s; we take 2 s, as agents report state
   * changes within a few hundred ms.
   */
  settleMs: 2_000,
  /**
   * From draining a surge (registry/admin/surge.ts) to removing it, ms: time
   * for proxies to see the instance it stood in for listed active again
   * before the surge stops (the change feed polls every 200 ms).
   */
  drainGraceMs: 1_500,
});

export type TaskRunnerOptions = Partial<TaskRunnerSettings>;

const FINAL_ITEM = new Set(["SUCCESS", "FAILED"]);
const FINAL_TASK = new Set<TaskStatus>(["success", "failed", "partial"]);

export class TaskRunner {
  private readonly opts: Readonly<TaskRunnerSettings>;
  private readonly log: Logger;
  private readonly running = new Map<number, Promise<void>>();
  private readonly wakers = new Set<() => void>();
  private stopped = true;
  private scanTimer: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  private scanAgain = false;
  private readonly steps: TaskSteps;
  private readonly surges: Surges;
  private readonly canaries: Canaries;
  /** Last reason shown on a running item (a node offline, a surge's step), to write it only when it changes. */
  private readonly shown = new Map<number, string>();

  constructor(private readonly ctx: RegistryContext, options: TaskRunnerOptions = {}) {
    this.opts = Object.freeze({ ...TASK_RUNNER_DEFAULTS, ...options });
    for (const [k, v] of Object.entries(this.opts)) {
      if (!Number.isInteger(v) || v < 1) throw new TypeError(`task runner option ${k} must be a positive integer, got ${v}`);
    }
    this.log = ctx.log.child({ component: "task-runner" });
    this.steps = new TaskSteps(ctx, this.opts.settleMs);
    this.canaries = new Canaries(ctx, this.opts.pollMs);
    this.surges = new Surges(ctx, { settleMs: this.opts.settleMs, graceMs: this.opts.drainGraceMs }, () => this.wakeAll(), (id) => this.steps.versionOf(id));
  }

  /** Starts watching for tasks and resumes unfinished ones. Idempotent. */
  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    this.ctx.changes.on("change", this.onChange);
    this.scheduleScan();
    this.kick();
  }

  /**
   * Stops: no new claims, running tasks stop at their next step and give up
   * their lease (another process, or this one after a restart, resumes them).
   * Waits for them. Idempotent.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.ctx.changes.off("change", this.onChange);
    if (this.scanTimer) clearTimeout(this.scanTimer);
    this.scanTimer = undefined;
    this.wakeAll();
    await this.scanning;
    await Promise.allSettled([...this.running.values()]);
  }

  /** Looks for tasks to run now (call after creating one). Never throws. */
  kick(): void {
    if (this.stopped) return;
    if (this.scanning) {
      this.scanAgain = true;
      return;
    }
    this.scanning = this.scan().finally(() => {
      this.scanning = undefined;
      if (this.scanAgain) {
        this.scanAgain = false;
        this.kick();
      }
    });
  }

  /** Ids of tasks this process is running now. */
  activeTasks(): number[] {
    return [...this.running.keys()];
  }

  private readonly onChange = (topics: Set<Topic>): void => {
    if (topics.has("instances") || topics.has("observed") || topics.has("nodes")) this.wakeAll();
    if (topics.has("tasks")) {
      this.kick();
      // A person's decision on a canary (Admin.DecideCanary) is a task write.
      this.wakeAll();
    }
  };

  private wakeAll(): void {
    for (const w of [...this.wakers]) w();
  }

  private scheduleScan(): void {
    if (this.stopped) return;
    this.scanTimer = setTimeout(() => {
      this.kick();
      this.scheduleScan();
    }, this.opts.scanMs);
    this.scanTimer.unref();
  }

  private async scan(): Promise<void> {
    try {
      const tasks = await this.ctx.store.tasks.listUnfinished();
      for (const task of tasks) {
        if (this.stopped) return;
        if (this.running.has(task.id)) continue;
        // Skip tasks whose lease another process holds, without a write.
        if (task.owner && task.owner !== this.ctx.settings.processId && (task.leaseUntil ?? 0) > Date.now()) continue;
        if (!(await this.ctx.store.tasks.claim(task.id, this.ctx.settings.processId, this.opts.leaseMs))) continue;
        this.log.debug({ taskId: task.id }, "claimed a task");
        const run = this.run(task.id).finally(() => this.running.delete(task.id));
        this.running.set(task.id, run);
      }
    } catch (err) {
      this.log.warn({ err }, "scanning for tasks failed; retrying at the next scan");
    }
  }

  /** Waits for a change-feed wake-up, `ms`, or stop. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      this.wakers.add(done);
    });
  }

  private async run(taskId: number): Promise<void> {
    const { store, settings } = this.ctx;
    const owner = settings.processId;
    let lost = false;
    let finished = false;
    const renew = new PeriodicTask(async () => {
      if (lost) return;
      if (!(await store.tasks.claim(taskId, owner, this.opts.leaseMs))) {
        lost = true;
        this.log.warn({ taskId }, "lost the lease on a task; another registry process runs it now");
        this.wakeAll();
      }
    }, { intervalMs: Math.max(1, Math.floor(this.opts.leaseMs / 3)), onError: (err) => this.log.warn({ err, taskId }, "renewing a task lease failed") }).start();
    const halt = () => this.stopped || lost;
    try {
      let task = await store.tasks.get(taskId);
      if (FINAL_TASK.has(task.status)) {
        finished = true;
        return;
      }
      if (task.status === "pending") {
        task = await store.tasks.setStatus(taskId, "running");
        this.ctx.changes.kick();
      }
      const stopOnFailure = task.params.stopOnFailure === true;
      const batches = [...new Set(task.items.map((i) => i.batch))].sort((a, b) => a - b);
      let stoppedAfter: number | undefined;
      for (const batch of batches) {
        if (halt()) return;
        if (stopOnFailure && task.items.some((i) => i.batch < batch && i.status === "FAILED")) {
          stoppedAfter = Math.max(...task.items.filter((i) => i.status === "FAILED").map((i) => i.batch));
          break;
        }
        const items = task.items.filter((i) => i.batch === batch && !FINAL_ITEM.has(i.status));
        const canary = batch === 1 && canaryOf(task) !== undefined;
        if (canary) await this.canaries.begin(task);
        if (items.length > 0) await this.runBatch(task, items, halt);
        if (halt()) return;
        if (canary) {
          const outcome = await this.canaries.bake(taskId, halt, (ms) => this.pause(ms));
          if (outcome === "halt") return;
          if (outcome === "ended") {
            finished = true;
            return;
          }
        }
        task = await store.tasks.get(taskId);
      }
      if (stoppedAfter === undefined && stopOnFailure) {
        const failedBatches = task.items.filter((i) => i.status === "FAILED").map((i) => i.batch);
        if (failedBatches.length > 0 && task.items.some((i) => i.status === "NOT_START")) stoppedAfter = Math.min(...failedBatches);
      }
      await this.finish(task, stoppedAfter);
      finished = true;
    } catch (err) {
      if (!halt()) this.log.error({ err, taskId }, "task run failed; it will be resumed at the next scan");
    } finally {
      // A renewal in flight must end before the release, or it could take the lease back after it.
      await renew.stop();
      // Leave the lease to run out only when we lost it; otherwise hand the task back at once.
      if (!lost) await store.tasks.release(taskId, owner).catch(() => undefined);
      if (!finished && !this.stopped && !lost) setTimeout(() => this.kick(), this.opts.pollMs).unref();
    }
  }

  private async finish(task: TaskRecord, stoppedAfter: number | undefined): Promise<void> {
    const total = task.items.length;
    const ok = task.items.filter((i) => i.status === "SUCCESS").length;
    const failed = task.items.filter((i) => i.status === "FAILED").length;
    const notStarted = total - ok - failed;
    const status: TaskStatus = ok === total ? "success" : ok === 0 ? "failed" : "partial";
    const parts: string[] = [];
    if (failed > 0) parts.push(`${failed} of ${total} item(s) failed`);
    if (stoppedAfter !== undefined && notStarted > 0) parts.push(`stopped after batch ${stoppedAfter} (stop on failure): ${notStarted} item(s) not started`);
    const reason = parts.length > 0 ? parts.join("; ") : null;
    const servers = [...new Set(task.items.map((i) => `${i.application}.${i.server}`))];
    // Status and event together: whoever sees the task ended sees its event.
    await this.ctx.store.transaction(async (tx) => {
      await tx.tasks.setStatus(task.id, status, reason);
      await tx.events.append({
        actor: "registry", kind: "task.finish", target: servers.length === 1 ? servers[0]! : `task:${task.id}`,
        message: `${task.kind} task ${task.id} (by ${task.createdBy}) finished: ${status}${reason ? ` (${reason})` : ""}`,
        data: { taskId: task.id, kind: task.kind, status, success: ok, failed, notStarted },
      });
    });
    this.ctx.changes.kick();
    this.log.info({ taskId: task.id, kind: task.kind, status }, "task finished");
  }

  private async runBatch(task: TaskRecord, batchItems: TaskItemRecord[], halt: () => boolean): Promise<void> {
    const { store } = this.ctx;
    let items = batchItems;
    const batchIds = items.map((i) => i.instanceId);
    // Mark and act (idempotent on resume): surges first, then the other items, whose
    // switch may wait for a batch mate's surge to be installed (Surges.holdFor).
    const started: TaskItemRecord[] = [];
    const surged = new Set<number>();
    for (const item of items) {
      if (halt()) return;
      const current = item.status === "NOT_START" ? await store.tasks.setItemStatus(item.id, "RUNNING") : item;
      started.push(current);
      await this.step(task, item, async (inst) => {
        if (await this.beginSurge(task, inst, batchIds)) surged.add(item.id);
      });
    }
    const holdFrom = Date.now();
    /** Items whose switch waits for a batch mate's surge. */
    const held = new Set<number>();
    for (const item of started) {
      if (halt()) return;
      if (surged.has(item.id)) continue;
      await this.step(task, item, async (inst) => {
        if (task.kind === "publish" && (await this.surges.holdFor(inst, batchIds, holdFrom)) !== undefined) held.add(item.id);
        else await this.steps.apply(task, inst);
      });
    }
    this.ctx.changes.kick();
    items = started;
    const timeoutMs = typeof task.params.batchTimeoutMs === "number" && task.params.batchTimeoutMs > 0 ? task.params.batchTimeoutMs : this.ctx.settings.batchTimeoutMs;
    const batchStart = Math.min(...items.map((i) => i.startedAt ?? Date.now()));
    const deadline = batchStart + timeoutMs;
    const pending = new Map(items.map((i) => [i.id, i]));
    // Items failed during apply are final already.
    for (const it of (await store.tasks.get(task.id)).items) if (pending.has(it.id) && FINAL_ITEM.has(it.status)) pending.delete(it.id);
    while (pending.size > 0) {
      if (halt()) return;
      const now = Date.now();
      const waiting: string[] = [];
      /** The earliest time a waiting item's verdict changes by itself (a settle time reached). */
      let wakeAt = Infinity;
      for (const item of [...pending.values()]) {
        let verdict: Verdict | undefined;
        if (held.has(item.id)) {
          const inst = await store.instances.get(item.instanceId).catch(() => undefined);
          const why = inst && (await this.surges.holdFor(inst, batchIds, holdFrom));
          if (why) verdict = { done: false, waitingFor: why };
          else {
            held.delete(item.id);
            if (!(await this.step(task, item, (i) => this.steps.apply(task, i)))) {
              pending.delete(item.id);
              continue;
            }
            this.ctx.changes.kick();
          }
        }
        verdict ??= await this.check(task, item);
        if (!verdict.done) {
          this.log.debug({ taskId: task.id, itemId: item.id, waitingFor: verdict.waitingFor }, "task item waiting");
          await this.show(item, verdict.waitingFor);
          if (now >= deadline) {
            await store.tasks.setItemStatus(item.id, "FAILED", `timed out after ${Math.round(timeoutMs / 1000)} s: ${verdict.waitingFor}`);
            await this.afterFailure(task, item);
            pending.delete(item.id);
          } else {
            waiting.push(verdict.waitingFor);
            if (verdict.wakeAt !== undefined) wakeAt = Math.min(wakeAt, verdict.wakeAt);
          }
          continue;
        }
        await store.tasks.setItemStatus(item.id, verdict.ok ? "SUCCESS" : "FAILED", verdict.ok ? null : verdict.reason);
        if (!verdict.ok) await this.afterFailure(task, item);
        pending.delete(item.id);
        this.shown.delete(item.id);
        this.ctx.changes.kick();
      }
      if (pending.size === 0) break;
      // Until a report wakes us, the poll, the batch deadline, or the moment an item settles (1 ms past it: a timer
      // may fire a little early by Date.now(), and a look just before would cost a pass with its queries).
      const left = Math.min(this.opts.pollMs, deadline - Date.now(), wakeAt + 1 - Date.now());
      await this.pause(Math.max(0, left));
    }
  }

  /**
   * Shows why a running item waits, on the item (CLI and admin show it), when
   * that is worth an operator's eye: its node is offline, or it goes the
   * surge way. Written only when it changes.
   */
  private async show(item: TaskItemRecord, waitingFor: string): Promise<void> {
    const notable = /offline|surge/.test(waitingFor) ? waitingFor : "";
    if ((this.shown.get(item.id) ?? "") === notable) return;
    this.shown.set(item.id, notable);
    await this.ctx.store.tasks.setItemStatus(item.id, "RUNNING", notable || null);
  }

  /**
   * Runs `fn` on an item's instance (read afresh); an instance gone, or a
   * step refused (INVALID_ARGUMENT, FAILED_PRECONDITION), fails the item.
   * Resolves false when the item failed (or, for undeploy, its instance is
   * gone already).
   */
  private async step(task: TaskRecord, item: TaskItemRecord, fn: (inst: InstanceRecord) => Promise<void>): Promise<boolean> {
    try {
      await fn(await this.ctx.store.instances.get(item.instanceId));
      return true;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === "NOT_FOUND" && task.kind === "undeploy") return false;
      if (code === "NOT_FOUND" || code === "INVALID_ARGUMENT" || code === "FAILED_PRECONDITION") {
        await this.ctx.store.tasks.setItemStatus(item.id, "FAILED", (err as Error).message);
        return false;
      }
      throw err;
    }
  }

  /**
   * A publish or restart that would stop the last serving endpoint of an Obj
   * starts a surge first (./surge.ts) and stops nothing yet: resolves true
   * when the item goes that way. Otherwise the caller brings the instance's
   * desired state to what the task wants (TaskSteps.apply, idempotent).
   */
  private async beginSurge(task: TaskRecord, inst: InstanceRecord, batch: readonly number[]): Promise<boolean> {
    if (task.kind === "publish") {
      const target = targetPatch(task, inst.id);
      return target !== null && !(inst.desiredPatchId === target && inst.desiredState === "active") && (await this.surges.begin(task, inst, batch, target));
    }
    return task.kind === "restart" && !inst.drained && inst.desiredState === "active" && (await this.surges.begin(task, inst, batch, inst.desiredPatchId));
  }

  /** Looks at one running item's instance (and its surge, if it has one). */
  private async check(task: TaskRecord, item: TaskItemRecord): Promise<Verdict> {
    const { store } = this.ctx;
    let inst: InstanceRecord;
    try {
      inst = await store.instances.get(item.instanceId);
    } catch (err) {
      if ((err as { code?: string }).code !== "NOT_FOUND") throw err;
      return task.kind === "undeploy" ? { done: true, ok: true } : { done: true, ok: false, reason: `instance ${item.instanceId} was removed` };
    }
    let v: Verdict | undefined;
    if (task.kind === "publish" || task.kind === "restart") {
      const switched = task.kind === "publish" ? inst.desiredPatchId === targetPatch(task, inst.id) : inst.drained || inst.desiredState === "inactive";
      v = await this.surges.check(task, item, inst, {
        switched,
        switchNow: () => this.steps.apply(task, inst),
        plainCheck: () => this.steps.check(task, item, inst),
      });
    }
    v ??= await this.steps.check(task, item, inst);
    // An item on an offline node waits for it, and says so.
    if (!v.done && task.kind !== "undeploy" && (await store.nodes.find(inst.node))?.online === false) {
      return { done: false, waitingFor: `node "${inst.node}" is offline: waiting for it to come back (${describe(inst)} is not counted as serving meanwhile); ${v.waitingFor}` };
    }
    return v;
  }

  /** A failed item must not leave its instance out of load balancing forever. */
  private async afterFailure(_task: TaskRecord, item: TaskItemRecord): Promise<void> {
    this.shown.delete(item.id);
    const inst = await this.ctx.store.instances.get(item.instanceId).catch(() => undefined);
    if (inst?.drained) await this.ctx.store.instances.setDrained(inst.id, false).catch(() => undefined);
    await this.surges.afterFailure(item.instanceId).catch((err: unknown) => this.log.warn({ err, instanceId: item.instanceId }, "removing a surge after a failure failed"));
  }
}
