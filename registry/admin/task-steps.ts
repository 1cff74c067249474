/**
 * The ordinary steps of a task item, without surges (./surge.ts decides
 * when those come first): apply brings an instance's desired state to what
 * the task kind wants (idempotent, so a resumed task can apply again);
 * check gives the verdict on what the agents observed: done (ok or failed,
 * with the reason) or still waiting (and for what). The per-kind rules are
 * in ./task-runner.ts's file comment.
 */
import type { RegistryContext } from "../server/context";
import type { InstanceRecord, TaskItemRecord, TaskRecord } from "../store/records";
import type { Verdict } from "./surge";

/** How messages name an instance. */
export function describe(inst: Pick<InstanceRecord, "id" | "application" | "server" | "node">): string {
  return `instance ${inst.id} (${inst.application}.${inst.server}@${inst.node})`;
}

/** The patch a publish (or rollback) task wants on an instance; null when it names none. */
export function targetPatch(task: TaskRecord, instanceId: number): number | null {
  const targets = task.params.targets as Record<string, number> | undefined;
  const t = targets?.[String(instanceId)] ?? task.params.patchId;
  return typeof t === "number" ? t : null;
}

export class TaskSteps {
  /** Patch versions by id (immutable once created), for messages. */
  private readonly versionCache = new Map<number, number>();

  constructor(private readonly ctx: RegistryContext, private readonly settleMs: number) {}

  /** A patch's version number as text, for messages ("none" for no patch). */
  async versionOf(patchId: number | null): Promise<string> {
    if (patchId === null) return "none";
    let v = this.versionCache.get(patchId);
    if (v === undefined) {
      v = await this.ctx.store.patches.get(patchId).then((p) => p.version, () => 0);
      if (v > 0) this.versionCache.set(patchId, v);
    }
    return v > 0 ? String(v) : `patch ${patchId}`;
  }

  /** The ordinary step: the instance itself is switched, stopped or started. */
  async apply(task: TaskRecord, inst: InstanceRecord): Promise<void> {
    const { store } = this.ctx;
    switch (task.kind) {
      case "publish": {
        const target = targetPatch(task, inst.id);
        if (target === null) throw Object.assign(new Error(`publish task ${task.id} names no patch for ${describe(inst)}`), { code: "FAILED_PRECONDITION" });
        if (inst.desiredPatchId === target && inst.desiredState === "active") return;
        await store.transaction(async (tx) => {
          // Out of load balancing while it switches (only matters when it is serving now).
          if (inst.observedState === "active" && inst.observedPatchId !== target) await tx.instances.setDrained(inst.id, true);
          await tx.instances.setDesired(inst.id, { state: "active", patchId: target });
        });
        return;
      }
      case "start":
        if (inst.desiredState !== "active") await store.instances.setDesired(inst.id, { state: "active" });
        return;
      case "stop":
      case "undeploy":
        if (inst.desiredState !== "inactive") await store.instances.setDesired(inst.id, { state: "inactive" });
        return;
      case "restart":
        // Phase two already (drained and asked to start again): nothing to redo.
        if (inst.drained && inst.desiredState === "active") return;
        await store.transaction(async (tx) => {
          if (!inst.drained) await tx.instances.setDrained(inst.id, true);
          if (inst.desiredState !== "inactive") await tx.instances.setDesired(inst.id, { state: "inactive" });
        });
        return;
    }
  }

  /** The ordinary verdict on an instance; moves restarts to phase two; undrains and removes as needed. */
  async check(task: TaskRecord, item: TaskItemRecord, inst: InstanceRecord): Promise<Verdict> {
    const { store } = this.ctx;
    const since = item.startedAt ?? 0;
    const freshFailure = inst.observedState === "failed" && (inst.observedAt ?? 0) >= since;
    const stopped = inst.observedState === "inactive" || inst.observedState === "failed";
    const observed = `observed ${inst.observedState}, version ${await this.versionOf(inst.observedPatchId)}`;
    const failReason = () => `${describe(inst)} failed${inst.lastExitReason ? `: ${inst.lastExitReason}` : ""} (${observed})`;
    const activeFor = Date.now() - (inst.observedAt ?? 0);
    const settled = activeFor >= this.settleMs;
    const unsettled = () => ({
      done: false as const, wakeAt: (inst.observedAt ?? 0) + this.settleMs,
      waitingFor: `${describe(inst)} active for ${Math.max(0, Math.round(activeFor))} ms, less than the ${this.settleMs} ms it must stay up (${observed})`,
    });
    switch (task.kind) {
      case "publish": {
        const target = targetPatch(task, inst.id);
        if (inst.observedState === "active" && inst.observedPatchId === target) {
          if (!settled) return unsettled();
          if (inst.drained) await store.instances.setDrained(inst.id, false);
          return { done: true, ok: true };
        }
        if (freshFailure) return { done: true, ok: false, reason: failReason() };
        // The agent refused the package (bad sha256, path escape, link out, wrong type...): no wait for the timeout.
        const targetVersion = await this.versionOf(target);
        if ((inst.observedAt ?? 0) >= since && inst.lastExitReason?.startsWith(`version ${targetVersion} refused`)) {
          return { done: true, ok: false, reason: `${describe(inst)}: ${inst.lastExitReason}` };
        }
        return { done: false, waitingFor: `${describe(inst)} not active on version ${await this.versionOf(target)} (${observed}${inst.drained ? ", drained" : ""})` };
      }
      case "start":
        if (inst.observedState === "active" && (inst.desiredPatchId === null || inst.observedPatchId === inst.desiredPatchId)) return settled ? { done: true, ok: true } : unsettled();
        if (freshFailure) return { done: true, ok: false, reason: failReason() };
        return { done: false, waitingFor: `${describe(inst)} not active (${observed})` };
      case "stop":
        if (stopped) return { done: true, ok: true };
        return { done: false, waitingFor: `${describe(inst)} not stopped (${observed})` };
      case "undeploy": {
        const node = await store.nodes.find(inst.node);
        if (stopped || !node?.online) {
          await store.instances.remove(inst.id);
          return { done: true, ok: true };
        }
        return { done: false, waitingFor: `${describe(inst)} not stopped (${observed})` };
      }
      case "restart":
        if (inst.desiredState === "inactive") {
          if (!stopped) return { done: false, waitingFor: `${describe(inst)} not stopped yet for the restart (${observed})` };
          await store.instances.setDesired(inst.id, { state: "active" });
          this.ctx.changes.kick();
          return { done: false, waitingFor: `${describe(inst)} not active again after the restart (${observed})` };
        }
        if (inst.observedState === "active") {
          if (!settled) return unsettled();
          if (inst.drained) await store.instances.setDrained(inst.id, false);
          return { done: true, ok: true };
        }
        if (freshFailure) return { done: true, ok: false, reason: failReason() };
        return { done: false, waitingFor: `${describe(inst)} not active again after the restart (${observed})` };
    }
  }
}
