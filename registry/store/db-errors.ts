/**
 * Classification of driver errors (mysql2, better-sqlite3, knex's pool) into
 * what the store does about them: report the database unavailable, retry the
 * transaction, or report a duplicate.
 */
import { SgridError } from "sgridnext";
import { DatabaseUnavailableError } from "../errors";

const CONNECTION_CODES = new Set([
  "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN", "EPIPE",
  "PROTOCOL_CONNECTION_LOST", "PROTOCOL_SEQUENCE_TIMEOUT", "PROTOCOL_ENQUEUE_AFTER_FATAL_ERROR",
  "ER_CON_COUNT_ERROR", "ER_ACCESS_DENIED_ERROR", "ER_DBACCESS_DENIED_ERROR", "ER_BAD_DB_ERROR",
  "ER_SERVER_SHUTDOWN", "ER_CONNECTION_KILLED", "ER_HOST_IS_BLOCKED", "ER_HOST_NOT_PRIVILEGED",
  "SQLITE_CANTOPEN", "SQLITE_NOTADB", "SQLITE_IOERR", "SQLITE_FULL",
]);

function codeOf(err: unknown): string {
  return typeof (err as any)?.code === "string" ? (err as any).code : "";
}

/** True for errors that mean "the database is not reachable right now". */
export function isConnectionError(err: unknown): boolean {
  if (err == null || typeof err !== "object") return false;
  const e = err as any;
  if (e.name === "KnexTimeoutError") return true;
  const code = codeOf(err);
  if (CONNECTION_CODES.has(code) || code.startsWith("SQLITE_IOERR")) return true;
  if (e.fatal === true) return true; // mysql2: the connection is dead
  return /connection is in closed state|Connection lost|pool is probably full|Unable to acquire a connection/i.test(String(e.message ?? ""));
}

/** True for errors after which re-running the whole transaction may succeed. */
export function isRetryableTxError(err: unknown): boolean {
  const code = codeOf(err);
  return code === "ER_LOCK_DEADLOCK" || code === "ER_LOCK_WAIT_TIMEOUT" || code === "SQLITE_BUSY" || code === "SQLITE_BUSY_SNAPSHOT" || code === "SQLITE_LOCKED";
}

/** True for a unique or primary key violation. */
export function isUniqueViolation(err: unknown): boolean {
  const code = codeOf(err);
  return code === "ER_DUP_ENTRY" || code === "SQLITE_CONSTRAINT_UNIQUE" || code === "SQLITE_CONSTRAINT_PRIMARYKEY";
}

/** True for a foreign key violation (a referenced row is missing, or still referenced). */
export function isForeignKeyViolation(err: unknown): boolean {
  const code = codeOf(err);
  return code === "ER_NO_REFERENCED_ROW_2" || code === "ER_ROW_IS_REFERENCED_2" || code === "SQLITE_CONSTRAINT_FOREIGNKEY";
}

/** True when a CREATE TABLE lost a race with another process creating the same table. */
export function isTableExists(err: unknown): boolean {
  return codeOf(err) === "ER_TABLE_EXISTS_ERROR" || /already exists/i.test(String((err as any)?.message ?? ""));
}

/**
 * The error the store reports for a failure: SgridErrors unchanged,
 * connection failures and lock contention that outlived the retries as
 * DatabaseUnavailableError naming `safeUrl`, anything else unchanged (the service boundary turns it into INTERNAL).
 * `scrub` removes secrets from driver messages.
 */
export function toStoreError(err: unknown, safeUrl: string, scrub: (s: string) => string = (s) => s): unknown {
  if (err instanceof SgridError) return err;
  if (isConnectionError(err)) {
    const e = err as any;
    const reason = scrub(String(e.code ? `${e.code}: ${e.message ?? ""}` : e.message ?? e));
    return new DatabaseUnavailableError(`database ${safeUrl} is unavailable: ${reason}`, { db: safeUrl, reason: codeOf(err) || e.name }, err);
  }
  if (isRetryableTxError(err)) {
    // Still locked or deadlocked after the transaction's own retries: transient, so UNAVAILABLE.
    return new DatabaseUnavailableError(`database ${safeUrl} is busy (${codeOf(err)}); try again`, { db: safeUrl, reason: codeOf(err) }, err);
  }
  return err;
}
