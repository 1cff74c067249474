/**
 * Building tasks from requests: validation, batches, and the parameters the
 * runner reads back (see task-runner.ts).
 *
 * Task params (JSON, stored with the task):
 *   batchSize        instances per batch (0 = all in one batch)
 *   stopOnFailure    stop after a batch with a failed item
 *   batchTimeoutMs   per-batch timeout (absent = the registry's default)
 *   publish only:
 *   version, patchId          the target (version 0 and no patchId for a rollback to mixed versions)
 *   targets                   {instanceId: patchId} per-instance targets (rollbacks)
 *   previousVersions          {instanceId: version} each instance's desired version before (0 = none): what RollbackTask goes back to
 *   previousPatchIds          {instanceId: patchId} the same as patch ids
 *   rollbackOf                id of the publish task this one undoes
 *   canary                    a canary publish's plan and state (./canary.ts); its instances are batch 1
 *   canaryDecision            {action, by, at}: a person's promote / rollback (Admin.DecideCanary)
 */
import { FailedPreconditionError, InvalidArgumentError } from "sgridnext";
import type { CanaryOptions } from "sgridnext/gen/sgrid/registry/v1/admin";
import { canarySettings, planCanary, toJsonState } from "./canary-plan";
import type { RegistryStore } from "../store";
import { TASK_KINDS, type InstanceRecord, type JsonObject, type TaskKind, type TaskRecord } from "../store/records";

/** Most instances one task may hold. */
export const MAX_TASK_ITEMS = 10_000;
/** Longest batch timeout a request may ask for: one day. */
export const MAX_BATCH_TIMEOUT_S = 86_400;

export interface TaskRequest {
  kind: string;
  instanceIds: number[];
  version: number;
  batchSize: number;
  stopOnFailure: boolean;
  batchTimeoutS: number;
  /** Shown with the task; at most MAX_TASK_COMMENT characters. */
  comment?: string;
  /** publish only: a canary first (./canary-plan.ts). */
  canary?: CanaryOptions;
}

/** Longest task comment, characters. */
export const MAX_TASK_COMMENT = 1024;

export interface PreparedTask {
  kind: TaskKind;
  params: JsonObject;
  items: Array<{ instanceId: number; batch: number }>;
  instances: InstanceRecord[];
}

/** Batch numbers (from 1) for `n` items in request order. */
export function batchesOf<T>(list: T[], batchSize: number): Array<{ value: T; batch: number }> {
  const size = batchSize > 0 ? batchSize : list.length;
  return list.map((value, i) => ({ value, batch: Math.floor(i / Math.max(1, size)) + 1 }));
}

/** Refuses instances that an unfinished task already works on (two tasks would fight over desired state). */
export async function checkNotBusy(store: RegistryStore, instanceIds: number[]): Promise<void> {
  const wanted = new Set(instanceIds);
  for (const t of await store.tasks.listUnfinished()) {
    const clash = t.items.find((i) => wanted.has(i.instanceId) && (i.status === "NOT_START" || i.status === "RUNNING"));
    if (clash) {
      throw new FailedPreconditionError(`instance ${clash.instanceId} (${clash.application}.${clash.server}@${clash.node}) is in unfinished ${t.kind} task ${t.id}`, { taskId: t.id, instanceId: clash.instanceId });
    }
  }
}

/** Validates a CreateTask request and loads its instances; throws the typed errors of the API. */
export async function prepareTask(store: RegistryStore, req: TaskRequest): Promise<PreparedTask> {
  if (!(TASK_KINDS as readonly string[]).includes(req.kind)) {
    throw new InvalidArgumentError(`invalid task kind "${req.kind}": expected one of ${TASK_KINDS.join(", ")}`, { kind: "task kind" });
  }
  const kind = req.kind as TaskKind;
  const ids = req.instanceIds;
  if (ids.length === 0) throw new InvalidArgumentError("a task needs at least one instance id", { kind: "instance ids" });
  if (ids.length > MAX_TASK_ITEMS) throw new InvalidArgumentError(`a task holds at most ${MAX_TASK_ITEMS} instances, got ${ids.length}`, { kind: "instance ids" });
  if (new Set(ids).size !== ids.length) throw new InvalidArgumentError("instance ids must not repeat", { kind: "instance ids" });
  if (req.batchTimeoutS > MAX_BATCH_TIMEOUT_S) throw new InvalidArgumentError(`batch timeout ${req.batchTimeoutS} s is over the limit of ${MAX_BATCH_TIMEOUT_S} s`, { kind: "batch timeout" });
  const instances: InstanceRecord[] = [];
  for (const id of ids) instances.push(await store.instances.get(id));
  const params: JsonObject = { batchSize: req.batchSize, stopOnFailure: req.stopOnFailure };
  if (req.comment) {
    if (req.comment.length > MAX_TASK_COMMENT) throw new InvalidArgumentError(`a task comment is at most ${MAX_TASK_COMMENT} characters`, { kind: "comment", field: "comment" });
    params.comment = req.comment;
  }
  if (req.batchTimeoutS > 0) params.batchTimeoutMs = req.batchTimeoutS * 1000;
  if (kind === "publish") {
    if (!(req.version > 0)) throw new InvalidArgumentError("a publish task needs a patch version", { kind: "version" });
    const servers = new Set(instances.map((i) => `${i.application}.${i.server}`));
    if (servers.size !== 1) throw new InvalidArgumentError(`a publish task covers instances of one server, got ${[...servers].join(", ")}`, { kind: "instance ids" });
    const first = instances[0]!;
    const patch = await store.patches.getByVersion(first.application, first.server, req.version);
    params.version = patch.version;
    params.patchId = patch.id;
    Object.assign(params, await previousOf(store, instances));
  } else if (req.version > 0) {
    throw new InvalidArgumentError(`a ${kind} task takes no version`, { kind: "version" });
  }
  if (req.canary) {
    if (kind !== "publish") throw new InvalidArgumentError(`a ${kind} task takes no canary: only a publish does`, { kind: "canary" });
    const plan = planCanary(canarySettings(req.canary, instances.length), instances);
    params.canary = toJsonState({ ...plan, state: "starting", reason: "", bakeStartedAt: 0, bakeEndsAt: 0, rollbackTaskId: 0, decidedBy: "" });
    // The canary is batch 1; the others follow in batches of batchSize once it is promoted.
    const rest = ids.filter((id) => !plan.canaryIds.includes(id));
    const items = [
      ...plan.canaryIds.map((instanceId) => ({ instanceId, batch: 1 })),
      ...batchesOf(rest, req.batchSize).map(({ value, batch }) => ({ instanceId: value, batch: batch + 1 })),
    ];
    return { kind, params, items, instances };
  }
  const items = batchesOf(ids, req.batchSize).map(({ value, batch }) => ({ instanceId: value, batch }));
  return { kind, params, items, instances };
}

/** Each instance's desired patch before a publish: what a rollback returns to. */
async function previousOf(store: RegistryStore, instances: InstanceRecord[]): Promise<JsonObject> {
  const previousVersions: Record<string, number> = {};
  const previousPatchIds: Record<string, number | null> = {};
  for (const i of instances) {
    const pid = i.desiredPatchId ?? i.observedPatchId;
    previousPatchIds[String(i.id)] = pid;
    previousVersions[String(i.id)] = pid === null ? 0 : await store.patches.get(pid).then((p) => p.version, () => 0);
  }
  return { previousVersions, previousPatchIds };
}

/**
 * The publish task that undoes `task`: each of its instances that still
 * exists and had a previous version goes back to it, in the same batch size
 * and with the same stop-on-failure. FAILED_PRECONDITION when `task` is not a
 * finished publish or nothing can be rolled back.
 */
export async function prepareRollback(store: RegistryStore, task: TaskRecord): Promise<PreparedTask> {
  if (task.kind !== "publish") throw new FailedPreconditionError(`task ${task.id} is a ${task.kind} task: only publish tasks can be rolled back`, { taskId: task.id });
  if (task.status === "pending" || task.status === "running") throw new FailedPreconditionError(`task ${task.id} is still ${task.status}: roll it back once it ends`, { taskId: task.id });
  const previous = (task.params.previousPatchIds ?? {}) as Record<string, number | null>;
  const targets: Record<string, number> = {};
  const instances: InstanceRecord[] = [];
  const ids: number[] = [];
  for (const item of task.items) {
    if (item.status === "NOT_START") continue; // never changed
    const prev = previous[String(item.instanceId)];
    if (typeof prev !== "number") continue;
    const inst = await store.instances.get(item.instanceId).catch(() => undefined);
    if (!inst) continue;
    const patch = await store.patches.get(prev).catch(() => undefined);
    if (!patch) continue;
    targets[String(inst.id)] = prev;
    instances.push(inst);
    ids.push(inst.id);
  }
  if (ids.length === 0) throw new FailedPreconditionError(`task ${task.id} has nothing to roll back (no started instance with a previous version that still exists)`, { taskId: task.id });
  const distinct = [...new Set(Object.values(targets))];
  const params: JsonObject = {
    batchSize: task.params.batchSize ?? 0,
    stopOnFailure: task.params.stopOnFailure === true,
    targets,
    rollbackOf: task.id,
    ...(await previousOf(store, instances)),
  };
  if (typeof task.params.batchTimeoutMs === "number") params.batchTimeoutMs = task.params.batchTimeoutMs;
  if (distinct.length === 1) {
    params.patchId = distinct[0]!;
    params.version = (await store.patches.get(distinct[0]!)).version;
  }
  const batchSize = typeof params.batchSize === "number" ? params.batchSize : 0;
  const items = batchesOf(ids, batchSize).map(({ value, batch }) => ({ instanceId: value, batch }));
  return { kind: "publish", params, items, instances };
}
