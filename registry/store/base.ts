/**
 * The registry's storage interface: what the registry services may ask of the
 * database, grouped by entity. It knows nothing about gRPC.
 *
 * Error contract, common to every method:
 * - a bad name or value: InvalidArgumentError naming the thing and the value;
 * - an unknown node, server, instance, patch, config file, task or user:
 *   NotFoundError naming it;
 * - a duplicate: AlreadyExistsError naming it;
 * - a removal that would leave dangling references: FailedPreconditionError;
 * - the database cannot be reached: DatabaseUnavailableError (UNAVAILABLE,
 *   retryable), naming the database without its password.
 *
 * Every committed write bumps the revision counter of each topic it touched
 * (see {@link RevisionRepo}), so that several registry processes sharing one
 * database notice each other's writes by polling `revisions.get()`.
 */
import type { CallStatsRepo } from "./knex/call-stats";
import type { PackageBlobRepo } from "./knex/package-blobs";
import type {
  AdapterInput, CommandRecord, ConfigFileRecord, ConfigScope, ConfigVersionRecord, DesiredState, EventRecord, InstanceRecord, JsonObject,
  LaunchOptions, LoginSessionRecord, NodeRecord, ObjEndpoint, ObservedState, PatchRecord, PlacementRecord, PlacementStatus, PlacementTemplate, ResourceLimits, Role, RoleGrant, ServerRecord, ServerType,
  TaskItemRecord, TaskItemStatus, TaskKind, TaskRecord, TaskStatus, Topic, UserRecord,
} from "./records";

// ---- nodes ------------------------------------------------------------------------
export interface NodeHello {
  name: string;
  address: string;
  agentVersion: string;
  hostInfo?: JsonObject;
  /** The identity of the agent in session (kept unchanged when absent). */
  agentId?: string;
  /** The agent's tags (`key` / `key=value`); replace the ones of its last hello. Absent: kept. */
  tags?: string[];
}

/** One node's heartbeats since the last flush: the newest one's time, and host info to store (only when it changed). */
export interface HeartbeatEntry {
  name: string;
  at: number;
  hostInfo?: JsonObject;
}

export interface NodeRepo {
  /** Creates or updates a node from its hello; marks it online with a heartbeat now. */
  upsert(hello: NodeHello): Promise<NodeRecord>;
  get(name: string): Promise<NodeRecord>;
  find(name: string): Promise<NodeRecord | undefined>;
  list(): Promise<NodeRecord[]>;
  /**
   * Records a heartbeat. Cheap on purpose (one UPDATE): it bumps the `nodes`
   * revision only when the node was offline and comes back online.
   */
  heartbeat(name: string, at?: number): Promise<void>;
  /**
   * Records the heartbeats of many nodes in one transaction (the session
   * hub's flush, once a second): each online node's `last_heartbeat_at`
   * and, when given, its host info. No revision bump for the times (a
   * heartbeat is not a desired-state change); one `nodes` bump when some
   * host info was written. Nodes that are offline or unknown are left
   * untouched and returned (by name): the caller decides whether their
   * session may bring them back (heartbeat() / upsert()). A name given
   * twice counts once (the last entry wins).
   */
  recordHeartbeats(batch: readonly HeartbeatEntry[]): Promise<string[]>;
  /** Sets the online flag; no-op (no revision bump) when unchanged. */
  setOnline(name: string, online: boolean): Promise<void>;
  /**
   * Marks offline every online node whose last heartbeat is older than
   * `cutoff`, except the `keep` ones (their session is live here); returns
   * their names.
   */
  markStale(cutoff: number, keep?: ReadonlySet<string>): Promise<string[]>;
  /** Removes a node; refused (FAILED_PRECONDITION) while instances are placed on it. */
  remove(name: string): Promise<void>;
  /**
   * Replaces the tags people set on a node: `set` (`key` / `key=value`)
   * override the agent's, `unset` keys hide the agent's tag of that key.
   * A key in both, or a bad tag: INVALID_ARGUMENT, nothing changed.
   */
  setAdminTags(name: string, set: string[], unset: string[]): Promise<NodeRecord>;
}

// ---- placements ------------------------------------------------------------------------
export interface PlacementInput {
  application: string;
  server: string;
  query: string;
  count: number;
  template: PlacementTemplate;
  actor: string;
}

export interface PlacementRepo {
  /** Creates or replaces the placement of a server (which must exist); its status is cleared. */
  put(input: PlacementInput): Promise<PlacementRecord>;
  find(application: string, server: string): Promise<PlacementRecord | undefined>;
  list(): Promise<PlacementRecord[]>;
  /**
   * Reads the placement of `serverId` locked for update (FOR UPDATE on
   * MySQL; SQLite has one writer): call inside a transaction, so that two
   * registry processes never reconcile one placement at once.
   */
  lockById(id: number): Promise<PlacementRecord | undefined>;
  setStatus(id: number, status: PlacementStatus): Promise<void>;
  /** Removes a server's placement (its instances stay, as if deployed by hand). NOT_FOUND when there is none. */
  remove(application: string, server: string): Promise<void>;
}

// ---- servers ---------------------------------------------------------------------
export interface ServerInput {
  application: string;
  name: string;
  type: ServerType;
  /** Defaults for new instances (shape owned by the caller). The default patch is set with update(), once a patch exists. */
  defaults?: JsonObject;
}

export interface ServerUpdate {
  type?: ServerType;
  defaultPatchId?: number | null;
  defaults?: JsonObject;
}

export interface ServerRepo {
  create(input: ServerInput): Promise<ServerRecord>;
  get(application: string, name: string): Promise<ServerRecord>;
  find(application: string, name: string): Promise<ServerRecord | undefined>;
  getById(id: number): Promise<ServerRecord>;
  list(filter?: { application?: string }): Promise<ServerRecord[]>;
  listApplications(): Promise<string[]>;
  update(application: string, name: string, update: ServerUpdate): Promise<ServerRecord>;
  /**
   * Removes a server with its patches and server-level configs; refused while
   * it has instances. Returns the removed patches' storage keys that no other
   * patch uses, so the caller can delete the packages.
   */
  remove(application: string, name: string): Promise<{ orphanedStorageKeys: string[] }>;
}

// ---- instances ----------------------------------------------------------------------
export interface InstanceInput {
  application: string;
  server: string;
  node: string;
  adapters: AdapterInput[];
  env?: Record<string, string>;
  limits?: ResourceLimits;
  healthCheck?: JsonObject | null;
  /** Default `{}` (the agent's defaults). */
  launch?: LaunchOptions;
  /** Default `inactive`. */
  desiredState?: DesiredState;
  /** Default: the server's default patch. */
  desiredPatchId?: number | null;
}

export interface InstanceSpecUpdate {
  adapters?: AdapterInput[];
  env?: Record<string, string>;
  limits?: ResourceLimits;
  healthCheck?: JsonObject | null;
  launch?: LaunchOptions;
}

export interface ObservedReport {
  state: ObservedState;
  pid?: number | null;
  patchId?: number | null;
  restarts?: number;
  lastExitReason?: string | null;
  at?: number;
}

export interface InstanceFilter {
  application?: string;
  server?: string;
  node?: string;
}

export interface InstanceRepo {
  /**
   * Places a server on a node. Refused: unknown server/node (NOT_FOUND), the
   * server already on that node or a port already used on that node by
   * another instance (ALREADY_EXISTS), a desired patch of another server.
   */
  create(input: InstanceInput): Promise<InstanceRecord>;
  get(id: number): Promise<InstanceRecord>;
  find(application: string, server: string, node: string): Promise<InstanceRecord | undefined>;
  list(filter?: InstanceFilter): Promise<InstanceRecord[]>;
  /** Ports used by adapters of instances on a node (for auto-assignment). */
  usedPorts(node: string): Promise<number[]>;
  updateSpec(id: number, update: InstanceSpecUpdate): Promise<InstanceRecord>;
  /** Sets desired state and/or desired patch (which must belong to the instance's server). */
  setDesired(id: number, desired: { state?: DesiredState; patchId?: number | null }): Promise<InstanceRecord>;
  /** Records what the agent reports; keys left out keep their value. */
  reportObserved(id: number, report: ObservedReport): Promise<InstanceRecord>;
  /**
   * reportObserved without reading the instance back (one UPDATE): what the
   * node session writes for each entry of an agent's batch. NOT_FOUND for an
   * unknown instance, as reportObserved.
   */
  recordObserved(id: number, report: ObservedReport): Promise<void>;
  setDrained(id: number, drained: boolean): Promise<InstanceRecord>;
  /**
   * Removes an instance (undeploy) with its instance-level configs and its
   * surge, if any; a surge instance is removed alone (the configs are its
   * original's).
   */
  remove(id: number): Promise<void>;
  /**
   * Starts a surge beside instance `of` (see InstanceRecord.surgeOf): a copy
   * of its spec with `adapters` (other ports), desired active on `patchId`.
   * ALREADY_EXISTS when it has one; FAILED_PRECONDITION for a surge of a surge.
   */
  createSurge(of: number, input: { adapters: AdapterInput[]; patchId: number | null }): Promise<InstanceRecord>;
  /** The surge standing in for instance `of`, if any. */
  findSurge(of: number): Promise<InstanceRecord | undefined>;
}

// ---- endpoints -------------------------------------------------------------------------
export interface EndpointRepo {
  /**
   * Every adapter declaring the Obj `App.Server.Obj`, on every instance, with
   * its `active` flag. NOT_FOUND when the server does not exist or none of its
   * instances declares the Obj.
   */
  find(fullObjName: string): Promise<ObjEndpoint[]>;
  /** Every adapter of every instance (for a cache of all Objs), optionally of one application. */
  list(filter?: { application?: string }): Promise<ObjEndpoint[]>;
}

// ---- patches -----------------------------------------------------------------------------
export interface PatchInput {
  application: string;
  server: string;
  sha256: string;
  size: number;
  comment?: string;
  uploader: string;
  storageKey: string;
  /** The package's own version (its manifest's `version`), "" or absent when it has none. */
  packageVersion?: string;
}

export interface PatchRepo {
  /** Records an uploaded package; its version is the server's next number (safe under concurrent inserts). */
  create(input: PatchInput): Promise<PatchRecord>;
  get(id: number): Promise<PatchRecord>;
  getByVersion(application: string, server: string, version: number): Promise<PatchRecord>;
  /** Newest first. */
  list(application: string, server: string): Promise<PatchRecord[]>;
  /**
   * Removes a patch; refused (FAILED_PRECONDITION, naming the users) while an
   * instance desires or runs it or it is its server's default. Returns the
   * removed record and whether another patch still uses its storage key.
   */
  remove(id: number): Promise<{ patch: PatchRecord; storageKeyInUse: boolean }>;
  /** Whether any patch (of any server) references this storage key. */
  storageKeyInUse(storageKey: string): Promise<boolean>;
}

// ---- configs -------------------------------------------------------------------------------
export interface ConfigWrite {
  content: string;
  author: string;
  comment?: string;
}

/** The current version of one file at each level an instance sees (missing levels are null). */
export interface ConfigLayers {
  application: ConfigVersionRecord | null;
  server: ConfigVersionRecord | null;
  instance: ConfigVersionRecord | null;
}

export interface ConfigRepo {
  /** Adds a version (1 for a new file); returns it. */
  put(scope: ConfigScope, fileName: string, write: ConfigWrite): Promise<ConfigVersionRecord>;
  /** The current version, or the given one. */
  get(scope: ConfigScope, fileName: string, version?: number): Promise<ConfigVersionRecord>;
  /** Files at exactly this scope. */
  listFiles(scope: ConfigScope): Promise<ConfigFileRecord[]>;
  /** Files an instance sees: its application's, its server's and its own, in that order. */
  listForInstance(application: string, server: string, node: string): Promise<ConfigFileRecord[]>;
  /** Current version of one file at each of the instance's levels; NOT_FOUND when no level has it. */
  layersForInstance(application: string, server: string, node: string, fileName: string): Promise<ConfigLayers>;
  /** Versions of one file at one level, newest first. */
  history(scope: ConfigScope, fileName: string, opts?: { limit?: number }): Promise<ConfigVersionRecord[]>;
  /** Makes a new version that copies `version`'s content (history stays linear). */
  rollback(scope: ConfigScope, fileName: string, version: number, write: { author: string; comment?: string }): Promise<ConfigVersionRecord>;
  /** Removes a file with all its versions. */
  remove(scope: ConfigScope, fileName: string): Promise<void>;
}

// ---- tasks -----------------------------------------------------------------------------------
export interface TaskInput {
  kind: TaskKind;
  params?: JsonObject;
  createdBy: string;
  /** One item per instance; batches count from 1. */
  items: Array<{ instanceId: number; batch: number }>;
}

export interface TaskRepo {
  create(input: TaskInput): Promise<TaskRecord>;
  get(id: number): Promise<TaskRecord>;
  /** Newest first, without items' details beyond the record; `beforeId` pages. */
  list(filter?: { status?: TaskStatus; kind?: TaskKind; limit?: number; beforeId?: number }): Promise<TaskRecord[]>;
  /** Tasks still pending or running (to resume after a restart), oldest first. */
  listUnfinished(): Promise<TaskRecord[]>;
  /** Sets the task status; sets startedAt on the first `running`, finishedAt on a final status. */
  setStatus(id: number, status: TaskStatus, reason?: string | null): Promise<TaskRecord>;
  /**
   * Replaces one key of the task's params (a canary's state: ../admin/canary.ts),
   * atomically against other writes of the task; the other keys are kept.
   */
  setParam(id: number, key: string, value: JsonObject): Promise<TaskRecord>;
  /** Sets an item's status (and reason); times as for tasks. */
  setItemStatus(itemId: number, status: TaskItemStatus, reason?: string | null): Promise<TaskItemRecord>;
  /**
   * Takes or renews the right to run a task: succeeds when nobody owns it,
   * `owner` already does, or the previous owner's lease ran out. Atomic across
   * registry processes.
   */
  claim(id: number, owner: string, leaseMs: number): Promise<boolean>;
  /** Gives up a claim held by `owner` (no-op otherwise). */
  release(id: number, owner: string): Promise<void>;
}

// ---- users ---------------------------------------------------------------------------------------
export interface UserRepo {
  create(input: { name: string; passwordHash: string }): Promise<UserRecord>;
  get(name: string): Promise<UserRecord>;
  find(name: string): Promise<UserRecord | undefined>;
  list(): Promise<UserRecord[]>;
  setPasswordHash(name: string, passwordHash: string): Promise<void>;
  remove(name: string): Promise<void>;
  /** Grants (or replaces) the user's role on an application or `*`. */
  grant(name: string, application: string, role: Role): Promise<RoleGrant[]>;
  /** Removes the user's role on an application or `*`; returns the remaining grants. */
  revoke(name: string, application: string): Promise<RoleGrant[]>;
  count(): Promise<number>;
}

// ---- login sessions -------------------------------------------------------------------------------
export interface LoginSessionRepo {
  /** Records a new session (token hash, user, expiry). No revision bump: sessions are read by key, never watched. */
  create(input: { tokenHash: string; user: string; expiresAt: number }): Promise<LoginSessionRecord>;
  /** The session with this token hash, expired or not; undefined when unknown. */
  find(tokenHash: string): Promise<LoginSessionRecord | undefined>;
  /** Removes one session (logout); no-op when unknown. */
  remove(tokenHash: string): Promise<void>;
  /** Removes every session of a user (password change, deletion); returns how many. */
  removeForUser(user: string): Promise<number>;
  /** Deletes sessions that expired before `now`; returns how many. */
  pruneExpired(now: number): Promise<number>;
}

// ---- events -----------------------------------------------------------------------------------------
export interface EventInput {
  actor: string;
  kind: string;
  target: string;
  message: string;
  data?: JsonObject;
  time?: number;
}

export interface EventFilter {
  kind?: string;
  /** Exact target. */
  target?: string;
  /** Target prefix (`Demo.` for everything in Demo). */
  targetPrefix?: string;
  actor?: string;
  since?: number;
  until?: number;
  /** Only events with a smaller id (paging backwards). */
  beforeId?: number;
  /** Only events with a greater id (tailing). */
  afterId?: number;
  /** Default 100, at most 1000. */
  limit?: number;
}

export interface EventRepo {
  append(event: EventInput): Promise<EventRecord>;
  /** Newest first, unless `afterId` is given (then oldest first, for tailing). */
  list(filter?: EventFilter): Promise<EventRecord[]>;
  /** Deletes events older than `before`; returns how many. */
  prune(before: number): Promise<number>;
}

// ---- commands (relay between registry processes) ------------------------------------------
export interface CommandInput {
  instanceId: number;
  node: string;
  command: string;
  args: string;
  timeoutMs: number;
  /** Registry process id of the sender. */
  sender: string;
}

export interface CommandReplyInput {
  ok: boolean;
  output?: string;
  error?: string;
  /** Error code to rebuild on the sender's side when `ok` is false. */
  errorCode?: string | null;
}

/** Node names to test membership of: a Set, or the keys of a Map (a hub's sessions, not copied). */
export interface NodeNameSet {
  readonly size: number;
  has(node: string): boolean;
}

/**
 * Admin commands relayed between registry processes sharing the database.
 * Writes here bump no revision topic: the relay polls this table itself.
 */
export interface CommandRepo {
  /** Queues a command (status `pending`, expiring `timeoutMs` from now). */
  enqueue(input: CommandInput): Promise<CommandRecord>;
  /**
   * Claims, for `owner`, pending unexpired commands addressed to any of
   * `nodes` (status `taken`); atomic across processes: each command is
   * returned to exactly one caller. At most `limit` (default 100).
   */
  claim(nodes: NodeNameSet, owner: string, limit?: number): Promise<CommandRecord[]>;
  /** Stores the reply (status `done`). No-op when the command is gone. */
  complete(id: number, reply: CommandReplyInput): Promise<void>;
  find(id: number): Promise<CommandRecord | undefined>;
  /** Deletes one command (the sender, once it has the reply or gave up). */
  remove(id: number): Promise<void>;
  /** Deletes commands that expired before `before`; returns how many. */
  prune(before: number): Promise<number>;
}

// ---- revisions -------------------------------------------------------------------------------------------
export interface RevisionRepo {
  /**
   * Current counter per topic: one cheap SELECT of a few rows. A counter that
   * moved since the last poll means another write (by this or another
   * registry process) was committed on that topic.
   */
  get(): Promise<Record<Topic, number>>;
}

// ---- the store ---------------------------------------------------------------------------------------------
export interface RegistryStore {
  readonly nodes: NodeRepo;
  readonly servers: ServerRepo;
  readonly instances: InstanceRepo;
  readonly endpoints: EndpointRepo;
  readonly patches: PatchRepo;
  readonly configs: ConfigRepo;
  readonly tasks: TaskRepo;
  readonly users: UserRepo;
  /** Login sessions of the Admin API (tokens stored hashed). */
  readonly logins: LoginSessionRepo;
  readonly events: EventRepo;
  readonly revisions: RevisionRepo;
  readonly commands: CommandRepo;
  /** The service monitor's per-minute call stats (./knex/call-stats.ts). */
  readonly callStats: CallStatsRepo;
  /** Package bytes in chunks (./knex/package-blobs.ts), read and written through the registry's PackageStorage only. */
  readonly packageBlobs: PackageBlobRepo;
  /** Placed servers: query, count, template and status (./knex/placements.ts). */
  readonly placements: PlacementRepo;
  /** `sqlite` or `mysql`. */
  readonly dialect: string;
  /** The database URL without its password, for logs and messages. */
  readonly safeUrl: string;
  /**
   * Runs `fn` in one transaction with a store bound to it: all of its writes
   * commit together or not at all. On a deadlock the whole `fn` may be run
   * again, so it must not have effects outside the database. Called on a
   * bound store, it joins the open transaction (no savepoint). While `fn`
   * runs, use only the store it is given: on SQLite the pool has one
   * connection, which the transaction holds.
   */
  transaction<T>(fn: (store: RegistryStore) => Promise<T>): Promise<T>;
  /** Checks the database answers; throws DatabaseUnavailableError otherwise. */
  ping(): Promise<void>;
  /** Closes the pool. Idempotent. */
  close(): Promise<void>;
}
