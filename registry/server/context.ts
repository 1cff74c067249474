/**
 * What every registry service is given: the store, the change feed, the
 * node-session hub, package storage and authentication. The services
 * (Query, NodeSession, Config, Patch, Admin) are built from one of these by
 * RegistryServer; none of them opens the database or a port of its own.
 *
 * This file holds interfaces only, so that the services can be written and
 * tested apart and joined in registry-server.ts.
 */
import type { EventEmitter } from "node:events";
import type { Readable } from "node:stream";
import type { Logger, Servant, ServerContext } from "sgridnext";
import type { RegistryStore } from "../store";
import type { Role, Topic } from "../store/records";

/** Settings every service may read (resolved from flags, env and defaults). */
export interface RegistrySettings {
  /** Registry endpoints advertised to agents and servants (SGRID_REGISTRY), e.g. `127.0.0.1:9500`. */
  advertise: string;
  /** Agents' heartbeat interval, ms. Default 5000. */
  heartbeatIntervalMs: number;
  /** A node silent for this long is offline, ms. Default 15000. */
  heartbeatTimeoutMs: number;
  /** Largest package accepted, bytes. Default 512 MiB. */
  maxPatchBytes: number;
  /** Time a publish batch may take to become active, ms. Default 120000. */
  batchTimeoutMs: number;
  /** How long an instance must stay active to count as started by a task, ms. Default 2000. */
  taskSettleMs?: number;
  /** A node offline this long is lost to placements, ms. Default 60000. */
  placementGraceMs?: number;
  /** Unique id of this registry process (task leases, command relay). */
  processId: string;
}

/**
 * Committed changes, by topic, from this registry process and from any other
 * one sharing the database (found by polling the revision counters).
 */
export interface ChangeFeed extends EventEmitter<{ change: [Set<Topic>] }> {
  /** Polls now instead of at the next tick (call after a local write for low latency). */
  kick(): void;
  /** Last counters seen. */
  readonly revisions: Readonly<Record<Topic, number>>;
  /** False while the last poll failed (the database is unreachable). */
  readonly healthy: boolean;
}

/** An authenticated person (from a login token). */
export interface AuthUser {
  name: string;
  roles: Array<{ application: string; role: Role }>;
}

/** Checks the credentials a call carries (metadata `authorization: Bearer <token>`). */
export interface Authenticator {
  /**
   * The logged-in user, checked to hold at least `need.role` on
   * `need.application` (or on `*`). UNAUTHENTICATED without a valid token,
   * PERMISSION_DENIED without the role.
   */
  requireUser(ctx: ServerContext, need?: { role: Role; application?: string }): Promise<AuthUser>;
  /** The cluster token of agents (constant-time compare); UNAUTHENTICATED otherwise. */
  requireCluster(ctx: ServerContext): void;
  /** Query and Config reads: open unless a query token is configured. */
  requireQuery(ctx: ServerContext): void;
}

/** Node sessions held by this registry process, and commands to instances anywhere. */
export interface SessionHub {
  /** Names of nodes with a session on this process. */
  localNodes(): string[];
  /**
   * Sends an admin command to one instance and waits for its reply (text).
   * Works whichever registry process holds the node's session. Errors: the
   * node offline (UNAVAILABLE), no reply in time (DEADLINE_EXCEEDED), the
   * servant's own error (its message).
   */
  sendCommand(instanceId: number, command: string, args: string, timeoutMs: number): Promise<string>;
  /** Recent heartbeat samples of a node held here (oldest first); empty when not held here. */
  samples(node: string): Array<Record<string, number>>;
  /** Latest usage per instance id reported by agents held here. */
  usage(instanceId: number): { memoryBytes: number; cpuCoresUsed: number; startedAt: number } | undefined;
  /** When the agent of `node` last sent anything on a session held here (ms since the epoch); undefined when not held here. */
  lastSeenAt(node: string): number | undefined;
}

/** Packages by sha256 (in the database by default, so every registry on it serves every package: `DatabaseStorage`). */
export interface PackageStorage {
  /** Stores a stream; resolves with its sha256 and size; the key is the sha256. Nothing is kept on failure. */
  put(source: Readable, expect: { sha256: string; size: number; maxBytes: number }): Promise<{ key: string; size: number }>;
  /** Reads from `offset`. NOT_FOUND when missing. */
  get(key: string, offset?: number): Promise<Readable>;
  has(key: string): Promise<boolean>;
  /** Removes unconditionally (idempotent). Prefer removeUnused, which cannot race an upload. */
  remove(key: string): Promise<void>;
  /**
   * Marks an upload of `key` as in flight until the returned function is
   * called (after its patch row is committed or has failed): removeUnused
   * leaves held keys alone.
   */
  hold(key: string): () => void;
  /**
   * Removes `key` unless an upload of it is in flight or `inUse()` (asked
   * after taking the key's lock) says a patch row references it. Serialized
   * with put's final step for the same key, so a file an upload has just
   * placed is never removed. Resolves true when removed.
   */
  removeUnused(key: string, inUse: () => Promise<boolean>): Promise<boolean>;
  /** Every stored key with its last modification time (ms since the epoch). */
  list(): AsyncIterable<{ key: string; mtimeMs: number }>;
  /** Removes what uploads that never finished (their registry died) left, when older than `olderThanMs`; resolves with how much. */
  sweepUnfinished(olderThanMs: number): Promise<number>;
}

export interface RegistryContext {
  readonly store: RegistryStore;
  readonly settings: RegistrySettings;
  readonly changes: ChangeFeed;
  readonly sessions: SessionHub;
  readonly storage: PackageStorage;
  readonly auth: Authenticator;
  readonly log: Logger;
}

/**
 * One part of the registry (an API or a background job), built from the
 * context by its factory; RegistryServer mounts its servants as
 * `Sgrid.Registry.<Obj>` and runs the hooks. Parts are listed in parts.ts;
 * import these types from here (not from parts.ts, which imports every part).
 */
export interface RegistryPart {
  /** Short Obj name -> servant. */
  servants?: Record<string, Servant>;
  /** Called after the store is migrated, before the port opens. */
  start?(): Promise<void>;
  /**
   * Called when shutdown begins, before the port closes: end long-lived
   * streams (watches, node sessions) so that the graceful close does not wait
   * for them. Unary calls in flight still finish.
   */
  drain?(): Promise<void>;
  /** Called at shutdown, after the port closed, in reverse order. */
  stop?(): Promise<void>;
}

export type RegistryPartFactory = (ctx: RegistryContext) => RegistryPart;
