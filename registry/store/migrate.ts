/**
 * Running the schema migrations at registry start.
 *
 * The migrations come from {@link MIGRATIONS} through a module migration
 * source (no directory scanning). Several registry processes may start at
 * once on one MySQL database; knex's migration lock lets one migrate, and
 * the others get "already locked" and retry with jittered exponential backoff
 * until the winner is done, then find nothing left to do.
 *
 * knex itself is not safe when two processes create its bookkeeping tables at
 * the same moment (both insert a lock row, after which nobody can ever take
 * the lock), so those tables are created here first, race-safely, with the
 * single lock row fixed at index 1.
 */
import type { Knex } from "knex";
import { z } from "zod";
import { Backoff, ConfigError, SgridError, getLogger } from "sgridnext";
import { MigrationFailedError, MigrationLockedError } from "../errors";
import { databaseInfo } from "./db";
import { isConnectionError, isRetryableTxError, isTableExists, isUniqueViolation, toStoreError } from "./db-errors";
import { MIGRATIONS, type MigrationModule } from "./migrations";

const log = getLogger("registry.store");

/** Table knex records applied migrations in; its lock table is `<name>_lock`. */
export const MIGRATIONS_TABLE = "sgrid_migrations";
const LOCK_TABLE = `${MIGRATIONS_TABLE}_lock`;

/** Options of {@link migrateLatest}. */
export interface MigrateOptions {
  /** How long to keep retrying while another process holds the migration lock, ms. Default 60000. */
  lockTimeoutMs?: number;
  /** First retry delay, ms; doubles up to maxBackoffMs, each with ±50% jitter. Default 50. */
  initialBackoffMs?: number;
  /** Largest retry delay, ms. Default 1000. */
  maxBackoffMs?: number;
}

export const MIGRATE_DEFAULTS: Readonly<Required<MigrateOptions>> = Object.freeze({
  lockTimeoutMs: 60_000,
  initialBackoffMs: 50,
  maxBackoffMs: 1000,
});

const schema = z.object({
  lockTimeoutMs: z.number().int().min(0),
  initialBackoffMs: z.number().int().min(1),
  maxBackoffMs: z.number().int().min(1),
}).strict();

class ModuleMigrationSource implements Knex.MigrationSource<MigrationModule> {
  constructor(private readonly list: readonly MigrationModule[]) {}
  getMigrations(): Promise<MigrationModule[]> {
    return Promise.resolve([...this.list]);
  }
  getMigrationName(m: MigrationModule): string {
    return m.name;
  }
  getMigration(m: MigrationModule): Promise<Knex.Migration> {
    return Promise.resolve(m);
  }
}

function migratorConfig(): Knex.MigratorConfig {
  return { migrationSource: new ModuleMigrationSource(MIGRATIONS), tableName: MIGRATIONS_TABLE };
}

async function createIfMissing(db: Knex, table: string, build: (t: Knex.CreateTableBuilder) => void): Promise<void> {
  if (await db.schema.hasTable(table)) return;
  try {
    await db.schema.createTable(table, build);
  } catch (err) {
    if (!isTableExists(err)) throw err; // lost the race to another process: fine
  }
}

/** Creates knex's bookkeeping tables exactly as knex would, plus the one lock row. Idempotent, race-safe. */
async function ensureMigrationTables(db: Knex): Promise<void> {
  await createIfMissing(db, MIGRATIONS_TABLE, (t) => {
    t.increments();
    t.string("name");
    t.integer("batch");
    t.timestamp("migration_time");
  });
  await createIfMissing(db, LOCK_TABLE, (t) => {
    t.increments("index").primary();
    t.integer("is_locked");
  });
  await db(LOCK_TABLE).insert({ index: 1, is_locked: 0 }).onConflict("index").ignore();
  // Repair a lock table that an unguarded race left with several rows (nobody could ever lock it).
  await db(LOCK_TABLE).where("index", ">", 1).del();
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Brings the schema to the latest version. Idempotent; safe to call from
 * several processes at once. Returns the names of the migrations this call
 * applied (empty when another process did, or nothing was pending).
 * Throws DatabaseUnavailableError, MigrationLockedError (lock still held
 * after `lockTimeoutMs`) or MigrationFailedError.
 */
export async function migrateLatest(db: Knex, opts?: MigrateOptions): Promise<{ applied: string[] }> {
  const parsed = schema.safeParse({ ...MIGRATE_DEFAULTS, ...Object.fromEntries(Object.entries(opts ?? {}).filter(([, v]) => v !== undefined)) });
  if (!parsed.success) throw new ConfigError(`invalid migrate options: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  const o = Object.freeze(parsed.data);
  const { safeUrl, scrub } = databaseInfo(db);
  const deadline = Date.now() + o.lockTimeoutMs;
  const backoff = new Backoff({ initialMs: o.initialBackoffMs, maxMs: Math.max(o.initialBackoffMs, o.maxBackoffMs), jitter: 0.5 });
  let attempts = 0;
  for (;;) {
    attempts++;
    try {
      await ensureMigrationTables(db);
      const [, applied] = (await db.migrate.latest(migratorConfig())) as [number, string[]];
      if (applied.length > 0) log.info({ db: safeUrl, applied }, "database migrated");
      return { applied };
    } catch (err) {
      if (err instanceof SgridError) throw err;
      if (isConnectionError(err)) throw toStoreError(err, safeUrl, scrub);
      const locked = (err as any)?.name === "MigrationLocked";
      const racing = locked || isTableExists(err) || isRetryableTxError(err) || isUniqueViolation(err);
      const message = scrub(String((err as any)?.message ?? err));
      if (!racing) {
        throw new MigrationFailedError(`migrating database ${safeUrl} failed: ${message}`, { db: safeUrl }, err);
      }
      const delay = backoff.next();
      if (Date.now() + delay > deadline) {
        throw new MigrationLockedError(
          `could not migrate database ${safeUrl} within ${o.lockTimeoutMs} ms: the migration lock is held ` +
            `(another registry is migrating, or one died while migrating; if none is, clear it with ` +
            `UPDATE ${LOCK_TABLE} SET is_locked = 0)`,
          { db: safeUrl, attempts },
          err,
        );
      }
      log.debug({ db: safeUrl, attempt: attempts, delayMs: delay, reason: message }, "migration lock busy; retrying");
      await sleep(delay);
    }
  }
}

/** Names of applied and pending migrations. */
export async function migrationStatus(db: Knex): Promise<{ applied: string[]; pending: string[] }> {
  const { safeUrl, scrub } = databaseInfo(db);
  try {
    await ensureMigrationTables(db);
    const [done, pending] = (await db.migrate.list(migratorConfig())) as [Array<{ name: string } | string>, MigrationModule[]];
    return { applied: done.map((d) => (typeof d === "string" ? d : d.name)), pending: pending.map((p) => p.name) };
  } catch (err) {
    throw toStoreError(err, safeUrl, scrub);
  }
}

/** Reverts every migration (tests and `sgrid registry --reset` only). */
export async function migrateRollbackAll(db: Knex): Promise<void> {
  await db.migrate.rollback(migratorConfig(), true);
}
