/**
 * Surges: a publish, restart or rollback never takes down the last serving
 * endpoint of an Obj.
 *
 * When a task item is about to stop an instance that serves (desired and
 * observed active, node online, not drained) and no other instance of its
 * server outside the item's batch serves (one instance; the others offline,
 * failed, drained or stopped), the task runner does not stop it at once:
 *
 *   A. surge: a second instance of the server on the same node (a row with
 *      `surge_of` = the instance, InstanceRecord.surgeOf), same spec, every
 *      adapter on a newly assigned port (placement's port range), desired
 *      active on the target version (publish, rollback) or the current one
 *      (restart). It is an instance like any other for the agent and for
 *      FindObject: listed active once it serves.
 *   B. switch: once the surge has been observed active on its version for
 *      the task runner's settle time, the instance goes the ordinary way
 *      (drained, stopped, started on the target version; callers retry
 *      UNAVAILABLE on the surge meanwhile), and is waited for active and
 *      settled, then undrained.
 *   C. back: the surge is drained, and removed `graceMs` later (proxies have
 *      had time to see the instance back and the surge gone); its agent stops
 *      it.
 *
 * The instance keeps its id, ports and instance-level config: only the
 * surge's ports are new, and only for the switch.
 *
 * In a batch of several instances of one server with nothing serving outside
 * it, one instance (the lowest id that serves) takes the surge and keeps
 * serving until the surge is ready. In a publish, the others switch once the
 * surge's agent has reported on it (it starts: the package is installed on
 * its node; or it failed), and at most settleMs + graceMs after the batch
 * started (`holdFor`): the surge's node, whose way is the longest, downloads
 * the package without the others' downloads beside it, and theirs overlap
 * its settle and switch instead. They keep serving meanwhile.
 *
 * Failures: a surge that fails (reported failed, package refused, batch
 * timeout) fails the item and is removed; the instance was never touched and
 * keeps serving its version. An instance that fails after the switch fails
 * the item, and its surge is left serving (the reason says so): it is removed
 * by the next task that switches that instance successfully.
 *
 * No port left: when the node has no free port in the range for a surge,
 * the item fails with FAILED_PRECONDITION saying so, and the instance is left
 * serving its version untouched: downtime is never chosen silently (free
 * ports, or add an instance on another node, and run the task again).
 *
 * State lives in the rows (the surge row; the instance's desired patch and
 * drained flag), so a resumed task goes on where it was. Only the grace of
 * step C is kept in memory: a resumed task waits it again.
 */
import { FailedPreconditionError } from "sgridnext";
import type { RegistryContext } from "../server/context";
import { isEndpointActive } from "../store";
import type { InstanceRecord, TaskItemRecord, TaskRecord } from "../store/records";
import { assignPorts } from "./placement";

/**
 * What a check of a task item found. `wakeAt` (epoch ms): when a waiting verdict changes without any report (a
 * settle time reached, a grace over), so the task runner looks again then instead of at its next poll.
 */
export type Verdict = { done: true; ok: true } | { done: true; ok: false; reason: string } | { done: false; waitingFor: string; wakeAt?: number };

export interface SurgeOptions {
  /** How long a surge must have been observed active before the instance switches, ms (the task runner's settleMs). */
  settleMs: number;
  /** From draining a surge to removing it, ms. */
  graceMs: number;
}

/** Attempts when a concurrent placement took the port chosen for a surge. */
const PORT_ATTEMPTS = 3;

function label(inst: Pick<InstanceRecord, "id" | "application" | "server" | "node">): string {
  return `instance ${inst.id} (${inst.application}.${inst.server}@${inst.node})`;
}

function ports(inst: InstanceRecord): string {
  return inst.adapters.map((a) => `${a.obj} on port ${a.port}`).join(", ");
}

export class Surges {
  /** Surge id -> when it may be removed (step C), ms. */
  private readonly removeAt = new Map<number, number>();

  constructor(
    private readonly ctx: RegistryContext,
    private readonly opts: SurgeOptions,
    private readonly wake: () => void,
    private readonly versionOf: (patchId: number | null) => Promise<string>,
  ) {}

  /** Whether an instance serves now (what FindObject lists active). */
  private async serving(inst: InstanceRecord, online?: Map<string, boolean>): Promise<boolean> {
    const nodeOnline = online ? online.get(inst.node) === true : (await this.ctx.store.nodes.find(inst.node))?.online === true;
    return isEndpointActive(inst, nodeOnline);
  }

  /**
   * Step A for an item about to stop `inst`: creates its surge when one is
   * needed (see the file comment) or exists already. Resolves true when the
   * item goes the surge way (the caller must not stop the instance now).
   * Throws FAILED_PRECONDITION when a surge is needed and the node has no
   * free port.
   */
  async begin(task: TaskRecord, inst: InstanceRecord, batch: readonly number[], patchId: number | null): Promise<boolean> {
    const { store } = this.ctx;
    if (inst.surgeOf !== null) return false;
    if (await store.instances.findSurge(inst.id)) return true;
    const online = new Map((await store.nodes.list()).map((n) => [n.name, n.online]));
    if (!(await this.serving(inst, online))) return false;
    const inBatch = new Set(batch);
    const all = await store.instances.list({ application: inst.application, server: inst.server });
    const placed = all.filter((i) => i.surgeOf === null);
    for (const other of placed) {
      if (other.id !== inst.id && !inBatch.has(other.id) && (await this.serving(other, online))) return false;
    }
    // One surge per batch and server: a batch mate has it already, or one with a lower id will take it.
    if (all.some((i) => i.surgeOf !== null && i.surgeOf !== inst.id && inBatch.has(i.surgeOf))) return false;
    for (const mate of placed) {
      if (mate.id < inst.id && inBatch.has(mate.id) && (await this.serving(mate, online))) return false;
    }
    await this.create(task, inst, patchId);
    return true;
  }

  /**
   * Whether the switch of `inst` (a publish item that is not taking a surge)
   * waits for the surge a batch mate of its server takes: until that surge
   * has been reported on since it was created (starting, serving, failed, or
   * not installed, with the reason), and for at most settleMs + graceMs from
   * `since` (what the surge way waits longer than a plain switch: holding
   * the others longer could only make the batch longer). Resolves with what
   * it waits for, or undefined to switch now. So the surge's node downloads
   * and unpacks the package while the others still serve, and their
   * downloads overlap the surge's settle instead of slowing it.
   */
  async holdFor(inst: InstanceRecord, batch: readonly number[], since: number): Promise<string | undefined> {
    if (inst.surgeOf !== null) return undefined;
    const capMs = this.opts.settleMs + this.opts.graceMs;
    if (Date.now() - since >= capMs) return undefined;
    const inBatch = new Set(batch);
    const all = await this.ctx.store.instances.list({ application: inst.application, server: inst.server });
    const surge = all.find((i) => i.surgeOf !== null && i.surgeOf !== inst.id && inBatch.has(i.surgeOf));
    if (!surge) return undefined;
    const reported = (surge.observedAt ?? 0) >= surge.createdAt && (surge.observedState !== "inactive" || !!surge.lastExitReason);
    if (reported) return undefined;
    return `surge instance ${surge.id} beside instance ${surge.surgeOf} on node "${surge.node}" being installed first; ${label(inst)} keeps serving and switches once it starts (at most ${capMs} ms after the batch started)`;
  }

  private async create(task: TaskRecord, inst: InstanceRecord, patchId: number | null): Promise<InstanceRecord> {
    const { store } = this.ctx;
    for (let attempt = 1; ; attempt++) {
      try {
        const taken = new Set(await store.instances.usedPorts(inst.node));
        let adapters;
        try {
          adapters = assignPorts(inst.adapters.map((a) => ({ ...a, port: 0 })), taken, "", inst.node);
        } catch (err) {
          if (!(err instanceof FailedPreconditionError)) throw err;
          throw new FailedPreconditionError(
            `${label(inst)} is the last serving endpoint of its Obj(s) and ${err.message}: no surge could be started beside it, so it was left serving version ${await this.versionOf(inst.observedPatchId)} untouched (free ports on the node, or place the server on another node, and run the ${task.kind} again)`,
            { instanceId: inst.id, node: inst.node },
          );
        }
        // Before the transaction: on SQLite its one connection is the transaction's, and a read
        // through the store inside it would wait for the pool's acquire timeout (5 s) and fail.
        const version = await this.versionOf(patchId);
        const surge = await store.transaction(async (tx) => {
          const s = await tx.instances.createSurge(inst.id, { adapters, patchId });
          await tx.events.append({
            actor: "registry", kind: "instance.surge", target: `${inst.application}.${inst.server}@${inst.node}`,
            message: `${task.kind} task ${task.id}: ${label(inst)} is the last serving endpoint of its Obj(s); surge instance ${s.id} started beside it (${ports(s)}) on version ${version}`,
            data: { taskId: task.id, instanceId: inst.id, surgeId: s.id, adapters: s.adapters.map((a) => `${a.obj}@${a.host}:${a.port}`) },
          });
          return s;
        });
        this.ctx.log.info({ taskId: task.id, instanceId: inst.id, surgeId: surge.id }, "surge started");
        return surge;
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === "ALREADY_EXISTS" && /port/i.test((err as Error).message) && attempt < PORT_ATTEMPTS) continue;
        throw err;
      }
    }
  }

  /**
   * The verdict of an item on the surge way, or undefined when `inst` has no
   * surge (the ordinary check decides). `switchNow` takes the instance down
   * the ordinary way (drain, stop or switch version); `plainCheck` is the
   * ordinary verdict on the instance; `switched` tells whether it has been
   * switched already.
   */
  async check(
    task: TaskRecord, item: TaskItemRecord, inst: InstanceRecord,
    steps: { switched: boolean; switchNow: () => Promise<void>; plainCheck: () => Promise<Verdict> },
  ): Promise<Verdict | undefined> {
    const { store } = this.ctx;
    const surge = await store.instances.findSurge(inst.id);
    if (!surge) return undefined;
    const surgeVersion = await this.versionOf(surge.desiredPatchId);
    // Drained only in step C: the instance is back already (a restart looks unswitched again by then).
    if (surge.drained) return this.back(surge);
    if (!steps.switched) {
      // A: wait for the surge to serve, settled.
      const observed = `observed ${surge.observedState}, version ${await this.versionOf(surge.observedPatchId)}`;
      if (surge.observedState === "active" && surge.observedPatchId === surge.desiredPatchId) {
        const activeFor = Date.now() - (surge.observedAt ?? 0);
        if (activeFor < this.opts.settleMs) {
          return {
            done: false, wakeAt: (surge.observedAt ?? 0) + this.opts.settleMs,
            waitingFor: `surge instance ${surge.id} (${ports(surge)}) active on version ${surgeVersion} for ${Math.max(0, Math.round(activeFor))} ms, less than the ${this.opts.settleMs} ms it must stay up; ${label(inst)} keeps serving`,
          };
        }
        await steps.switchNow();
        this.ctx.changes.kick();
        return { done: false, waitingFor: `${label(inst)} switching; surge instance ${surge.id} (${ports(surge)}) serves meanwhile` };
      }
      const since = Math.max(item.startedAt ?? 0, surge.createdAt);
      const fresh = (surge.observedAt ?? 0) >= since;
      const refused = fresh && surge.lastExitReason?.startsWith(`version ${surgeVersion} refused`);
      if ((fresh && surge.observedState === "failed") || refused) {
        const why = surge.lastExitReason ? `: ${surge.lastExitReason}` : "";
        await this.remove(surge, "failed");
        return { done: true, ok: false, reason: `surge instance ${surge.id} of ${label(inst)} failed on version ${surgeVersion}${why} (${observed}); it was removed, and ${label(inst)} was left serving its version untouched` };
      }
      return { done: false, waitingFor: `surge instance ${surge.id} (${ports(surge)}) starting version ${surgeVersion} beside ${label(inst)}, which keeps serving (${observed})` };
    }
    const v = await steps.plainCheck();
    if (!v.done) return { done: false, wakeAt: v.wakeAt, waitingFor: `${v.waitingFor}; surge instance ${surge.id} (${ports(surge)}) serves meanwhile` };
    if (!v.ok) return { done: true, ok: false, reason: `${v.reason}; surge instance ${surge.id} (${ports(surge)}) keeps serving version ${surgeVersion} until the instance is switched successfully` };
    return this.back(surge);
  }

  /** C: the instance serves again; the surge is drained, and removed after the grace. */
  private async back(surge: InstanceRecord): Promise<Verdict> {
    const { store } = this.ctx;
    let at = this.removeAt.get(surge.id);
    if (at === undefined) {
      if (!surge.drained) await store.instances.setDrained(surge.id, true);
      this.ctx.changes.kick();
      at = Date.now() + this.opts.graceMs;
      this.removeAt.set(surge.id, at);
      setTimeout(this.wake, this.opts.graceMs + 10).unref();
    }
    if (Date.now() < at) return { done: false, wakeAt: at, waitingFor: `instance ${surge.surgeOf} serving again; surge instance ${surge.id} drained, removed in ${Math.max(0, at - Date.now())} ms` };
    await this.remove(surge, "done");
    return { done: true, ok: true };
  }

  /** After a failed item: a surge that is not needed (its instance serves, or it never served) is removed. */
  async afterFailure(instanceId: number): Promise<void> {
    const { store } = this.ctx;
    const surge = await store.instances.findSurge(instanceId).catch(() => undefined);
    if (!surge) return;
    const inst = await store.instances.get(instanceId).catch(() => undefined);
    const surgeServes = await this.serving(surge);
    if (inst && (await this.serving(inst)) || !surgeServes) await this.remove(surge, "not needed");
  }

  private async remove(surge: InstanceRecord, why: string): Promise<void> {
    this.removeAt.delete(surge.id);
    await this.ctx.store.transaction(async (tx) => {
      await tx.instances.remove(surge.id);
      await tx.events.append({
        actor: "registry", kind: "instance.surge_end", target: `${surge.application}.${surge.server}@${surge.node}`,
        message: `surge instance ${surge.id} of instance ${surge.surgeOf} removed (${why})`,
        data: { instanceId: surge.surgeOf, surgeId: surge.id },
      });
    });
    this.ctx.changes.kick();
  }
}
