/**
 * Opening the registry's database from a URL.
 *
 * - `sqlite:<path>` (better-sqlite3): the embedded default. The parent
 *   directory is created; WAL journal (checkpointed every
 *   SQLITE_WAL_AUTOCHECKPOINT pages), foreign keys on, a busy timeout.
 *   `sqlite::memory:` gives a private in-memory database (tests only: it
 *   vanishes on close).
 * - `mysql://user:pass@host:port/db` (mysql2, also `mariadb://`): a pool,
 *   utf8mb4, READ COMMITTED, UTC. A missing database is created when
 *   `createDatabase` is on (default).
 *
 * The URL is never logged or put in a message with its password: everything
 * goes through {@link redactUrl}.
 */
import fs from "node:fs";
import path from "node:path";
import knexFactory, { type Knex } from "knex";
import { z } from "zod";
import { ConfigError, getLogger } from "sgridnext";
import { DatabaseUnavailableError, DatabaseUrlError } from "../errors";
import { isConnectionError, toStoreError } from "./db-errors";

const log = getLogger("registry.store");

export type Dialect = "sqlite" | "mysql";

/** Options of {@link openDatabase}. */
export interface DatabaseOptions {
  /** Largest number of pooled connections (MySQL; SQLite always uses one). Default 10. */
  poolMax?: number;
  /** How long a query waits for a pooled connection before failing UNAVAILABLE, ms. Default 5000. */
  acquireTimeoutMs?: number;
  /** TCP connect timeout (MySQL), ms. Default 5000. */
  connectTimeoutMs?: number;
  /** How long SQLite waits on a locked database file, ms. Default 5000. */
  busyTimeoutMs?: number;
  /** Create the MySQL database named in the URL when it does not exist. Default true. */
  createDatabase?: boolean;
}

export const DATABASE_DEFAULTS: Readonly<Required<DatabaseOptions>> = Object.freeze({
  poolMax: 10,
  acquireTimeoutMs: 5000,
  connectTimeoutMs: 5000,
  busyTimeoutMs: 5000,
  createDatabase: true,
});

const optionsSchema = z.object({
  poolMax: z.number().int().min(1).max(1000),
  acquireTimeoutMs: z.number().int().min(1),
  connectTimeoutMs: z.number().int().min(1),
  busyTimeoutMs: z.number().int().min(0),
  createDatabase: z.boolean(),
}).strict();

/** What the store needs to know about an open database. */
export interface DatabaseInfo {
  dialect: Dialect;
  /** URL without password. */
  safeUrl: string;
  /** Removes the password from a driver message, should one ever contain it. */
  scrub(text: string): string;
}

const infos = new WeakMap<Knex, DatabaseInfo>();

/** Dialect and safe URL of a knex instance made by {@link openDatabase}. */
export function databaseInfo(db: Knex): DatabaseInfo {
  const info = infos.get(db);
  if (info) return info;
  const client = String((db.client as any)?.config?.client ?? "");
  return { dialect: client.includes("sqlite") ? "sqlite" : "mysql", safeUrl: `${client}:(unknown)`, scrub: (s) => s };
}

/**
 * The URL with its password replaced by `***` (userinfo and a `password=`
 * query parameter). Never throws; strings that are not URLs come back with
 * anything that looks like a password removed.
 */
export function redactUrl(url: string): string {
  let out = String(url);
  const scheme = out.indexOf("://");
  if (scheme >= 0) {
    const rest = out.slice(scheme + 3);
    const at = rest.lastIndexOf("@");
    if (at >= 0) {
      const userinfo = rest.slice(0, at);
      const colon = userinfo.indexOf(":");
      if (colon >= 0) out = `${out.slice(0, scheme + 3)}${userinfo.slice(0, colon)}:***${rest.slice(at)}`;
    }
  }
  return out.replace(/([?&](?:password|pass|pwd)=)[^&#]*/gi, "$1***");
}

/** A parsed database URL. */
export type DatabaseTarget =
  | { dialect: "sqlite"; filename: string }
  | { dialect: "mysql"; host: string; port: number; user: string; password: string; database: string };

/** Parses a database URL; throws DatabaseUrlError (naming the URL without password) when it is not usable. */
export function parseDatabaseUrl(url: string): DatabaseTarget {
  const safe = redactUrl(url);
  if (typeof url !== "string" || url.length === 0) throw new DatabaseUrlError("database URL is empty (expected sqlite:<path> or mysql://user:pass@host:port/db)");
  if (url.startsWith("sqlite:")) {
    let file = url.slice("sqlite:".length);
    if (file.startsWith("//")) file = file.slice(2); // sqlite:///abs/path and sqlite://rel/path
    if (file.length === 0) throw new DatabaseUrlError(`database URL ${safe} names no file (expected sqlite:<path>)`, { db: safe });
    return { dialect: "sqlite", filename: file === ":memory:" ? ":memory:" : path.resolve(file) };
  }
  if (url.startsWith("mysql://") || url.startsWith("mariadb://")) {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new DatabaseUrlError(`database URL ${safe} is not a valid URL`, { db: safe });
    }
    const database = decodeURIComponent(u.pathname.replace(/^\//, ""));
    if (database.length === 0 || !/^[A-Za-z0-9_$-]{1,64}$/.test(database)) {
      throw new DatabaseUrlError(`database URL ${safe} must name a database (letters, digits, "_", "-", "$"): mysql://user:pass@host:port/db`, { db: safe });
    }
    return {
      dialect: "mysql",
      host: u.hostname.replace(/^\[|\]$/g, "") || "127.0.0.1",
      port: u.port ? Number(u.port) : 3306,
      user: decodeURIComponent(u.username) || "root",
      password: decodeURIComponent(u.password),
      database,
    };
  }
  throw new DatabaseUrlError(`database URL ${safe} has an unknown scheme (expected sqlite:<path> or mysql://user:pass@host:port/db)`, { db: safe });
}

function resolveOptions(opts: DatabaseOptions | undefined): Readonly<Required<DatabaseOptions>> {
  const merged = { ...DATABASE_DEFAULTS };
  for (const [k, v] of Object.entries(opts ?? {})) if (v !== undefined) (merged as any)[k] = v;
  const parsed = optionsSchema.safeParse(merged);
  if (!parsed.success) throw new ConfigError(`invalid database options: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  return Object.freeze(parsed.data);
}

/**
 * knex's own warnings go to our logger. The lock warnings are expected when
 * several registries start together (migrateLatest retries), and connection
 * failures reach the caller as DatabaseUnavailableError, so those are debug.
 */
const knexLog: Knex.Logger = {
  warn(message: unknown) {
    const text = String(message);
    if (/lock|migrate:unlock|Acquire connection error/i.test(text)) log.debug({ knex: text }, "knex");
    else log.warn({ knex: text }, "knex");
  },
  error(message: unknown) {
    log.error({ knex: String(message) }, "knex");
  },
  deprecate(method: string, alternative: string) {
    log.warn({ knex: `${method} is deprecated, use ${alternative}` }, "knex");
  },
  debug(message: unknown) {
    log.trace({ knex: String(message) }, "knex");
  },
};

/**
 * WAL pages written before SQLite copies them back into the database file
 * (its default is 1,000). A second of 10,000 nodes' heartbeats dirties
 * about as many pages (registry/store/knex/nodes.ts: one UPDATE per 500
 * names, rows spread over the table), so with the default every flush also
 * checkpointed, copying each page again; at 4,000 a page rewritten by
 * several flushes is copied once per checkpoint. Measured on a 10,000-row
 * nodes table, 2,000 heartbeats a second: SQLite CPU per heartbeat 6.2 ->
 * 4.7 µs. The price: a WAL file of up to ~16 MB instead of ~4 MB.
 */
export const SQLITE_WAL_AUTOCHECKPOINT = 4000;

/** Prepared statements kept per SQLite connection (by SQL text; the least recently used goes first). */
export const SQLITE_STATEMENT_CACHE = 256;

/**
 * Makes `conn.prepare` (better-sqlite3) reuse a statement already prepared
 * for the same SQL text. knex's better-sqlite3 dialect prepares every query
 * it runs anew (node_modules/knex/lib/dialects/better-sqlite3/index.js,
 * _query), and SQLite's prepare parses and plans the statement each time:
 * for the registry's hottest write (a second of heartbeats, one UPDATE of
 * 500 names: registry/store/knex/nodes.ts) that was as much CPU as running
 * it. Reuse is safe because knex runs each statement to completion at once
 * (all() or run(), never an iterator left open), SQLite re-prepares a
 * statement by itself after a schema change, and the only per-statement
 * setting knex touches, safe integers, is reset to the connection's
 * default (off: the store never turns it on) on each reuse.
 */
export function cacheStatements(conn: { prepare(sql: string): { safeIntegers(on: boolean): unknown } }, max = SQLITE_STATEMENT_CACHE): void {
  const prepare = conn.prepare.bind(conn);
  const cache = new Map<string, ReturnType<typeof prepare>>();
  conn.prepare = (sql: string) => {
    let stmt = cache.get(sql);
    if (stmt !== undefined) {
      cache.delete(sql);
      stmt.safeIntegers(false);
    } else {
      stmt = prepare(sql);
      if (cache.size >= max) cache.delete(cache.keys().next().value!);
    }
    cache.set(sql, stmt);
    return stmt;
  };
}

function sqliteConfig(filename: string, o: Required<DatabaseOptions>): Knex.Config {
  return {
    client: "better-sqlite3",
    connection: { filename },
    log: knexLog,
    useNullAsDefault: true,
    acquireConnectionTimeout: o.acquireTimeoutMs,
    pool: {
      min: 1,
      max: 1,
      afterCreate(conn: any, done: (err: Error | null, conn: unknown) => void) {
        try {
          conn.pragma(`busy_timeout = ${o.busyTimeoutMs}`);
          conn.pragma("foreign_keys = ON");
          conn.pragma("synchronous = NORMAL");
          conn.pragma(`wal_autocheckpoint = ${SQLITE_WAL_AUTOCHECKPOINT}`);
          cacheStatements(conn);
        } catch (err) {
          done(err as Error, conn);
          return;
        }
        if (filename === ":memory:") {
          done(null, conn);
          return;
        }
        // Switching a database to WAL takes an exclusive lock, and SQLite answers
        // SQLITE_BUSY at once (no busy handler) when another process is opening
        // the same new file at that moment: retry within the busy timeout. WAL
        // is stored in the file, so only the first opener ever switches it.
        const until = Date.now() + o.busyTimeoutMs;
        const tryWal = (): void => {
          try {
            if (String(conn.pragma("journal_mode", { simple: true })).toLowerCase() !== "wal") conn.pragma("journal_mode = WAL");
            done(null, conn);
          } catch (err) {
            if (/SQLITE_BUSY|database is locked/i.test(String((err as Error)?.message) + String((err as { code?: string })?.code)) && Date.now() < until) {
              setTimeout(tryWal, 25 + Math.floor(Math.random() * 50));
              return;
            }
            done(err as Error, conn);
          }
        };
        tryWal();
      },
    },
  };
}

function mysqlConfig(t: Extract<DatabaseTarget, { dialect: "mysql" }>, o: Required<DatabaseOptions>, withDatabase: boolean): Knex.Config {
  return {
    client: "mysql2",
    log: knexLog,
    connection: {
      host: t.host,
      port: t.port,
      user: t.user,
      password: t.password,
      ...(withDatabase ? { database: t.database } : {}),
      charset: "utf8mb4",
      connectTimeout: o.connectTimeoutMs,
      supportBigNumbers: true,
      bigNumberStrings: false,
      timezone: "Z",
    },
    acquireConnectionTimeout: o.acquireTimeoutMs,
    pool: {
      min: 0,
      max: o.poolMax,
      afterCreate(conn: any, done: (err: Error | null, conn: unknown) => void) {
        conn.query("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED", (err1: Error | null) => {
          if (err1) return done(err1, conn);
          conn.query("SET time_zone = '+00:00'", (err2: Error | null) => done(err2, conn));
        });
      },
    },
  };
}

async function createMysqlDatabase(t: Extract<DatabaseTarget, { dialect: "mysql" }>, o: Required<DatabaseOptions>): Promise<void> {
  const admin = knexFactory(mysqlConfig(t, { ...o, poolMax: 1 }, false));
  try {
    await admin.raw("CREATE DATABASE IF NOT EXISTS ?? CHARACTER SET utf8mb4 COLLATE utf8mb4_bin", [t.database]);
  } finally {
    await admin.destroy();
  }
}

/**
 * Opens the database named by `url` and checks that it answers. Throws
 * DatabaseUrlError for a bad URL and DatabaseUnavailableError (UNAVAILABLE,
 * naming the URL without password) when the database cannot be reached.
 * Does not run migrations (see migrateLatest / openStore).
 */
export async function openDatabase(url: string, opts?: DatabaseOptions): Promise<Knex> {
  const target = parseDatabaseUrl(url);
  const o = resolveOptions(opts);
  const safeUrl = redactUrl(url);
  const password = target.dialect === "mysql" ? target.password : "";
  const scrub = (s: string): string => (password.length > 0 ? s.split(password).join("***") : s);
  const info: DatabaseInfo = { dialect: target.dialect, safeUrl, scrub };

  const make = (): Knex => {
    if (target.dialect === "sqlite") return knexFactory(sqliteConfig(target.filename, o));
    return knexFactory(mysqlConfig(target, o, true));
  };
  if (target.dialect === "sqlite" && target.filename !== ":memory:") {
    try {
      fs.mkdirSync(path.dirname(target.filename), { recursive: true });
    } catch (err) {
      throw new DatabaseUnavailableError(`cannot open database ${safeUrl}: ${(err as Error).message}`, { db: safeUrl }, err);
    }
  }

  // At open time every failure means "cannot use this database": UNAVAILABLE, naming it.
  const unavailable = (err: unknown): unknown =>
    isConnectionError(err)
      ? toStoreError(err, safeUrl, scrub)
      : new DatabaseUnavailableError(`cannot open database ${safeUrl}: ${scrub(String((err as Error)?.message ?? err))}`, { db: safeUrl }, err);

  let db = make();
  try {
    await db.raw("select 1");
  } catch (err) {
    await db.destroy().catch(() => undefined);
    if (!(target.dialect === "mysql" && (err as any)?.code === "ER_BAD_DB_ERROR" && o.createDatabase)) throw unavailable(err);
    log.info({ db: safeUrl }, "database does not exist; creating it");
    try {
      await createMysqlDatabase(target, o);
      db = make();
      await db.raw("select 1");
    } catch (err2) {
      await db.destroy().catch(() => undefined);
      throw unavailable(err2);
    }
  }
  infos.set(db, info);
  log.info({ db: safeUrl, dialect: target.dialect }, "database opened");
  return db;
}
