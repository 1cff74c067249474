/**
 * Tasks and their items: durable operations over instances. A task is also
 * history, so items copy the instance's names (an undeploy removes the
 * instance but not the record of it).
 *
 * Several registry processes may share one database; the one that runs a
 * task holds a lease on it (`claim`), renewed while it works and taken over
 * by another process once it runs out (a registry that died mid-task).
 */
import { InvalidArgumentError, NotFoundError } from "sgridnext";
import type { TaskInput, TaskRepo } from "../base";
import {
  TASK_ITEM_STATUSES, TASK_KINDS, TASK_STATUSES, type JsonObject, type TaskItemRecord, type TaskItemStatus, type TaskKind, type TaskRecord, type TaskStatus,
} from "../records";
import { validateId, validateJsonObject, validateOneOf, validateText, validateUserName } from "../validate";
import { type Db, type StoreContext, insertedId, num, toJson } from "./context";
import { instanceQuery, toInstance, toTask, toTaskItem } from "./rows";

const FINAL_TASK: readonly TaskStatus[] = ["success", "failed", "partial"];
const FINAL_ITEM: readonly TaskItemStatus[] = ["SUCCESS", "FAILED"];
const INSERT_CHUNK = 200;

async function loadItems(db: Db, taskIds: number[]): Promise<Map<number, TaskItemRecord[]>> {
  const out = new Map<number, TaskItemRecord[]>(taskIds.map((id) => [id, []]));
  if (taskIds.length === 0) return out;
  const rows = await db("task_items").whereIn("task_id", taskIds).orderBy([{ column: "batch" }, { column: "id" }]);
  for (const r of rows) out.get(num(r.task_id))?.push(toTaskItem(r));
  return out;
}

async function requireTask(db: Db, id: number): Promise<TaskRecord> {
  const row = await db("tasks").where({ id }).first();
  if (!row) throw new NotFoundError(`task ${id} not found`, { taskId: id });
  return toTask(row, (await loadItems(db, [id])).get(id) ?? []);
}

function reasonField(reason: string | null | undefined): Record<string, unknown> {
  if (reason === undefined) return {};
  return { reason: reason === null ? null : validateText("reason", reason, 4096) };
}

export class KnexTaskRepo implements TaskRepo {
  constructor(private readonly ctx: StoreContext) {}

  async create(input: TaskInput): Promise<TaskRecord> {
    const kind = validateOneOf("task kind", input.kind, TASK_KINDS);
    const params = toJson(validateJsonObject("task params", input.params));
    const createdBy = validateUserName(input.createdBy);
    if (!Array.isArray(input.items)) throw new InvalidArgumentError("invalid task items: expected a list", { kind: "task items" });
    const seen = new Set<number>();
    for (const item of input.items) {
      validateId("instance id", item?.instanceId);
      validateId("batch number", item.batch);
      if (seen.has(item.instanceId)) throw new InvalidArgumentError(`invalid task items: instance ${item.instanceId} appears twice`, { kind: "task items" });
      seen.add(item.instanceId);
    }
    return this.ctx.write(async (trx, touch) => {
      const ids = [...seen];
      const instances = new Map<number, ReturnType<typeof toInstance>>();
      for (let i = 0; i < ids.length; i += INSERT_CHUNK) {
        for (const r of await instanceQuery(trx).whereIn("i.id", ids.slice(i, i + INSERT_CHUNK))) instances.set(num(r.id), toInstance(r));
      }
      const missing = ids.filter((id) => !instances.has(id));
      if (missing.length > 0) throw new NotFoundError(`instance(s) ${missing.join(", ")} not found`, { instanceIds: missing });
      const now = this.ctx.now();
      const taskId = insertedId(await trx("tasks").insert({ kind, params, status: "pending", created_by: createdBy, created_at: now, updated_at: now }));
      const rows = input.items.map((item) => {
        const inst = instances.get(item.instanceId)!;
        return {
          task_id: taskId, instance_id: inst.id, application: inst.application, server: inst.server, node: inst.node,
          batch: item.batch, status: "NOT_START", updated_at: now,
        };
      });
      for (let i = 0; i < rows.length; i += INSERT_CHUNK) await trx("task_items").insert(rows.slice(i, i + INSERT_CHUNK));
      touch("tasks");
      return requireTask(trx, taskId);
    });
  }

  async get(id: number): Promise<TaskRecord> {
    validateId("task id", id);
    return this.ctx.read((db) => requireTask(db, id));
  }

  async list(filter: { status?: TaskStatus; kind?: TaskKind; limit?: number; beforeId?: number } = {}): Promise<TaskRecord[]> {
    const limit = Math.min(validateId("limit", filter.limit ?? 50), 500);
    if (filter.status !== undefined) validateOneOf("task status", filter.status, TASK_STATUSES);
    if (filter.kind !== undefined) validateOneOf("task kind", filter.kind, TASK_KINDS);
    if (filter.beforeId !== undefined) validateId("beforeId", filter.beforeId);
    return this.ctx.read(async (db) => {
      const q = db("tasks").orderBy("id", "desc").limit(limit);
      if (filter.status !== undefined) q.where({ status: filter.status });
      if (filter.kind !== undefined) q.where({ kind: filter.kind });
      if (filter.beforeId !== undefined) q.where("id", "<", filter.beforeId);
      const rows = await q;
      const items = await loadItems(db, rows.map((r: any) => num(r.id)));
      return rows.map((r: any) => toTask(r, items.get(num(r.id)) ?? []));
    });
  }

  async listUnfinished(): Promise<TaskRecord[]> {
    return this.ctx.read(async (db) => {
      const rows = await db("tasks").whereIn("status", ["pending", "running"]).orderBy("id", "asc");
      const items = await loadItems(db, rows.map((r: any) => num(r.id)));
      return rows.map((r: any) => toTask(r, items.get(num(r.id)) ?? []));
    });
  }

  async setStatus(id: number, status: TaskStatus, reason?: string | null): Promise<TaskRecord> {
    validateId("task id", id);
    validateOneOf("task status", status, TASK_STATUSES);
    const extra = reasonField(reason);
    return this.ctx.write(async (trx, touch) => {
      await requireTask(trx, id);
      const now = this.ctx.now();
      const times: Record<string, unknown> = FINAL_TASK.includes(status)
        ? { finished_at: now, started_at: trx.raw("COALESCE(??, ?)", ["started_at", now]) }
        : status === "running"
          ? { started_at: trx.raw("COALESCE(??, ?)", ["started_at", now]), finished_at: null }
          : { finished_at: null };
      await trx("tasks").where({ id }).update({ status, ...times, ...extra, updated_at: now });
      touch("tasks");
      return requireTask(trx, id);
    });
  }

  async setParam(id: number, key: string, value: JsonObject): Promise<TaskRecord> {
    validateId("task id", id);
    const clean = validateJsonObject(`task param ${key}`, value);
    return this.ctx.write(async (trx, touch) => {
      const task = await requireTask(trx, id);
      const params = { ...task.params, [key]: clean };
      await trx("tasks").where({ id }).update({ params: toJson(params), updated_at: this.ctx.now() });
      touch("tasks");
      return requireTask(trx, id);
    });
  }

  async setItemStatus(itemId: number, status: TaskItemStatus, reason?: string | null): Promise<TaskItemRecord> {
    validateId("task item id", itemId);
    validateOneOf("task item status", status, TASK_ITEM_STATUSES);
    const extra = reasonField(reason);
    return this.ctx.write(async (trx, touch) => {
      const row = await trx("task_items").where({ id: itemId }).first("id");
      if (!row) throw new NotFoundError(`task item ${itemId} not found`, { taskItemId: itemId });
      const now = this.ctx.now();
      const times: Record<string, unknown> = FINAL_ITEM.includes(status)
        ? { finished_at: now, started_at: trx.raw("COALESCE(??, ?)", ["started_at", now]) }
        : status === "RUNNING"
          ? { started_at: trx.raw("COALESCE(??, ?)", ["started_at", now]), finished_at: null }
          : { started_at: null, finished_at: null };
      await trx("task_items").where({ id: itemId }).update({ status, ...times, ...extra, updated_at: now });
      touch("tasks");
      return toTaskItem(await trx("task_items").where({ id: itemId }).first());
    });
  }

  async claim(id: number, owner: string, leaseMs: number): Promise<boolean> {
    validateId("task id", id);
    validateText("task owner", owner, 128);
    if (owner.length === 0) throw new InvalidArgumentError("invalid task owner: must not be empty", { kind: "task owner" });
    validateId("lease", leaseMs);
    return this.ctx.read(async (db) => {
      const now = this.ctx.now();
      // One conditional UPDATE: atomic on both dialects, whoever commits first wins.
      const n = await db("tasks")
        .where({ id })
        .andWhere((w) => { w.whereNull("owner").orWhere("owner", owner).orWhere("lease_until", "<", now).orWhereNull("lease_until"); })
        .update({ owner, lease_until: now + leaseMs });
      if (num(n) > 0) return true;
      if (!(await db("tasks").where({ id }).first("id"))) throw new NotFoundError(`task ${id} not found`, { taskId: id });
      return false;
    });
  }

  async release(id: number, owner: string): Promise<void> {
    validateId("task id", id);
    await this.ctx.read((db) => db("tasks").where({ id, owner }).update({ owner: null, lease_until: null }));
  }
}
