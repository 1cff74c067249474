/**
 * Row <-> record mapping and the lookups several repositories share. All
 * lookups take the handle to run on, so that they join the caller's
 * transaction (on SQLite, a query on the pool from inside a transaction
 * would wait forever for the one connection).
 */
import { NotFoundError } from "sgridnext";
import type {
  Adapter, ConfigFileRecord, ConfigLevel, ConfigVersionRecord, DesiredState, EventRecord, InstanceRecord, JsonObject, LaunchOptions,
  NodeRecord, ObservedState, PatchRecord, ResourceLimits, ServerRecord, ServerType, TaskItemRecord, TaskItemStatus,
  TaskKind, TaskRecord, TaskStatus,
} from "../records";
import { bool, type Db, fromJson, num, numOrNull, strOrNull } from "./context";

// ---- mappers ----------------------------------------------------------------------------
/** The agent's tags, people's, and the node's tags: people's values win per key, null hides the agent's. */
function nodeTags(r: any): Pick<NodeRecord, "agentTags" | "adminTags" | "tags"> {
  const agentTags = fromJson<Record<string, string>>(r.agent_tags, {});
  const adminTags = fromJson<Record<string, string | null>>(r.admin_tags, {});
  const tags: Record<string, string> = { ...agentTags };
  for (const [k, v] of Object.entries(adminTags)) {
    if (v === null) delete tags[k];
    else tags[k] = v;
  }
  return { agentTags, adminTags, tags };
}

export function toNode(r: any): NodeRecord {
  return {
    id: num(r.id),
    name: r.name,
    address: r.address,
    agentVersion: r.agent_version,
    agentId: r.agent_id ?? "",
    hostInfo: fromJson<JsonObject>(r.host_info, {}),
    ...nodeTags(r),
    lastHeartbeatAt: numOrNull(r.last_heartbeat_at),
    online: bool(r.online),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}

export function toServer(r: any): ServerRecord {
  return {
    id: num(r.id),
    application: r.application,
    name: r.name,
    fullName: `${r.application}.${r.name}`,
    type: r.type as ServerType,
    defaultPatchId: numOrNull(r.default_patch_id),
    defaults: fromJson<JsonObject>(r.defaults, {}),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}

/** Instance rows come from {@link instanceQuery}, joined with their server and node. */
export function toInstance(r: any): InstanceRecord {
  return {
    id: num(r.id),
    serverId: num(r.server_id),
    nodeId: num(r.node_id),
    application: r.application,
    server: r.server_name,
    node: r.node_name,
    adapters: fromJson<Adapter[]>(r.adapters, []),
    env: fromJson<Record<string, string>>(r.env, {}),
    limits: fromJson<ResourceLimits>(r.limits, {}),
    healthCheck: fromJson<JsonObject | null>(r.health_check, null),
    launch: fromJson<LaunchOptions>(r.launch, {}),
    desiredState: r.desired_state as DesiredState,
    desiredPatchId: numOrNull(r.desired_patch_id),
    observedState: r.observed_state as ObservedState,
    pid: numOrNull(r.pid),
    observedPatchId: numOrNull(r.observed_patch_id),
    restarts: num(r.restarts),
    lastExitReason: strOrNull(r.last_exit_reason),
    drained: bool(r.drained),
    surgeOf: numOrNull(r.surge_of),
    observedAt: numOrNull(r.observed_at),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}

/** Patch rows come from {@link patchQuery}, joined with their server. */
export function toPatch(r: any): PatchRecord {
  return {
    id: num(r.id),
    serverId: num(r.server_id),
    application: r.application,
    server: r.server_name,
    version: num(r.version),
    sha256: r.sha256,
    size: num(r.size),
    comment: r.comment,
    uploader: r.uploader,
    storageKey: r.storage_key,
    createdAt: num(r.created_at),
    packageVersion: r.package_version ?? "",
  };
}

export function toConfigFile(r: any): ConfigFileRecord {
  return {
    id: num(r.id),
    level: r.level as ConfigLevel,
    scopeKey: r.scope_key,
    fileName: r.file_name,
    currentVersion: num(r.current_version),
    updatedAt: num(r.updated_at),
  };
}

/** Version rows come joined with their file (level, scope_key, file_name). */
export function toConfigVersion(r: any): ConfigVersionRecord {
  return {
    fileId: num(r.file_id),
    level: r.level as ConfigLevel,
    scopeKey: r.scope_key,
    fileName: r.file_name,
    version: num(r.version),
    content: r.content,
    author: r.author,
    comment: r.comment,
    rolledBackFrom: numOrNull(r.rolled_back_from),
    createdAt: num(r.created_at),
  };
}

export function toTaskItem(r: any): TaskItemRecord {
  return {
    id: num(r.id),
    taskId: num(r.task_id),
    instanceId: num(r.instance_id),
    application: r.application,
    server: r.server,
    node: r.node,
    batch: num(r.batch),
    status: r.status as TaskItemStatus,
    reason: strOrNull(r.reason),
    startedAt: numOrNull(r.started_at),
    finishedAt: numOrNull(r.finished_at),
    updatedAt: num(r.updated_at),
  };
}

export function toTask(r: any, items: TaskItemRecord[]): TaskRecord {
  return {
    id: num(r.id),
    kind: r.kind as TaskKind,
    params: fromJson<JsonObject>(r.params, {}),
    status: r.status as TaskStatus,
    createdBy: r.created_by,
    reason: strOrNull(r.reason),
    owner: strOrNull(r.owner),
    leaseUntil: numOrNull(r.lease_until),
    createdAt: num(r.created_at),
    startedAt: numOrNull(r.started_at),
    finishedAt: numOrNull(r.finished_at),
    updatedAt: num(r.updated_at),
    items,
  };
}

export function toEvent(r: any): EventRecord {
  return {
    id: num(r.id),
    time: num(r.time),
    actor: r.actor,
    kind: r.kind,
    target: r.target,
    message: r.message,
    data: fromJson<JsonObject>(r.data, {}),
  };
}

// ---- joined queries ------------------------------------------------------------------------
export function instanceQuery(db: Db) {
  return db("instances as i")
    .join("servers as s", "s.id", "i.server_id")
    .join("nodes as n", "n.id", "i.node_id")
    .select("i.*", "s.application as application", "s.name as server_name", "n.name as node_name", "n.online as node_online");
}

export function patchQuery(db: Db) {
  return db("patches as p").join("servers as s", "s.id", "p.server_id").select("p.*", "s.application as application", "s.name as server_name");
}

// ---- lookups ---------------------------------------------------------------------------------
export async function findServerRow(db: Db, application: string, name: string): Promise<any | undefined> {
  return db("servers").where({ application, name }).first();
}

export async function requireServerRow(db: Db, application: string, name: string): Promise<any> {
  const row = await findServerRow(db, application, name);
  if (!row) throw new NotFoundError(`server "${application}.${name}" not found`, { application, server: name });
  return row;
}

export async function requireNodeRow(db: Db, name: string): Promise<any> {
  const row = await db("nodes").where({ name }).first();
  if (!row) throw new NotFoundError(`node "${name}" not found`, { node: name });
  return row;
}

export async function requireInstance(db: Db, id: number): Promise<InstanceRecord> {
  const row = await instanceQuery(db).where("i.id", id).first();
  if (!row) throw new NotFoundError(`instance ${id} not found`, { instanceId: id });
  return toInstance(row);
}

export async function requirePatch(db: Db, id: number): Promise<PatchRecord> {
  const row = await patchQuery(db).where("p.id", id).first();
  if (!row) throw new NotFoundError(`patch ${id} not found`, { patchId: id });
  return toPatch(row);
}

/** Checks that patch `id` exists and belongs to server `serverId`; names both when not. */
export async function requirePatchOfServer(db: Db, id: number, serverId: number, serverName: string): Promise<PatchRecord> {
  const patch = await requirePatch(db, id);
  if (patch.serverId !== serverId) {
    throw new NotFoundError(`patch ${id} is not a patch of server "${serverName}" (it belongs to "${patch.application}.${patch.server}")`, { patchId: id, server: serverName });
  }
  return patch;
}
