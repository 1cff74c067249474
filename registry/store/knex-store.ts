/**
 * The knex implementation of {@link RegistryStore}, for SQLite and
 * MySQL/MariaDB alike. Each entity's repository lives in knex/<entity>.ts;
 * this file wires them to one StoreContext (the pool, or one transaction).
 */
import type { Knex } from "knex";
import type {
  CommandRepo, ConfigRepo, EndpointRepo, EventRepo, InstanceRepo, LoginSessionRepo, NodeRepo, PatchRepo, PlacementRepo, RegistryStore, RevisionRepo, ServerRepo, TaskRepo, UserRepo,
} from "./base";
import { type DatabaseOptions, databaseInfo, openDatabase } from "./db";
import { type MigrateOptions, migrateLatest } from "./migrate";
import { KnexCommandRepo } from "./knex/commands";
import { KnexConfigRepo } from "./knex/configs";
import { StoreContext } from "./knex/context";
import { KnexEndpointRepo } from "./knex/endpoints";
import { KnexEventRepo } from "./knex/events";
import { KnexInstanceRepo } from "./knex/instances";
import { KnexLoginSessionRepo } from "./knex/logins";
import { KnexCallStatsRepo, type CallStatsRepo } from "./knex/call-stats";
import { KnexNodeRepo } from "./knex/nodes";
import { KnexPackageBlobRepo, type PackageBlobRepo } from "./knex/package-blobs";
import { KnexPatchRepo } from "./knex/patches";
import { KnexPlacementRepo } from "./knex/placements";
import { KnexRevisionRepo } from "./knex/revisions";
import { KnexServerRepo } from "./knex/servers";
import { KnexTaskRepo } from "./knex/tasks";
import { KnexUserRepo } from "./knex/users";

export class KnexStore implements RegistryStore {
  readonly nodes: NodeRepo;
  readonly servers: ServerRepo;
  readonly instances: InstanceRepo;
  readonly endpoints: EndpointRepo;
  readonly patches: PatchRepo;
  readonly configs: ConfigRepo;
  readonly tasks: TaskRepo;
  readonly users: UserRepo;
  readonly logins: LoginSessionRepo;
  readonly events: EventRepo;
  readonly revisions: RevisionRepo;
  readonly commands: CommandRepo;
  readonly callStats: CallStatsRepo;
  readonly packageBlobs: PackageBlobRepo;
  readonly placements: PlacementRepo;
  private closed = false;
  private readonly ctx: StoreContext;

  /**
   * Wraps an open knex instance (from openDatabase) whose schema is migrated.
   * The store owns it from then on: close() destroys it.
   */
  constructor(db: Knex, ctx?: StoreContext) {
    this.ctx = ctx ?? new StoreContext(db, databaseInfo(db));
    this.nodes = new KnexNodeRepo(this.ctx);
    this.servers = new KnexServerRepo(this.ctx);
    this.instances = new KnexInstanceRepo(this.ctx);
    this.endpoints = new KnexEndpointRepo(this.ctx);
    this.patches = new KnexPatchRepo(this.ctx);
    this.configs = new KnexConfigRepo(this.ctx);
    this.tasks = new KnexTaskRepo(this.ctx);
    this.users = new KnexUserRepo(this.ctx);
    this.logins = new KnexLoginSessionRepo(this.ctx);
    this.events = new KnexEventRepo(this.ctx);
    this.revisions = new KnexRevisionRepo(this.ctx);
    this.commands = new KnexCommandRepo(this.ctx);
    this.callStats = new KnexCallStatsRepo(this.ctx);
    this.packageBlobs = new KnexPackageBlobRepo(this.ctx);
    this.placements = new KnexPlacementRepo(this.ctx);
  }

  get dialect(): string {
    return this.ctx.info.dialect;
  }

  get safeUrl(): string {
    return this.ctx.info.safeUrl;
  }

  /** The underlying knex instance (tests and migrations only; services use the repositories). */
  get knex(): Knex {
    return this.ctx.root;
  }

  transaction<T>(fn: (store: RegistryStore) => Promise<T>): Promise<T> {
    // Already bound: join the open transaction.
    return this.ctx.write((trx, touch) => fn(new KnexStore(this.ctx.root, this.ctx.bind(trx, touch))));
  }

  async ping(): Promise<void> {
    await this.ctx.read((db) => db.raw("select 1"));
  }

  /** Closes the pool. Idempotent; a no-op on the store a transaction callback receives (the pool is not its own). */
  async close(): Promise<void> {
    if (this.closed || this.ctx.isBound) return;
    this.closed = true;
    await this.ctx.root.destroy();
  }
}

/** Options of {@link openStore}. */
export interface OpenStoreOptions extends DatabaseOptions, MigrateOptions {
  /** Run migrations before returning. Default true. */
  migrate?: boolean;
}

/**
 * Opens the database named by `url`, brings its schema up to date and returns
 * the store: what `sgrid registry` calls at start. Throws DatabaseUrlError,
 * DatabaseUnavailableError, MigrationLockedError or MigrationFailedError,
 * each naming the database without its password.
 */
export async function openStore(url: string, opts: OpenStoreOptions = {}): Promise<KnexStore> {
  const { migrate, lockTimeoutMs, initialBackoffMs, maxBackoffMs, ...dbOpts } = opts;
  const db = await openDatabase(url, dbOpts);
  try {
    if (migrate ?? true) await migrateLatest(db, { lockTimeoutMs, initialBackoffMs, maxBackoffMs });
  } catch (err) {
    await db.destroy().catch(() => undefined);
    throw err;
  }
  return new KnexStore(db);
}
