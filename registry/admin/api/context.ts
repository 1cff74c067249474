/**
 * What every part of the Admin API shares: the registry's context, who the
 * caller is and what they may do, the event log, and the message helpers
 * that need the store (patch versions, server types).
 */
import { PermissionDeniedError, type DeepPartial, type ServerContext } from "sgridnext";
import type { InstanceInfo } from "sgridnext/gen/sgrid/registry/v1/types";
import type { AuthUser, RegistryContext } from "../../server/context";
import type { RegistryStore } from "../../store";
import type { InstanceRecord, Role, TaskRecord } from "../../store/records";
import { hasRole } from "../auth";
import { instanceToMsg, type VersionLookup } from "../mapping";
import { DatabaseUnavailableError } from "../../errors";
import { FleetMemory } from "./fleet-memory";
import { PlacementReconciler } from "../placement-reconciler";
import type { TaskRunner } from "../task-runner";

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

/**
 * Patch versions of servers, loaded once per request; what is loaded is also
 * remembered in `seen` (a patch id's version never changes), which answers
 * while the database is unavailable (`offline`: nothing is loaded).
 */
export class Versions {
  private readonly byId = new Map<number, number>();
  private readonly loaded = new Set<string>();
  constructor(private readonly store: RegistryStore, private readonly seen: Map<number, number>, private readonly offline = false) {}

  async load(application: string, server: string): Promise<void> {
    const key = `${application}.${server}`;
    if (this.offline || this.loaded.has(key)) return;
    this.loaded.add(key);
    for (const p of await this.store.patches.list(application, server).catch(() => [])) {
      this.byId.set(p.id, p.version);
      this.seen.set(p.id, p.version);
    }
  }

  readonly lookup: VersionLookup = (id) => (id === null ? 0 : this.byId.get(id) ?? this.seen.get(id) ?? 0);
}

export class AdminApiContext {
  private readonly types = new Map<string, string>();
  /** Aborted by drain(): ends WatchTask streams at shutdown. */
  private readonly closingController = new AbortController();

  /** Degraded mode's memory (./fleet-memory.ts). */
  readonly memory: FleetMemory;
  /** Reconciles a placement at once after a deploy (a reconciler that is not started when the part gave none). */
  readonly placements: PlacementReconciler;

  constructor(readonly ctx: RegistryContext, readonly runner?: TaskRunner, placements?: PlacementReconciler) {
    this.memory = new FleetMemory({ store: ctx.store, changes: ctx.changes, log: ctx.log });
    this.placements = placements ?? new PlacementReconciler(ctx, ctx.settings.placementGraceMs !== undefined ? { graceMs: ctx.settings.placementGraceMs } : {});
  }

  get store(): RegistryStore {
    return this.ctx.store;
  }

  /** Aborted once the API drains (shutdown). */
  get closing(): AbortSignal {
    return this.closingController.signal;
  }

  drain(): void {
    this.closingController.abort();
  }

  /** The logged-in caller, with `need` checked. */
  user(call: ServerContext, need?: { role: Role; application?: string }): Promise<AuthUser> {
    return this.ctx.auth.requireUser(call, need);
  }

  /** Throws PermissionDeniedError unless `user` has `role` on every one of `applications`. */
  requireApps(user: AuthUser, role: Role, applications: Iterable<string>): void {
    for (const app of new Set(applications)) {
      if (!hasRole(user, role, app)) {
        throw new PermissionDeniedError(`user "${user.name}" needs role ${role} on application "${app}"`, { user: user.name, role, application: app });
      }
    }
  }

  canViewTask(user: AuthUser, task: TaskRecord): boolean {
    return task.items.length === 0 ? hasRole(user, "viewer") : task.items.every((i) => hasRole(user, "viewer", i.application));
  }

  async event(actor: string, kind: string, target: string, message: string, data?: Record<string, unknown>): Promise<void> {
    await this.store.events.append({ actor, kind, target, message, data });
  }

  /** Tells watchers (desired-state pushes, endpoint watches) that something changed. */
  changed(): void {
    this.ctx.changes.kick();
  }

  /** Patch versions for this request; from memory only while the database is unavailable (`offline`). */
  versions(offline = false): Versions {
    return new Versions(this.store, this.memory.patchVersions, offline);
  }

  async serverType(application: string, server: string): Promise<string> {
    const key = `${application}.${server}`;
    let t = this.types.get(key);
    if (t === undefined) {
      const remembered = this.memory.unavailable ? this.memory.server(application, server) : undefined;
      if (remembered) return remembered.type;
      try {
        t = (await this.store.servers.find(application, server))?.type ?? "";
      } catch (err) {
        if (!(err instanceof DatabaseUnavailableError)) throw err;
        return this.memory.server(application, server)?.type ?? "";
      }
      // A server's type never changes through this API; cache it (bounded).
      if (this.types.size > 10_000) this.types.clear();
      if (t) this.types.set(key, t);
    }
    return t;
  }

  /** After a server is deleted (a new one of that name may have another type). */
  forgetServerType(fullName: string): void {
    this.types.delete(fullName);
  }

  /** `offline`: the records come from memory (degraded mode), so are the versions and types. */
  async instancesToMsg(list: InstanceRecord[], offline = false): Promise<Array<DeepPartial<InstanceInfo>>> {
    const versions = this.versions(offline);
    const out: Array<DeepPartial<InstanceInfo>> = [];
    for (const r of list) {
      await versions.load(r.application, r.server);
      out.push(instanceToMsg(r, await this.serverType(r.application, r.server), versions.lookup, this.ctx.sessions.usage(r.id)));
    }
    return out;
  }
}
