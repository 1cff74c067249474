/**
 * Records the registry store reads and writes, one interface per entity, and
 * the inputs of its write methods.
 *
 * Conventions: ids are positive integers assigned by the database; times are
 * milliseconds since the epoch (number), taken from the clock of the registry
 * process that made the write; JSON columns come back as parsed values; a
 * value that is not set is `null`, never `undefined`.
 */
import type { EndpointInactiveReason } from "sgridnext";

// ---- enumerations -------------------------------------------------------------
export const SERVER_TYPES = ["node", "java", "binary"] as const;
export type ServerType = (typeof SERVER_TYPES)[number];

export const DESIRED_STATES = ["active", "inactive"] as const;
export type DesiredState = (typeof DESIRED_STATES)[number];

export const OBSERVED_STATES = ["activating", "active", "deactivating", "inactive", "failed"] as const;
export type ObservedState = (typeof OBSERVED_STATES)[number];

export type AdapterProtocol = "grpc" | "sgrid";

export const CONFIG_LEVELS = ["application", "server", "instance"] as const;
export type ConfigLevel = (typeof CONFIG_LEVELS)[number];

export const TASK_KINDS = ["publish", "start", "stop", "restart", "undeploy"] as const;
export type TaskKind = (typeof TASK_KINDS)[number];

export const TASK_STATUSES = ["pending", "running", "success", "failed", "partial"] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

export const TASK_ITEM_STATUSES = ["NOT_START", "RUNNING", "SUCCESS", "FAILED"] as const;
export type TaskItemStatus = (typeof TASK_ITEM_STATUSES)[number];

export const ROLES = ["admin", "operator", "viewer"] as const;
export type Role = (typeof ROLES)[number];

/**
 * Change topics. Every committed write bumps the counter of each topic it
 * touched; see RevisionRepo.
 */
export const TOPICS = ["nodes", "servers", "instances", "observed", "patches", "configs", "tasks", "users", "events"] as const;
export type Topic = (typeof TOPICS)[number];

// ---- value types ------------------------------------------------------------------
/** One listening endpoint of an instance: the short Obj name and where it listens. */
export interface Adapter {
  obj: string;
  host: string;
  port: number;
  protocol: AdapterProtocol;
  /** Load-balancing weight, 0..10000; 100 when not given. */
  weight: number;
}

/** Adapter as written by callers: protocol and weight may be left out. */
export type AdapterInput = Omit<Adapter, "protocol" | "weight"> & { protocol?: AdapterProtocol; weight?: number };

/** cgroup limits of an instance; a missing key means unlimited. */
export interface ResourceLimits {
  memoryBytes?: number;
  cpuCores?: number;
  pids?: number;
}

/**
 * How an instance's process is run, beyond what the package's manifest says
 * (LaunchOptions of types.proto). A missing key means the agent's default.
 */
export interface LaunchOptions {
  /** Program arguments after the entry. */
  args?: string[];
  /** JVM options before `-jar` (java servers). */
  jvmOptions?: string[];
  /** Node options before the entry (node servers). */
  nodeOptions?: string[];
  /** Entry override, a relative path inside the release. */
  entry?: string;
  /** Run as this user (name). */
  runAsUser?: string;
  /** Stop signal, e.g. `SIGTERM` (the agent's default). */
  stopSignal?: string;
  /** Grace period after the stop signal before SIGKILL, ms. */
  stopGraceMs?: number;
  /** Keepalive timeout for servants built on the framework, ms; 0 = not expected. */
  keepaliveTimeoutMs?: number;
}

/** Free-form JSON object (host info, health check, defaults, task params, event data). */
export type JsonObject = Record<string, unknown>;

// ---- records ------------------------------------------------------------------------
export interface NodeRecord {
  id: number;
  name: string;
  address: string;
  agentVersion: string;
  /** Identity of the agent that last opened the node's session ("" for agents older than it). */
  agentId: string;
  hostInfo: JsonObject;
  /** Tags the agent sent in its last hello (`--tag`). */
  agentTags: Record<string, string>;
  /** Tags people set: a value overrides the agent's tag of that key, null hides it. */
  adminTags: Record<string, string | null>;
  /** The node's tags: the agent's, with people's on top (what placement queries match). */
  tags: Record<string, string>;
  lastHeartbeatAt: number | null;
  online: boolean;
  createdAt: number;
  updatedAt: number;
}

export interface ServerRecord {
  id: number;
  application: string;
  name: string;
  /** `App.Server`. */
  fullName: string;
  type: ServerType;
  /** Patch used for new instances when none is given. */
  defaultPatchId: number | null;
  /** Other defaults for new instances (env, limits, health check...), shape owned by the caller. */
  defaults: JsonObject;
  createdAt: number;
  updatedAt: number;
}

export interface InstanceRecord {
  id: number;
  serverId: number;
  nodeId: number;
  application: string;
  server: string;
  node: string;
  adapters: Adapter[];
  env: Record<string, string>;
  limits: ResourceLimits;
  healthCheck: JsonObject | null;
  /** Launch options; `{}` when none were given. */
  launch: LaunchOptions;
  desiredState: DesiredState;
  desiredPatchId: number | null;
  observedState: ObservedState;
  pid: number | null;
  /** Patch the agent reports running, if any. */
  observedPatchId: number | null;
  restarts: number;
  lastExitReason: string | null;
  /** Taken out of load balancing (publish in progress) while still running. */
  drained: boolean;
  /**
   * Set on a surge instance: the id of the instance it stands in for while
   * that one switches (a publish, restart or rollback that would otherwise
   * stop the last serving endpoint of an Obj; registry/admin/surge.ts). Null
   * for every instance placed by people.
   */
  surgeOf: number | null;
  /** When the agent last reported this instance. */
  observedAt: number | null;
  createdAt: number;
  updatedAt: number;
}

/** One adapter of one instance, as FindObject answers it. */
export interface ObjEndpoint {
  /** Full `App.Server.Obj`. */
  obj: string;
  instanceId: number;
  node: string;
  host: string;
  port: number;
  protocol: AdapterProtocol;
  weight: number;
  /** desired active AND observed active AND node online AND not drained. */
  active: boolean;
  /** Why not active ("" when active): framework/contract/endpoints.ts. */
  inactiveReason: EndpointInactiveReason | "";
  desiredState: DesiredState;
  observedState: ObservedState;
  nodeOnline: boolean;
  drained: boolean;
}

export interface PatchRecord {
  id: number;
  serverId: number;
  application: string;
  server: string;
  /** 1, 2, 3... per server, in upload order; never reused, even after a delete. */
  version: number;
  sha256: string;
  size: number;
  comment: string;
  uploader: string;
  storageKey: string;
  createdAt: number;
  /** The package's own version (its manifest's `version`), "" when it has none. */
  packageVersion: string;
}

/** Where a config file lives. The scope key is derived from it (see scopeKey). */
export type ConfigScope =
  | { level: "application"; application: string }
  | { level: "server"; application: string; server: string }
  | { level: "instance"; application: string; server: string; node: string };

/** A config file at one level, with its current (latest) version number. */
export interface ConfigFileRecord {
  id: number;
  level: ConfigLevel;
  /** `App`, `App.Server` or `App.Server@node`. */
  scopeKey: string;
  fileName: string;
  currentVersion: number;
  updatedAt: number;
}

/** One version of a config file; versions count 1, 2, 3... per file. */
export interface ConfigVersionRecord {
  fileId: number;
  level: ConfigLevel;
  scopeKey: string;
  fileName: string;
  version: number;
  content: string;
  author: string;
  comment: string;
  /** Set when this version was made by rolling back to an older one. */
  rolledBackFrom: number | null;
  createdAt: number;
}

export interface TaskItemRecord {
  id: number;
  taskId: number;
  /** The instance; kept as a number after the instance is removed (undeploy). */
  instanceId: number;
  application: string;
  server: string;
  node: string;
  batch: number;
  status: TaskItemStatus;
  reason: string | null;
  startedAt: number | null;
  finishedAt: number | null;
  updatedAt: number;
}

export interface TaskRecord {
  id: number;
  kind: TaskKind;
  params: JsonObject;
  status: TaskStatus;
  createdBy: string;
  reason: string | null;
  /** Registry process currently running the task, with its lease (see TaskRepo.claim). */
  owner: string | null;
  leaseUntil: number | null;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  updatedAt: number;
  items: TaskItemRecord[];
}

export interface RoleGrant {
  /** Application name, or `*` for every application. */
  application: string;
  role: Role;
}

export interface UserRecord {
  id: number;
  name: string;
  /** Opaque hash string (scrypt/argon2 encoding chosen by the caller); never logged. */
  passwordHash: string;
  roles: RoleGrant[];
  createdAt: number;
  updatedAt: number;
}

/** A login session (Admin API token). The token itself is never stored, only its sha256. */
export interface LoginSessionRecord {
  /** sha256 hex of the token. */
  tokenHash: string;
  user: string;
  createdAt: number;
  expiresAt: number;
}

export interface EventRecord {
  id: number;
  time: number;
  /** Who: a user name, `node:<name>`, `registry`... */
  actor: string;
  /** What, dotted: `server.create`, `instance.crash`, `instance.oom`, `node.offline`... */
  kind: string;
  /** On what: `Demo.Hello`, `Demo.Hello@node1`, `node1`... */
  target: string;
  message: string;
  data: JsonObject;
}

/** Where a relayed admin command is: queued, taken by the registry holding the node's session, answered. */
export const COMMAND_STATUSES = ["pending", "taken", "done"] as const;
export type CommandStatus = (typeof COMMAND_STATUSES)[number];

/** An admin command relayed between registry processes through the database (see CommandRepo). */
export interface CommandRecord {
  id: number;
  instanceId: number;
  node: string;
  command: string;
  args: string;
  timeoutMs: number;
  /** Registry process that sent it. */
  sender: string;
  /** Registry process that took it to the node's session. */
  owner: string | null;
  status: CommandStatus;
  /** Set once done. */
  ok: boolean | null;
  output: string | null;
  error: string | null;
  /** Error code of a failed delivery or command (UNAVAILABLE, DEADLINE_EXCEEDED, COMMAND_FAILED...). */
  errorCode: string | null;
  createdAt: number;
  expiresAt: number;
  doneAt: number | null;
}

/** A placed server's desired placement: a query over node tags and facts, and how many instances to keep. */
export interface PlacementRecord {
  id: number;
  serverId: number;
  application: string;
  server: string;
  query: string;
  count: number;
  template: PlacementTemplate;
  /** The reconciler's last outcome; null before its first run. */
  status: PlacementStatus | null;
  createdBy: string;
  createdAt: number;
  updatedAt: number;
}

/** What each instance a placement creates starts from (ports 0 are assigned per node). */
export interface PlacementTemplate {
  adapters: AdapterInput[];
  env: Record<string, string>;
  limits: ResourceLimits;
  healthCheck: JsonObject | null;
  launch: LaunchOptions;
  /** Patch version; 0 = the server's default at the time an instance is made. */
  version: number;
  start: boolean;
}

export interface PlacementStatus {
  /** Instances the placement holds on matching nodes that are not lost. */
  placed: number;
  count: number;
  /** Names of the nodes the query matches (online or not). */
  matching: string[];
  /** Why instances are missing, one line each (empty when placed === count). */
  reasons: string[];
  /** "placed", "short" (some missing), "no_match" (the query matches no node). */
  state: "placed" | "short" | "no_match";
  at: number;
}
