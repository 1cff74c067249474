/**
 * Errors of the registry.
 *
 * Generic failures use the framework's classes (InvalidArgumentError,
 * NotFoundError, AlreadyExistsError, FailedPreconditionError); the classes
 * here are the ones only the registry raises. Every class is registered with
 * the framework so that a client rebuilds the same class from the wire, and
 * every code is listed in ERRORS.md.
 *
 * Messages that name the database always use the URL without its password
 * (see `redactUrl` in store/db.ts).
 */
import { SgridError, Status, registerErrorClass } from "../framework";

/**
 * The database cannot be reached (at start, or while running): connection
 * refused, lost, timed out, or the pool could not hand out a connection.
 * Retryable: the same call may succeed once the database is back.
 */
export class DatabaseUnavailableError extends SgridError {
  static readonly CODE = "DATABASE_UNAVAILABLE";
  constructor(message: string, data?: Record<string, unknown>, cause?: unknown) {
    super(DatabaseUnavailableError.CODE, message, { status: Status.UNAVAILABLE, retryable: true, data, cause });
  }
}

/**
 * Schema migrations could not take knex's migration lock within the allowed
 * time (another registry is migrating, or a crashed one left the lock set).
 */
export class MigrationLockedError extends SgridError {
  static readonly CODE = "MIGRATION_LOCKED";
  constructor(message: string, data?: Record<string, unknown>, cause?: unknown) {
    super(MigrationLockedError.CODE, message, { status: Status.UNAVAILABLE, retryable: true, data, cause });
  }
}

/** A schema migration failed for a reason other than the lock. */
export class MigrationFailedError extends SgridError {
  static readonly CODE = "MIGRATION_FAILED";
  constructor(message: string, data?: Record<string, unknown>, cause?: unknown) {
    super(MigrationFailedError.CODE, message, { status: Status.INTERNAL, retryable: false, data, cause });
  }
}

/** A database URL (`--db`, `SGRID_DB`) is malformed or names an unknown dialect. */
export class DatabaseUrlError extends SgridError {
  static readonly CODE = "DATABASE_URL_INVALID";
  constructor(message: string, data?: Record<string, unknown>) {
    super(DatabaseUrlError.CODE, message, { status: Status.INVALID_ARGUMENT, retryable: false, data });
  }
}

for (const cls of [DatabaseUnavailableError, MigrationLockedError, MigrationFailedError, DatabaseUrlError]) registerErrorClass(cls);
