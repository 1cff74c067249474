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
import { Status, defineError, registerErrorClass } from "sgridnext";

/**
 * The database cannot be reached (at start, or while running): connection
 * refused, lost, timed out, or the pool could not hand out a connection.
 * Retryable: the same call may succeed once the database is back.
 */
export class DatabaseUnavailableError extends defineError("DATABASE_UNAVAILABLE", Status.UNAVAILABLE, { retryable: true }) {}

/**
 * Schema migrations could not take knex's migration lock within the allowed
 * time (another registry is migrating, or a crashed one left the lock set).
 */
export class MigrationLockedError extends defineError("MIGRATION_LOCKED", Status.UNAVAILABLE, { retryable: true }) {}

/** A schema migration failed for a reason other than the lock. */
export class MigrationFailedError extends defineError("MIGRATION_FAILED", Status.INTERNAL) {}

/** A database URL (`--db`, `SGRID_DB`) is malformed or names an unknown dialect. */
export class DatabaseUrlError extends defineError("DATABASE_URL_INVALID", Status.INVALID_ARGUMENT) {}

for (const cls of [DatabaseUnavailableError, MigrationLockedError, MigrationFailedError, DatabaseUrlError]) registerErrorClass(cls);
