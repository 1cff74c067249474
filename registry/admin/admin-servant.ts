/**
 * The registry's Admin API (Sgrid.Registry.AdminObj): everything the admin
 * app needs, over gRPC.
 *
 * Access (checked here, on the server, per application):
 * - viewer reads its applications, operator changes them, admin does
 *   everything; a grant on `*` covers every application;
 * - users (list, create, grant, revoke, delete, another user's password) and
 *   nodes (delete) need admin on `*`; anyone logged in may change their own
 *   password, list nodes and ask who they are;
 * - Login is the only call without a token.
 *
 * Every call that changes something appends an event with the user as actor.
 * Events never hold secrets: no passwords, tokens, env values, config
 * contents or command arguments (names only).
 */
import {
  FailedPreconditionError, InvalidArgumentError, NotFoundError, PermissionDeniedError, UnimplementedError,
  type DeepPartial, type ServerContext,
} from "sgridnext";
import { AdminServant } from "sgridnext/gen/sgrid/registry/v1/admin.sgrid";
import type {
  CreateTaskRequest, CreateUserRequest, DeleteConfigRequest, DeployReply, DeployRequest,
  GrantRequest, ListEventsReply, ListEventsRequest, ListInstancesReply, ListInstancesRequest,
  ListNodesReply, ListScopeFilesRequest, ListServersReply, ListServersRequest, ListTasksReply,
  ListTasksRequest, ListUsersReply, LoginReply, LoginRequest, NodeRef, PushConfigReply,
  PushConfigRequest, PutConfigRequest, RevokeRequest, RollbackConfigRequest, SendCommandReply,
  SendCommandRequest, ServerRef, SetPasswordRequest, TaskInfo, TaskRef, UpdateInstanceRequest,
  UserInfo, UserRef,
} from "sgridnext/gen/sgrid/registry/v1/admin";
import type {
  ConfigVersion, GetVersionRequest, HistoryReply, HistoryRequest, ListFilesReply, ListFilesRequest, LoadConfigReply, LoadConfigRequest,
} from "sgridnext/gen/sgrid/registry/v1/config";
import { ConfigReads, instanceOf, scopeFromMessage } from "../services/config-reads";
import type { Empty, InstanceInfo } from "sgridnext/gen/sgrid/registry/v1/types";
import type { AuthUser, RegistryContext } from "../server/context";
import { scopeKey, type InstanceSpecUpdate, type RegistryStore } from "../store";
import type { ConfigScope, InstanceRecord, Role, TaskRecord, Topic, UserRecord } from "../store/records";
import { bearerToken, hasRole, parseRole, type RegistryAuthenticator } from "./auth";
import {
  adaptersFromMsg, configFileToMsg, configVersionToMsg, eventToMsg, grantsToMsg, healthFromMsg, instanceToMsg, launchFromMsg,
  limitsFromMsg, nodeToMsg, scopeFromMsg, serverToMsg, taskToMsg, userToMsg, type VersionLookup,
} from "./mapping";
import { hashPassword, tokenHash, validatePassword } from "./passwords";
import { assignPorts, deploy, nodeHost } from "./placement";
import { checkNotBusy, prepareRollback, prepareTask, type PreparedTask } from "./task-factory";
import type { TaskRunner } from "./task-runner";

export const ADMIN_API_DEFAULTS = Object.freeze({
  /** SendCommand / PushConfig timeout when the request gives none, ms. */
  commandTimeoutMs: 5_000,
  /** Longest command timeout a request may ask for, ms. */
  maxCommandTimeoutMs: 120_000,
  /** PushConfig: commands sent at once. */
  pushConcurrency: 16,
  /** ListTasks default page size (and most tasks scanned per page when filtering). */
  taskPage: 50,
  /** WatchTask: re-reads the task at least this often even without a change-feed event, ms. */
  watchPollMs: 5_000,
});

const UPDATE_MASK_FIELDS = ["adapters", "env", "limits", "health_check", "launch"] as const;
const FINAL_TASK = new Set(["success", "failed", "partial"]);

function hasLogin(auth: unknown): auth is RegistryAuthenticator {
  return typeof (auth as RegistryAuthenticator).login === "function" && typeof (auth as RegistryAuthenticator).logout === "function";
}

/** Application of an event target (`App`, `App.Server`, `App.Server@node`). */
function targetApplication(prefix: string): string {
  return prefix.split(/[.@]/)[0] ?? "";
}

/** Patch versions of servers, loaded once per request. */
class Versions {
  private readonly byId = new Map<number, number>();
  private readonly loaded = new Set<string>();
  constructor(private readonly store: RegistryStore) {}

  async load(application: string, server: string): Promise<void> {
    const key = `${application}.${server}`;
    if (this.loaded.has(key)) return;
    this.loaded.add(key);
    for (const p of await this.store.patches.list(application, server).catch(() => [])) this.byId.set(p.id, p.version);
  }

  readonly lookup: VersionLookup = (id) => (id === null ? 0 : this.byId.get(id) ?? 0);
}

export class RegistryAdminServant extends AdminServant {
  private readonly types = new Map<string, string>();
  /** Aborted by drain(): ends WatchTask streams at shutdown. */
  private readonly closing = new AbortController();

  constructor(private readonly ctx: RegistryContext, private readonly runner?: TaskRunner) {
    super();
  }

  /** Ends every WatchTask stream (they send nothing more); for shutdown. Idempotent. */
  drain(): void {
    this.closing.abort();
  }

  // ---- helpers -------------------------------------------------------------------------
  private get store(): RegistryStore {
    return this.ctx.store;
  }

  private user(call: ServerContext, need?: { role: Role; application?: string }): Promise<AuthUser> {
    return this.ctx.auth.requireUser(call, need);
  }

  private requireApps(user: AuthUser, role: Role, applications: Iterable<string>): void {
    for (const app of new Set(applications)) {
      if (!hasRole(user, role, app)) {
        throw new PermissionDeniedError(`user "${user.name}" needs role ${role} on application "${app}"`, { user: user.name, role, application: app });
      }
    }
  }

  private async event(actor: string, kind: string, target: string, message: string, data?: Record<string, unknown>): Promise<void> {
    await this.store.events.append({ actor, kind, target, message, data });
  }

  private async serverType(application: string, server: string): Promise<string> {
    const key = `${application}.${server}`;
    let t = this.types.get(key);
    if (t === undefined) {
      t = (await this.store.servers.find(application, server))?.type ?? "";
      // A server's type never changes through this API; cache it (bounded).
      if (this.types.size > 10_000) this.types.clear();
      if (t) this.types.set(key, t);
    }
    return t;
  }

  private async instancesToMsg(list: InstanceRecord[]): Promise<Array<DeepPartial<InstanceInfo>>> {
    const versions = new Versions(this.store);
    const out: Array<DeepPartial<InstanceInfo>> = [];
    for (const r of list) {
      await versions.load(r.application, r.server);
      out.push(instanceToMsg(r, await this.serverType(r.application, r.server), versions.lookup, this.ctx.sessions.usage(r.id)));
    }
    return out;
  }

  private canViewTask(user: AuthUser, task: TaskRecord): boolean {
    return task.items.length === 0 ? hasRole(user, "viewer") : task.items.every((i) => hasRole(user, "viewer", i.application));
  }

  private changed(): void {
    this.ctx.changes.kick();
  }

  // ---- login -----------------------------------------------------------------------------
  async login(request: LoginRequest, call: ServerContext): Promise<DeepPartial<LoginReply>> {
    const auth = this.ctx.auth;
    if (!hasLogin(auth)) throw new UnimplementedError("this registry has no login (its authenticator does not support it)");
    const address = typeof auth.clientAddress === "function" ? auth.clientAddress(call) : call.peer;
    const { token, expiresAt, user } = await auth.login(request.user, request.password, address);
    await this.event(user.name, "user.login", user.name, `user "${user.name}" logged in`, { peer: call.peer, address });
    return { token, user: user.name, roles: grantsToMsg(user.roles), expiresAt };
  }

  async logout(_request: Empty, call: ServerContext): Promise<DeepPartial<Empty>> {
    const user = await this.user(call);
    const auth = this.ctx.auth;
    if (!hasLogin(auth)) throw new UnimplementedError("this registry has no login (its authenticator does not support it)");
    await auth.logout(bearerToken(call)!);
    await this.event(user.name, "user.logout", user.name, `user "${user.name}" logged out`);
    return {};
  }

  async whoAmI(_request: Empty, call: ServerContext): Promise<DeepPartial<LoginReply>> {
    const user = await this.user(call);
    const session = await this.store.logins.find(tokenHash(bearerToken(call)!));
    return { token: "", user: user.name, roles: grantsToMsg(user.roles), expiresAt: session?.expiresAt ?? 0 };
  }

  // ---- users -------------------------------------------------------------------------------
  private forget(name: string): void {
    const auth = this.ctx.auth as Partial<RegistryAuthenticator>;
    auth.forget?.(name);
  }

  /** Refuses a change that would leave no admin on `*` (nobody could manage users any more). */
  private async keepOneAdmin(change: (u: UserRecord) => UserRecord | undefined, what: string): Promise<void> {
    const admins = (await this.store.users.list()).map(change).filter((u): u is UserRecord => u !== undefined && hasRole(u, "admin"));
    if (admins.length === 0) throw new FailedPreconditionError(`refused to ${what}: it would leave no user with role admin on *`);
  }

  async listUsers(_request: Empty, call: ServerContext): Promise<DeepPartial<ListUsersReply>> {
    await this.user(call, { role: "admin" });
    return { users: (await this.store.users.list()).map(userToMsg) };
  }

  async createUser(request: CreateUserRequest, call: ServerContext): Promise<DeepPartial<UserInfo>> {
    const actor = await this.user(call, { role: "admin" });
    const password = validatePassword(request.password);
    const grants = request.roles.map((g) => ({ application: g.application, role: parseRole(g.role) }));
    const hash = await hashPassword(password);
    const user = await this.store.transaction(async (tx) => {
      await tx.users.create({ name: request.name, passwordHash: hash });
      for (const g of grants) await tx.users.grant(request.name, g.application, g.role);
      await tx.events.append({
        actor: actor.name, kind: "user.create", target: request.name, message: `user "${request.name}" created`,
        data: { roles: grants.map((g) => `${g.role}@${g.application}`) },
      });
      return tx.users.get(request.name);
    });
    this.changed();
    return userToMsg(user);
  }

  async setPassword(request: SetPasswordRequest, call: ServerContext): Promise<DeepPartial<Empty>> {
    const actor = await this.user(call);
    if (request.name !== actor.name && !hasRole(actor, "admin")) {
      throw new PermissionDeniedError(`user "${actor.name}" needs role admin on * to set the password of "${request.name}"`, { user: actor.name });
    }
    const password = validatePassword(request.password);
    const hash = await hashPassword(password);
    await this.store.users.setPasswordHash(request.name, hash);
    // Every other session of that user ends; the caller's own stays when they changed their own password.
    const own = request.name === actor.name ? await this.store.logins.find(tokenHash(bearerToken(call)!)) : undefined;
    await this.store.logins.removeForUser(request.name);
    if (own) await this.store.logins.create({ tokenHash: own.tokenHash, user: own.user, expiresAt: own.expiresAt });
    this.forget(request.name);
    await this.event(actor.name, "user.password", request.name, `password of user "${request.name}" changed`);
    return {};
  }

  async grant(request: GrantRequest, call: ServerContext): Promise<DeepPartial<UserInfo>> {
    const actor = await this.user(call, { role: "admin" });
    if (!request.grant) throw new InvalidArgumentError("missing grant (application and role)", { kind: "grant" });
    const role = parseRole(request.grant.role);
    const app = request.grant.application;
    await this.store.users.get(request.name);
    if (app === "*" && role !== "admin") {
      await this.keepOneAdmin((u) => (u.name === request.name ? { ...u, roles: u.roles.map((g) => (g.application === "*" ? { ...g, role } : g)) } : u), `make "${request.name}" ${role} on *`);
    }
    await this.store.users.grant(request.name, app, role);
    this.forget(request.name);
    await this.event(actor.name, "user.grant", request.name, `user "${request.name}" granted ${role} on ${app}`, { application: app, role });
    this.changed();
    return userToMsg(await this.store.users.get(request.name));
  }

  async revoke(request: RevokeRequest, call: ServerContext): Promise<DeepPartial<UserInfo>> {
    const actor = await this.user(call, { role: "admin" });
    await this.store.users.get(request.name);
    if (request.application === "*") {
      await this.keepOneAdmin((u) => (u.name === request.name ? { ...u, roles: u.roles.filter((g) => g.application !== "*") } : u), `revoke the role of "${request.name}" on *`);
    }
    await this.store.users.revoke(request.name, request.application);
    this.forget(request.name);
    await this.event(actor.name, "user.revoke", request.name, `role of user "${request.name}" on ${request.application} revoked`, { application: request.application });
    this.changed();
    return userToMsg(await this.store.users.get(request.name));
  }

  async deleteUser(request: UserRef, call: ServerContext): Promise<DeepPartial<Empty>> {
    const actor = await this.user(call, { role: "admin" });
    await this.store.users.get(request.name);
    await this.keepOneAdmin((u) => (u.name === request.name ? undefined : u), `delete user "${request.name}"`);
    await this.store.users.remove(request.name);
    await this.store.logins.removeForUser(request.name);
    this.forget(request.name);
    await this.event(actor.name, "user.delete", request.name, `user "${request.name}" deleted`);
    this.changed();
    return {};
  }

  // ---- servers and instances ------------------------------------------------------------------
  async listServers(request: ListServersRequest, call: ServerContext): Promise<DeepPartial<ListServersReply>> {
    const user = await this.user(call);
    if (request.application) this.requireApps(user, "viewer", [request.application]);
    const servers = (await this.store.servers.list(request.application ? { application: request.application } : {}))
      .filter((s) => hasRole(user, "viewer", s.application));
    const counts = new Map<string, number>();
    for (const i of await this.store.instances.list(request.application ? { application: request.application } : {})) {
      const k = `${i.application}.${i.server}`;
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    const versions = new Versions(this.store);
    const out = [];
    for (const s of servers) {
      if (s.defaultPatchId !== null) await versions.load(s.application, s.name);
      out.push(serverToMsg(s, versions.lookup, counts.get(s.fullName) ?? 0));
    }
    const applications = (await this.store.servers.listApplications()).filter((a) => hasRole(user, "viewer", a));
    return { servers: out, applications };
  }

  async deploy(request: DeployRequest, call: ServerContext): Promise<DeepPartial<DeployReply>> {
    const user = await this.user(call, { role: "operator", application: request.application });
    const result = await deploy(this.store, {
      application: request.application, server: request.server, type: request.type, nodes: request.nodes,
      adapters: adaptersFromMsg(request.adapters), env: { ...request.env }, limits: limitsFromMsg(request.limits),
      healthCheck: healthFromMsg(request.healthCheck), launch: launchFromMsg(request.launch), version: request.version,
      start: request.start, actor: user.name,
    });
    this.changed();
    const versions = new Versions(this.store);
    await versions.load(request.application, request.server);
    return { server: serverToMsg(result.server, versions.lookup, (await this.store.instances.list({ application: request.application, server: request.server })).length), instances: await this.instancesToMsg(result.instances) };
  }

  async deleteServer(request: ServerRef, call: ServerContext): Promise<DeepPartial<Empty>> {
    const user = await this.user(call, { role: "operator", application: request.application });
    const full = `${request.application}.${request.server}`;
    const { orphanedStorageKeys } = await this.store.servers.remove(request.application, request.server);
    this.types.delete(full);
    for (const key of orphanedStorageKeys) {
      await this.ctx.storage.removeUnused(key, () => this.store.patches.storageKeyInUse(key))
        .catch((err) => this.ctx.log.warn({ err, key }, "removing the package of a deleted server failed"));
    }
    await this.event(user.name, "server.delete", full, `server ${full} deleted`, { packagesRemoved: orphanedStorageKeys.length });
    this.changed();
    return {};
  }

  async listInstances(request: ListInstancesRequest, call: ServerContext): Promise<DeepPartial<ListInstancesReply>> {
    const user = await this.user(call);
    if (request.application) this.requireApps(user, "viewer", [request.application]);
    const filter: { application?: string; server?: string; node?: string } = {};
    if (request.application) filter.application = request.application;
    if (request.server) filter.server = request.server;
    if (request.node) filter.node = request.node;
    const list = (await this.store.instances.list(filter)).filter((i) => hasRole(user, "viewer", i.application));
    return { instances: await this.instancesToMsg(list) };
  }

  async updateInstance(request: UpdateInstanceRequest, call: ServerContext): Promise<DeepPartial<InstanceInfo>> {
    const user = await this.user(call);
    const current = await this.store.instances.get(request.instanceId);
    this.requireApps(user, "operator", [current.application]);
    if (request.updateMask.length === 0) throw new InvalidArgumentError(`nothing to update: update_mask is empty (expected some of ${UPDATE_MASK_FIELDS.join(", ")})`, { kind: "update_mask" });
    const update: InstanceSpecUpdate = {};
    for (const field of new Set(request.updateMask)) {
      switch (field) {
        case "adapters": {
          const node = await this.store.nodes.get(current.node);
          const mine = new Set(current.adapters.map((a) => a.port));
          const taken = new Set((await this.store.instances.usedPorts(current.node)).filter((p) => !mine.has(p)));
          update.adapters = assignPorts(adaptersFromMsg(request.adapters), taken, nodeHost(node.address), current.node);
          break;
        }
        case "env": update.env = { ...request.env }; break;
        case "limits": update.limits = limitsFromMsg(request.limits); break;
        case "health_check": update.healthCheck = healthFromMsg(request.healthCheck); break;
        case "launch": update.launch = launchFromMsg(request.launch); break;
        default:
          throw new InvalidArgumentError(`invalid update_mask entry "${field}": expected some of ${UPDATE_MASK_FIELDS.join(", ")}`, { kind: "update_mask" });
      }
    }
    const updated = await this.store.instances.updateSpec(current.id, update);
    const target = `${current.application}.${current.server}@${current.node}`;
    await this.event(user.name, "instance.update", target, `instance ${current.id} updated: ${[...new Set(request.updateMask)].join(", ")}`, {
      instanceId: current.id, fields: [...new Set(request.updateMask)],
      ...(update.env ? { envNames: Object.keys(update.env) } : {}),
    });
    this.changed();
    return (await this.instancesToMsg([updated]))[0]!;
  }

  // ---- tasks ------------------------------------------------------------------------------------
  private async startTask(user: AuthUser, prepared: PreparedTask, message: string): Promise<TaskRecord> {
    this.requireApps(user, "operator", prepared.instances.map((i) => i.application));
    await checkNotBusy(this.store, prepared.items.map((i) => i.instanceId));
    const task = await this.store.transaction(async (tx) => {
      const t = await tx.tasks.create({ kind: prepared.kind, params: prepared.params, createdBy: user.name, items: prepared.items });
      const servers = [...new Set(prepared.instances.map((i) => `${i.application}.${i.server}`))];
      await tx.events.append({
        actor: user.name, kind: "task.create", target: servers.length === 1 ? servers[0]! : `task:${t.id}`,
        message: `${prepared.kind} task ${t.id} created: ${message}`,
        data: { taskId: t.id, kind: prepared.kind, instanceIds: prepared.items.map((i) => i.instanceId), version: prepared.params.version ?? 0 },
      });
      return t;
    });
    this.changed();
    this.runner?.kick();
    return task;
  }

  async createTask(request: CreateTaskRequest, call: ServerContext): Promise<DeepPartial<TaskInfo>> {
    const user = await this.user(call);
    // Rights first on what the ids name, before any detail of the request is judged.
    const apps: string[] = [];
    for (const id of request.instanceIds) apps.push((await this.store.instances.get(id)).application);
    this.requireApps(user, "operator", apps);
    const prepared = await prepareTask(this.store, {
      kind: request.kind, instanceIds: request.instanceIds, version: request.version, batchSize: request.batchSize,
      stopOnFailure: request.stopOnFailure, batchTimeoutS: request.batchTimeoutS,
    });
    const what = `${prepared.items.length} instance(s)${request.version ? `, version ${request.version}` : ""}, batch size ${request.batchSize || "all"}${request.stopOnFailure ? ", stop on failure" : ""}`;
    return taskToMsg(await this.startTask(user, prepared, what));
  }

  async getTask(request: TaskRef, call: ServerContext): Promise<DeepPartial<TaskInfo>> {
    const user = await this.user(call);
    const task = await this.store.tasks.get(request.id);
    if (!this.canViewTask(user, task)) throw new PermissionDeniedError(`user "${user.name}" may not see task ${task.id}`, { user: user.name });
    return taskToMsg(task);
  }

  async *watchTask(request: TaskRef, call: ServerContext): AsyncIterable<DeepPartial<TaskInfo>> {
    const user = await this.user(call);
    let task = await this.store.tasks.get(request.id);
    if (!this.canViewTask(user, task)) throw new PermissionDeniedError(`user "${user.name}" may not see task ${task.id}`, { user: user.name });
    const stamp = (t: TaskRecord) => JSON.stringify([t.status, t.updatedAt, t.items.map((i) => [i.status, i.updatedAt])]);
    let last = stamp(task);
    yield taskToMsg(task);
    const signal = AbortSignal.any([call.signal, this.closing.signal]);
    while (!FINAL_TASK.has(task.status) && !signal.aborted) {
      await this.waitForTopic("tasks", signal, ADMIN_API_DEFAULTS.watchPollMs);
      if (signal.aborted) return;
      task = await this.store.tasks.get(request.id);
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
        this.ctx.changes.off("change", onChange);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const onChange = (topics: Set<Topic>) => {
        if (topics.has(topic)) done();
      };
      const timer = setTimeout(done, maxMs);
      this.ctx.changes.on("change", onChange);
      signal.addEventListener("abort", done, { once: true });
    });
  }

  async listTasks(request: ListTasksRequest, call: ServerContext): Promise<DeepPartial<ListTasksReply>> {
    const user = await this.user(call);
    if (request.application) this.requireApps(user, "viewer", [request.application]);
    const limit = Math.min(request.limit || ADMIN_API_DEFAULTS.taskPage, 500);
    // Filters apply to one page of the newest tasks (before before_id): a page may hold fewer than `limit`.
    const page = await this.store.tasks.list({ limit, ...(request.beforeId ? { beforeId: request.beforeId } : {}) });
    const tasks = page.filter((t) => this.canViewTask(user, t)
      && (!request.application || t.items.some((i) => i.application === request.application))
      && (!request.server || t.items.some((i) => i.server === request.server)));
    return { tasks: tasks.map(taskToMsg) };
  }

  async rollbackTask(request: TaskRef, call: ServerContext): Promise<DeepPartial<TaskInfo>> {
    const user = await this.user(call);
    const original = await this.store.tasks.get(request.id);
    this.requireApps(user, "operator", original.items.map((i) => i.application));
    const prepared = await prepareRollback(this.store, original);
    return taskToMsg(await this.startTask(user, prepared, `rollback of task ${original.id}, ${prepared.items.length} instance(s)`));
  }

  // ---- nodes ---------------------------------------------------------------------------------------
  async listNodes(_request: Empty, call: ServerContext): Promise<DeepPartial<ListNodesReply>> {
    await this.user(call);
    const counts = new Map<string, number>();
    for (const i of await this.store.instances.list()) counts.set(i.node, (counts.get(i.node) ?? 0) + 1);
    return { nodes: (await this.store.nodes.list()).map((n) => nodeToMsg(n, counts.get(n.name) ?? 0, this.ctx.sessions.samples(n.name))) };
  }

  async deleteNode(request: NodeRef, call: ServerContext): Promise<DeepPartial<Empty>> {
    const user = await this.user(call, { role: "admin" });
    await this.store.nodes.remove(request.name);
    await this.event(user.name, "node.delete", request.name, `node "${request.name}" deleted`);
    this.changed();
    return {};
  }

  // ---- events ----------------------------------------------------------------------------------------
  async listEvents(request: ListEventsRequest, call: ServerContext): Promise<DeepPartial<ListEventsReply>> {
    const user = await this.user(call);
    if (!hasRole(user, "viewer")) {
      const app = targetApplication(request.targetPrefix);
      if (!request.targetPrefix || !hasRole(user, "viewer", app)) {
        throw new PermissionDeniedError(`user "${user.name}" may list only the events of their applications: give target_prefix "<App>." of one of them`, { user: user.name });
      }
    }
    const events = await this.store.events.list({
      ...(request.kind ? { kind: request.kind } : {}),
      ...(request.targetPrefix ? { targetPrefix: request.targetPrefix } : {}),
      ...(request.actor ? { actor: request.actor } : {}),
      ...(request.beforeId ? { beforeId: request.beforeId } : {}),
      ...(request.afterId ? { afterId: request.afterId } : {}),
      ...(request.limit ? { limit: request.limit } : {}),
    });
    return { events: events.map(eventToMsg) };
  }

  // ---- commands --------------------------------------------------------------------------------------
  private timeoutOf(ms: number): number {
    if (ms > ADMIN_API_DEFAULTS.maxCommandTimeoutMs) throw new InvalidArgumentError(`command timeout ${ms} ms is over the limit of ${ADMIN_API_DEFAULTS.maxCommandTimeoutMs} ms`, { kind: "timeout" });
    return ms || ADMIN_API_DEFAULTS.commandTimeoutMs;
  }

  async sendCommand(request: SendCommandRequest, call: ServerContext): Promise<DeepPartial<SendCommandReply>> {
    const user = await this.user(call);
    const inst = await this.store.instances.get(request.instanceId);
    this.requireApps(user, "operator", [inst.application]);
    if (!request.command || request.command.length > 128) throw new InvalidArgumentError("invalid command: expected 1 to 128 characters", { kind: "command" });
    const timeoutMs = this.timeoutOf(request.timeoutMs);
    const target = `${inst.application}.${inst.server}@${inst.node}`;
    // Arguments may carry secrets: the event names the command only.
    await this.event(user.name, "instance.command", target, `command "${request.command}" sent to instance ${inst.id}`, { instanceId: inst.id, command: request.command });
    const output = await this.ctx.sessions.sendCommand(inst.id, request.command, request.args, timeoutMs);
    return { output };
  }

  // ---- config writes -----------------------------------------------------------------------------------
  private async configScope(user: AuthUser, scope: ConfigScope, role: Role): Promise<void> {
    this.requireApps(user, role, [scope.application]);
  }

  async listConfigFiles(request: ListScopeFilesRequest, call: ServerContext): Promise<DeepPartial<ListFilesReply>> {
    const user = await this.user(call);
    const scope = scopeFromMsg(request.scope);
    await this.configScope(user, scope, "viewer");
    return { files: (await this.store.configs.listFiles(scope)).map(configFileToMsg) };
  }

  // The Config API's reads, for people: viewer on the file's application.
  private async readConfig(call: ServerContext, application: string): Promise<ConfigReads> {
    this.requireApps(await this.user(call), "viewer", [application]);
    return new ConfigReads(this.store);
  }

  async listInstanceConfigFiles(request: ListFilesRequest, call: ServerContext): Promise<DeepPartial<ListFilesReply>> {
    return (await this.readConfig(call, instanceOf(request.instance).application)).listFiles(request);
  }

  async loadConfig(request: LoadConfigRequest, call: ServerContext): Promise<DeepPartial<LoadConfigReply>> {
    return (await this.readConfig(call, instanceOf(request.instance).application)).load(request);
  }

  async configHistory(request: HistoryRequest, call: ServerContext): Promise<DeepPartial<HistoryReply>> {
    return (await this.readConfig(call, scopeFromMessage(request.scope).application)).history(request);
  }

  async getConfigVersion(request: GetVersionRequest, call: ServerContext): Promise<DeepPartial<ConfigVersion>> {
    return (await this.readConfig(call, scopeFromMessage(request.scope).application)).getVersion(request);
  }

  async putConfig(request: PutConfigRequest, call: ServerContext): Promise<DeepPartial<ConfigVersion>> {
    const user = await this.user(call);
    const scope = scopeFromMsg(request.scope);
    await this.configScope(user, scope, "operator");
    const v = await this.store.configs.put(scope, request.fileName, { content: request.content, author: user.name, comment: request.comment });
    // Content may hold secrets: the event has the name and version only.
    await this.event(user.name, "config.put", v.scopeKey, `config file "${v.fileName}" at ${v.level} ${v.scopeKey}: version ${v.version}`, { fileName: v.fileName, level: v.level, version: v.version });
    this.changed();
    return configVersionToMsg(v);
  }

  async rollbackConfig(request: RollbackConfigRequest, call: ServerContext): Promise<DeepPartial<ConfigVersion>> {
    const user = await this.user(call);
    const scope = scopeFromMsg(request.scope);
    await this.configScope(user, scope, "operator");
    const v = await this.store.configs.rollback(scope, request.fileName, request.version, { author: user.name, comment: request.comment });
    await this.event(user.name, "config.rollback", v.scopeKey, `config file "${v.fileName}" at ${v.level} ${v.scopeKey} rolled back to version ${request.version} (now version ${v.version})`, { fileName: v.fileName, level: v.level, version: v.version, from: request.version });
    this.changed();
    return configVersionToMsg(v);
  }

  async deleteConfig(request: DeleteConfigRequest, call: ServerContext): Promise<DeepPartial<Empty>> {
    const user = await this.user(call);
    const scope = scopeFromMsg(request.scope);
    await this.configScope(user, scope, "operator");
    await this.store.configs.remove(scope, request.fileName);
    await this.event(user.name, "config.delete", scopeKey(scope), `config file "${request.fileName}" at ${scope.level} ${scopeKey(scope)} deleted`, { fileName: request.fileName, level: scope.level });
    this.changed();
    return {};
  }

  async pushConfig(request: PushConfigRequest, call: ServerContext): Promise<DeepPartial<PushConfigReply>> {
    const user = await this.user(call);
    if (!request.fileName) throw new InvalidArgumentError("missing file_name to push", { kind: "file name" });
    let targets: InstanceRecord[];
    if (request.instanceIds.length > 0) {
      targets = [];
      for (const id of request.instanceIds) targets.push(await this.store.instances.get(id));
      this.requireApps(user, "operator", targets.map((i) => i.application));
      for (const i of targets) {
        const files = await this.store.configs.listForInstance(i.application, i.server, i.node);
        if (!files.some((f) => f.fileName === request.fileName)) {
          throw new NotFoundError(`config file "${request.fileName}" is not visible to instance ${i.id} (${i.application}.${i.server}@${i.node})`, { instanceId: i.id, fileName: request.fileName });
        }
      }
    } else {
      const all = (await this.store.instances.list()).filter((i) => hasRole(user, "operator", i.application));
      targets = [];
      for (const i of all) {
        const files = await this.store.configs.listForInstance(i.application, i.server, i.node);
        if (files.some((f) => f.fileName === request.fileName)) targets.push(i);
      }
      if (targets.length === 0) throw new NotFoundError(`no instance you operate sees config file "${request.fileName}"`, { fileName: request.fileName });
    }
    const results = new Array<{ instanceId: number; ok: boolean; message: string }>(targets.length);
    let next = 0;
    const worker = async () => {
      while (next < targets.length) {
        const idx = next++;
        const inst = targets[idx]!;
        try {
          const out = await this.ctx.sessions.sendCommand(inst.id, "sgrid.loadconfig", request.fileName, ADMIN_API_DEFAULTS.commandTimeoutMs);
          results[idx] = { instanceId: inst.id, ok: true, message: out };
        } catch (err) {
          results[idx] = { instanceId: inst.id, ok: false, message: (err as Error).message };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(ADMIN_API_DEFAULTS.pushConcurrency, targets.length) }, worker));
    const ok = results.filter((r) => r.ok).length;
    const apps = [...new Set(targets.map((i) => i.application))];
    await this.event(user.name, "config.push", apps.length === 1 ? apps[0]! : "*", `config file "${request.fileName}" pushed to ${targets.length} instance(s): ${ok} ok`, {
      fileName: request.fileName, instanceIds: targets.map((i) => i.id), ok,
    });
    return { results };
  }
}
