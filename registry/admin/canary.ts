/**
 * The canary of a publish task, as the task runner drives it. The plan
 * (./canary-plan.ts) is stored with the task (params.canary); batch 1 holds
 * the canary instances, later batches the others.
 *
 *   starting ──batch 1 observed active──> baking ──figures bad────────────> rolled_back
 *      │                                    │    ──bake passed, no hold───> promoted ──> batches 2.. (the ordinary publish)
 *      └──a canary item failed──> rolled_back ── passed + hold, or too few calls ──> held
 *                                   held/baking ──a person: DecideCanary──> promoted | rolled_back
 *
 * - starting: before batch 1 switches, the canary instances' endpoint
 *   weights are set to give them their share of calls (by share only).
 * - baking: every poll, the server-side call stats the instances reported
 *   since the bake started (the service monitor's rows, less what they held
 *   at the start) are judged (./canary-judge.ts).
 * - rolled_back: in one transaction the canary instances are drained (out
 *   of every proxy's list at once: no more calls reach the bad version),
 *   their weights restored, the task ended `failed` with the reason, and a
 *   rollback task (a publish back to each canary instance's previous
 *   version, by "registry") created; the runner then runs that one.
 * - promoted: weights restored; the runner goes on with batch 2.
 * Everything lives in the task row, so a registry that takes over the task
 * resumes where the last one left it (a bake keeps its start time).
 * A person's decision is its own key (params.canaryDecision), written by
 * Admin.DecideCanary, so that it never races the runner's writes of the state.
 */
import type { Logger } from "sgridnext";
import type { RegistryContext } from "../server/context";
import type { RegistryStore } from "../store";
import type { InstanceRecord, JsonObject, TaskRecord } from "../store/records";
import { judgeCanary } from "./canary-judge";
import { canaryOf, decisionOf, toJsonState, type CanaryState, type StatSums } from "./canary-plan";

export { canaryOf };
import { prepareRollback } from "./task-factory";

const MINUTE_MS = 60_000;

export type CanaryOutcome = "promoted" | "ended" | "halt";

function empty(): StatSums {
  return { calls: 0, errors: 0, buckets: [] };
}

function minus(a: StatSums, b: StatSums): StatSums {
  return { calls: Math.max(0, a.calls - b.calls), errors: Math.max(0, a.errors - b.errors), buckets: a.buckets.map((n, i) => Math.max(0, n - (b.buckets[i] ?? 0))) };
}

function serverOf(task: TaskRecord): { application: string; server: string } {
  const first = task.items[0]!;
  return { application: first.application, server: first.server };
}

export class Canaries {
  private readonly log: Logger;

  constructor(private readonly ctx: RegistryContext, private readonly pollMs: number) {
    this.log = ctx.log.child({ component: "canary" });
  }

  /** Before batch 1: the canary's weights (idempotent: done once, recorded in the state). */
  async begin(task: TaskRecord): Promise<void> {
    const c = canaryOf(task);
    if (!c || c.state !== "starting" || c.reason === "weights set") return;
    await this.ctx.store.transaction(async (tx) => {
      await this.setWeights(tx, c.weights);
      await tx.tasks.setParam(task.id, "canary", toJsonState({ ...c, reason: "weights set" }));
      const share = `${(100 * c.share).toFixed(1)} % of calls`;
      await this.event(tx, task, `canary of publish task ${task.id}: instance(s) ${c.canaryIds.join(", ")} take the new version first (${share}${Object.keys(c.weights).length > 0 ? `, weights ${JSON.stringify(c.weights)}` : ""}); bake ${c.settings.bakeS} s`, { state: "starting", share: c.share });
    });
    this.ctx.changes.kick();
  }

  /**
   * After batch 1: bakes, judges and acts until the canary is promoted (the
   * caller goes on with the next batches), ended (rolled back: the task is
   * final), or `halt` says stop (the task is resumed later).
   */
  async bake(taskId: number, halt: () => boolean, pause: (ms: number) => Promise<void>): Promise<CanaryOutcome> {
    const { store } = this.ctx;
    for (;;) {
      if (halt()) return "halt";
      const task = await store.tasks.get(taskId);
      let c = canaryOf(task)!;
      if (c.state === "promoted") return "promoted";
      if (c.state === "rolled_back") return "ended";
      const failed = task.items.find((i) => i.batch === 1 && i.status === "FAILED");
      if (failed) return this.rollBack(task, c, "registry", `canary ${failed.node} #${failed.instanceId} failed: ${failed.reason ?? "no reason given"}`);
      const now = Date.now();
      if (c.state === "starting") {
        const fromMinute = Math.floor(now / MINUTE_MS) * MINUTE_MS;
        const at0 = { canary: await this.sums(task, c, true, fromMinute), baseline: await this.sums(task, c, false, fromMinute), fromMinute };
        c = { ...c, state: "baking", reason: `baking for ${c.settings.bakeS} s`, bakeStartedAt: now, bakeEndsAt: now + c.settings.bakeS * 1000, at0 };
        const started = c;
        await store.transaction(async (tx) => {
          await tx.tasks.setParam(taskId, "canary", toJsonState(started));
          await this.event(tx, task, `canary of publish task ${taskId} serving: bake of ${c.settings.bakeS} s started (judged once it served ${c.settings.minCalls} calls: error rate at most ${c.settings.maxErrorRateDelta} points above the old version's, p99 at most ${c.settings.maxP99Ratio}x)`, { state: "baking" });
        });
        this.ctx.changes.kick();
      }
      const decision = decisionOf(task);
      if (decision?.action === "rollback") return this.rollBack(task, c, decision.by, `rolled back by ${decision.by}`);
      if (decision?.action === "promote") return this.promote(task, c, decision.by, `promoted by ${decision.by}${c.state === "held" ? ` (${c.reason})` : ""}`);
      if (c.state === "held") {
        await pause(this.pollMs);
        continue;
      }
      const at0 = c.at0!;
      const canary = minus(await this.sums(task, c, true, at0.fromMinute), at0.canary);
      const baseline = minus(await this.sums(task, c, false, at0.fromMinute), at0.baseline);
      const v = judgeCanary({ canary, baseline, settings: c.settings, now: Date.now(), bakeEndsAt: c.bakeEndsAt });
      this.log.debug({ taskId, verdict: v.verdict, canary, baseline }, "canary judged");
      c = { ...c, last: { canary, baseline } };
      if (v.verdict === "fail") return this.rollBack(task, c, "registry", v.reason);
      if (v.verdict === "pass" && !c.settings.hold) return this.promote(task, c, "registry", v.reason);
      if (v.verdict === "pass" || v.verdict === "insufficient") {
        const why = v.verdict === "pass" ? `${v.reason}; held for a person (--canary-hold)` : `${v.reason}; held for a person`;
        const held: CanaryState = { ...c, state: "held", reason: `${why}: promote or roll back (sgrid canary promote|rollback ${taskId}, or Admin.DecideCanary)` };
        await store.transaction(async (tx) => {
          await tx.tasks.setParam(taskId, "canary", toJsonState(held));
          await this.event(tx, task, `canary of publish task ${taskId} held: ${held.reason}`, { state: "held" });
        });
        this.ctx.changes.kick();
        continue;
      }
      if (JSON.stringify(canaryOf(task)?.last) !== JSON.stringify(c.last) || canaryOf(task)?.reason !== v.reason) {
        await store.tasks.setParam(taskId, "canary", toJsonState({ ...c, reason: v.reason }));
      }
      await pause(Math.min(this.pollMs, Math.max(0, c.bakeEndsAt - Date.now())));
    }
  }

  private async promote(task: TaskRecord, c: CanaryState, by: string, reason: string): Promise<CanaryOutcome> {
    const promoted: CanaryState = { ...c, state: "promoted", reason, decidedBy: by };
    await this.ctx.store.transaction(async (tx) => {
      await this.setWeights(tx, c.originalWeights);
      await tx.tasks.setParam(task.id, "canary", toJsonState(promoted));
      await this.event(tx, task, `canary of publish task ${task.id} promoted: ${reason}; the other ${task.items.filter((i) => i.batch > 1).length} instance(s) follow in batches`, { state: "promoted", by });
    });
    this.ctx.changes.kick();
    this.log.info({ taskId: task.id, by }, "canary promoted");
    return "promoted";
  }

  /** Drains the canary, restores its weights, ends the task `failed` and starts the rollback task, all at once. */
  private async rollBack(task: TaskRecord, c: CanaryState, by: string, reason: string): Promise<CanaryOutcome> {
    const { store } = this.ctx;
    await store.transaction(async (tx) => {
      for (const id of c.canaryIds) {
        const inst = await tx.instances.get(id).catch(() => undefined);
        if (inst && !inst.drained) await tx.instances.setDrained(id, true);
      }
      await this.setWeights(tx, c.originalWeights);
      const ended = await tx.tasks.setStatus(task.id, "failed", `canary rolled back: ${reason}`);
      let rollbackTaskId = 0;
      const prepared = await prepareRollback(tx, ended).catch((err: unknown) => {
        this.log.warn({ taskId: task.id, err: (err as Error).message }, "nothing to roll back after a canary");
        return undefined;
      });
      if (prepared) {
        const rb = await tx.tasks.create({ kind: "publish", params: prepared.params, createdBy: "registry", items: prepared.items });
        rollbackTaskId = rb.id;
        await this.event(tx, task, `publish task ${rb.id} created: rollback of canary task ${task.id}, ${prepared.items.length} instance(s)`, { rollbackTaskId: rb.id }, "task.create");
      }
      await tx.tasks.setParam(task.id, "canary", toJsonState({ ...c, state: "rolled_back", reason, decidedBy: by, rollbackTaskId }));
      await this.event(tx, task, `canary of publish task ${task.id} rolled back: ${reason}${rollbackTaskId ? ` (rollback task ${rollbackTaskId})` : ""}`, { state: "rolled_back", by, rollbackTaskId });
      await this.event(tx, task, `publish task ${task.id} (by ${task.createdBy}) finished: failed (canary rolled back: ${reason})`, { status: "failed" }, "task.finish");
    });
    this.ctx.changes.kick();
    this.log.info({ taskId: task.id, by, reason }, "canary rolled back");
    return "ended";
  }

  private async setWeights(tx: RegistryStore, weights: Record<string, Record<string, number>>): Promise<void> {
    for (const [id, byObj] of Object.entries(weights)) {
      const inst: InstanceRecord | undefined = await tx.instances.get(Number(id)).catch(() => undefined);
      if (!inst) continue;
      if (inst.adapters.every((a) => byObj[a.obj] === undefined || byObj[a.obj] === a.weight)) continue;
      await tx.instances.updateSpec(inst.id, { adapters: inst.adapters.map((a) => ({ ...a, weight: byObj[a.obj] ?? a.weight })) });
    }
  }

  /** Server-side calls of the canary instances (or the others of the task) in rows from `fromMinute` on. */
  private async sums(task: TaskRecord, c: CanaryState, canary: boolean, fromMinute: number): Promise<StatSums> {
    const ids = canary ? c.canaryIds : task.items.map((i) => i.instanceId).filter((id) => !c.canaryIds.includes(id));
    const rows = await this.ctx.store.callStats.query({ ...serverOf(task), from: fromMinute, to: Date.now() + MINUTE_MS, side: "server", instanceIds: ids });
    const out = empty();
    for (const r of rows) {
      out.calls += r.calls;
      out.errors += r.errors;
      r.buckets.forEach((n, i) => (out.buckets[i] = (out.buckets[i] ?? 0) + n));
    }
    return out;
  }

  private async event(tx: RegistryStore, task: TaskRecord, message: string, data: Record<string, unknown>, kind = "task.canary"): Promise<void> {
    const { application, server } = serverOf(task);
    await tx.events.append({ actor: typeof data.by === "string" ? data.by : "registry", kind, target: `${application}.${server}`, message, data: { taskId: task.id, ...data } as JsonObject });
  }
}

