/**
 * Admin API: tasks (publish, start, stop, restart, undeploy, rollback),
 * created here and run by the TaskRunner; WatchTask follows one until it
 * ends. Creating one needs operator on every application it touches.
 */
import { FailedPreconditionError, InvalidArgumentError, PermissionDeniedError, type DeepPartial, type ServerContext } from "sgridnext";
import type { CreateTaskRequest, DecideCanaryRequest, ListTasksReply, ListTasksRequest, TaskInfo, TaskRef } from "sgridnext/gen/sgrid/registry/v1/admin";
import type { AuthUser } from "../../server/context";
import type { TaskRecord, Topic } from "../../store/records";
import { canaryOf } from "../canary-plan";
import { taskToMsg } from "../mapping";
import { checkNotBusy, prepareRollback, prepareTask, type PreparedTask } from "../task-factory";
import { ADMIN_API_DEFAULTS, type AdminApiContext } from "./context";

const FINAL_TASK = new Set(["success", "failed", "partial"]);

export class TasksApi {
  constructor(private readonly c: AdminApiContext) {}

  private async startTask(user: AuthUser, prepared: PreparedTask, message: string): Promise<TaskRecord> {
    this.c.requireApps(user, "operator", prepared.instances.map((i) => i.application));
    await checkNotBusy(this.c.store, prepared.items.map((i) => i.instanceId));
    const task = await this.c.store.transaction(async (tx) => {
      const t = await tx.tasks.create({ kind: prepared.kind, params: prepared.params, createdBy: user.name, items: prepared.items });
      const servers = [...new Set(prepared.instances.map((i) => `${i.application}.${i.server}`))];
      await tx.events.append({
        actor: user.name, kind: "task.create", target: servers.length === 1 ? servers[0]! : `task:${t.id}`,
        message: `${prepared.kind} task ${t.id} created: ${message}`,
        data: { taskId: t.id, kind: prepared.kind, instanceIds: prepared.items.map((i) => i.instanceId), version: prepared.params.version ?? 0 },
      });
      return t;
    });
    this.c.changed();
    this.c.runner?.kick();
    return task;
  }

  async createTask(request: CreateTaskRequest, call: ServerContext): Promise<DeepPartial<TaskInfo>> {
    const user = await this.c.user(call);
    // Rights first on what the ids name, before any detail of the request is judged.
    const apps: string[] = [];
    for (const id of request.instanceIds) apps.push((await this.c.store.instances.get(id)).application);
    this.c.requireApps(user, "operator", apps);
    const prepared = await prepareTask(this.c.store, {
      kind: request.kind, instanceIds: request.instanceIds, version: request.version, batchSize: request.batchSize,
      stopOnFailure: request.stopOnFailure, batchTimeoutS: request.batchTimeoutS, comment: request.comment, canary: request.canary,
    });
    const canary = canaryOf({ params: prepared.params } as TaskRecord);
    const what = `${prepared.items.length} instance(s)${request.version ? `, version ${request.version}` : ""}, batch size ${request.batchSize || "all"}${request.stopOnFailure ? ", stop on failure" : ""}${canary ? `, canary on instance(s) ${canary.canaryIds.join(", ")} (${(100 * canary.share).toFixed(1)} % of calls, bake ${canary.settings.bakeS} s${canary.settings.hold ? ", held for a person" : ""})` : ""}`;
    return taskToMsg(await this.startTask(user, prepared, what));
  }

  async getTask(request: TaskRef, call: ServerContext): Promise<DeepPartial<TaskInfo>> {
    const user = await this.c.user(call);
    const task = await this.c.store.tasks.get(request.id);
    if (!this.c.canViewTask(user, task)) throw new PermissionDeniedError(`user "${user.name}" may not see task ${task.id}`, { user: user.name });
    return taskToMsg(task);
  }

  async *watchTask(request: TaskRef, call: ServerContext): AsyncIterable<DeepPartial<TaskInfo>> {
    const user = await this.c.user(call);
    let task = await this.c.store.tasks.get(request.id);
    if (!this.c.canViewTask(user, task)) throw new PermissionDeniedError(`user "${user.name}" may not see task ${task.id}`, { user: user.name });
    const stamp = (t: TaskRecord) => JSON.stringify([t.status, t.updatedAt, t.items.map((i) => [i.status, i.updatedAt])]);
    let last = stamp(task);
    yield taskToMsg(task);
    const signal = AbortSignal.any([call.signal, this.c.closing]);
    while (!FINAL_TASK.has(task.status) && !signal.aborted) {
      await this.waitForTopic("tasks", signal, ADMIN_API_DEFAULTS.watchPollMs);
      if (signal.aborted) return;
      task = await this.c.store.tasks.get(request.id);
      const now = stamp(task);
      if (now !== last) {
        last = now;
        yield taskToMsg(task);
      }
    }
  }

  /** Resolves on the next change of `topic`, after `maxMs`, or when `signal` aborts. */
  private waitForTopic(topic: Topic, signal: AbortSignal, maxMs: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.c.ctx.changes.off("change", onChange);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const onChange = (topics: Set<Topic>) => {
        if (topics.has(topic)) done();
      };
      const timer = setTimeout(done, maxMs);
      this.c.ctx.changes.on("change", onChange);
      signal.addEventListener("abort", done, { once: true });
    });
  }

  async listTasks(request: ListTasksRequest, call: ServerContext): Promise<DeepPartial<ListTasksReply>> {
    const user = await this.c.user(call);
    if (request.application) this.c.requireApps(user, "viewer", [request.application]);
    const limit = Math.min(request.limit || ADMIN_API_DEFAULTS.taskPage, 500);
    // Filters apply to one page of the newest tasks (before before_id): a page may hold fewer than `limit`.
    const page = await this.c.store.tasks.list({ limit, ...(request.beforeId ? { beforeId: request.beforeId } : {}) });
    const tasks = page.filter((t) => this.c.canViewTask(user, t)
      && (!request.application || t.items.some((i) => i.application === request.application))
      && (!request.server || t.items.some((i) => i.server === request.server)));
    return { tasks: tasks.map(taskToMsg) };
  }

  async rollbackTask(request: TaskRef, call: ServerContext): Promise<DeepPartial<TaskInfo>> {
    const user = await this.c.user(call);
    const original = await this.c.store.tasks.get(request.id);
    this.c.requireApps(user, "operator", original.items.map((i) => i.application));
    const prepared = await prepareRollback(this.c.store, original);
    return taskToMsg(await this.startTask(user, prepared, `rollback of task ${original.id}, ${prepared.items.length} instance(s)`));
  }

  /**
   * A person's decision on a canary that is baking or held: promote it (the
   * other instances follow in batches) or roll it back. Recorded on the task
   * (params.canaryDecision, with who); the runner that holds the task acts
   * on it at its next check.
   */
  async decideCanary(request: DecideCanaryRequest, call: ServerContext): Promise<DeepPartial<TaskInfo>> {
    const user = await this.c.user(call);
    const task = await this.c.store.tasks.get(request.id);
    this.c.requireApps(user, "operator", task.items.map((i) => i.application));
    if (request.action !== "promote" && request.action !== "rollback") {
      throw new InvalidArgumentError(`invalid canary action ${JSON.stringify(request.action)}: expected promote or rollback`, { kind: "canary action", field: "action" });
    }
    const canary = canaryOf(task);
    if (!canary) throw new FailedPreconditionError(`task ${task.id} is not a canary publish: nothing to promote or roll back (sgrid rollback ${task.id} rolls a finished publish back)`, { taskId: task.id });
    if (FINAL_TASK.has(task.status) || (canary.state !== "baking" && canary.state !== "held")) {
      throw new FailedPreconditionError(`the canary of task ${task.id} is ${canary.state.replace("_", " ")} (task ${task.status}): there is nothing left to decide`, { taskId: task.id, state: canary.state });
    }
    const decided = await this.c.store.transaction(async (tx) => {
      const t = await tx.tasks.setParam(task.id, "canaryDecision", { action: request.action, by: user.name, at: Date.now() });
      await tx.events.append({
        actor: user.name, kind: "task.canary_decision", target: `${task.items[0]!.application}.${task.items[0]!.server}`,
        message: `${user.name} chose to ${request.action === "promote" ? "promote" : "roll back"} the canary of publish task ${task.id} (it was ${canary.state})`,
        data: { taskId: task.id, action: request.action, state: canary.state },
      });
      return t;
    });
    this.c.changed();
    return taskToMsg(decided);
  }
}
