/**
 * Shared database helpers for the registry suites: the same suite runs once
 * per dialect, SQLite always and MySQL/MariaDB when SGRID_TEST_MYSQL_URL is
 * set (e.g. `mysql://root@127.0.0.1:3306/`). Each test database is private:
 * a temp directory for SQLite, a uniquely named database for MySQL, both
 * removed by `drop()`.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import crypto from "node:crypto";
import knexFactory from "knex";
import { type KnexStore, type OpenStoreOptions, openStore } from "../../../registry/store";

export type DialectName = "sqlite" | "mysql";

export interface TestDatabase {
  dialect: DialectName;
  /** URL to open (no password in the SQLite case; whatever the env gave for MySQL). */
  url: string;
  /** Removes the database (idempotent). */
  drop(): Promise<void>;
}

export interface DialectCase {
  name: DialectName;
  /** Creates a new, empty, private database. */
  create(): Promise<TestDatabase>;
}

/** The MySQL server URL from the environment, without a database name. */
export function mysqlBaseUrl(): string | undefined {
  const url = process.env.SGRID_TEST_MYSQL_URL;
  return url && url.length > 0 ? url : undefined;
}

function uniqueSuffix(): string {
  return `${process.pid}_${crypto.randomBytes(4).toString("hex")}`;
}

const sqliteCase: DialectCase = {
  name: "sqlite",
  async create() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sgrid-store-"));
    return {
      dialect: "sqlite",
      url: `sqlite:${path.join(dir, "sub", "registry.db")}`,
      async drop() {
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

function mysqlAdmin(base: string) {
  const u = new URL(base);
  return knexFactory({
    client: "mysql2",
    connection: {
      host: u.hostname || "127.0.0.1",
      port: u.port ? Number(u.port) : 3306,
      user: decodeURIComponent(u.username) || "root",
      password: decodeURIComponent(u.password),
    },
    pool: { min: 0, max: 1 },
  });
}

function mysqlCase(base: string): DialectCase {
  return {
    name: "mysql",
    async create() {
      const name = `sgrid_test_${uniqueSuffix()}`;
      const admin = mysqlAdmin(base);
      try {
        await admin.raw("CREATE DATABASE ?? CHARACTER SET utf8mb4 COLLATE utf8mb4_bin", [name]);
      } finally {
        await admin.destroy();
      }
      const u = new URL(base);
      u.pathname = `/${name}`;
      let dropped = false;
      return {
        dialect: "mysql",
        url: u.toString(),
        async drop() {
          if (dropped) return;
          dropped = true;
          const a = mysqlAdmin(base);
          try {
            await a.raw("DROP DATABASE IF EXISTS ??", [name]);
          } finally {
            await a.destroy();
          }
        },
      };
    },
  };
}

/** Drops a MySQL database on the server of SGRID_TEST_MYSQL_URL (idempotent). */
export async function dropMysqlDatabase(name: string): Promise<void> {
  const base = mysqlBaseUrl();
  if (!base) return;
  const a = mysqlAdmin(base);
  try {
    await a.raw("DROP DATABASE IF EXISTS ??", [name]);
  } finally {
    await a.destroy();
  }
}

/** The dialects to run: SQLite, plus MySQL when SGRID_TEST_MYSQL_URL is set. */
export function dialects(): DialectCase[] {
  const base = mysqlBaseUrl();
  return base ? [sqliteCase, mysqlCase(base)] : [sqliteCase];
}

/** Declares `describe(title [dialect])` once per dialect. */
export function forEachDialect(title: string, body: (d: DialectCase) => void): void {
  for (const d of dialects()) describe(`${title} [${d.name}]`, () => body(d));
}

/**
 * A migrated store on a new private database, for one describe block:
 * call in `before`, and `cleanup()` in `after`.
 */
export async function freshStore(d: DialectCase, opts?: OpenStoreOptions): Promise<{ store: KnexStore; db: TestDatabase; cleanup(): Promise<void> }> {
  const db = await d.create();
  let store: KnexStore;
  try {
    store = await openStore(db.url, opts);
  } catch (err) {
    await db.drop();
    throw err;
  }
  return {
    store,
    db,
    async cleanup() {
      await store.close();
      await db.drop();
    },
  };
}

let counter = 0;
/** A name unique within this test process (letters, digits and "_" only), for isolating tests sharing one database. */
export function uniq(prefix: string): string {
  counter++;
  return `${prefix}${counter}_${crypto.randomBytes(2).toString("hex")}`;
}

/** A sha256-looking hex string derived from a label. */
export function fakeSha(label: string): string {
  return crypto.createHash("sha256").update(label).digest("hex");
}

/** Awaits a promise expected to reject; returns the error (fails the test when it resolves). */
export async function rejects(p: Promise<unknown>): Promise<any> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error("expected the promise to reject, but it resolved");
}

/**
 * Starts `count` processes that each migrate `url`, releases them at the same
 * moment, and returns what each applied. Kills them all on failure.
 */
export async function migrateInProcesses(url: string, count: number, timeoutMs = 60_000): Promise<Array<{ applied: string[] }>> {
  const { spawn } = await import("node:child_process");
  const script = path.join(__dirname, "migrate-child.js");
  const children = Array.from({ length: count }, () =>
    spawn(process.execPath, [script, url], { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, SGRID_LOG_LEVEL: "warn" } }));
  const outputs = children.map((c) => {
    let out = "";
    let err = "";
    c.stdout.on("data", (b: Buffer) => (out += b.toString()));
    c.stderr.on("data", (b: Buffer) => (err += b.toString()));
    const ready = new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (out.includes("ready\n")) resolve();
      };
      c.stdout.on("data", check);
      c.once("exit", (code) => reject(new Error(`migrate child exited (${code}) before ready: ${err}`)));
    });
    const done = new Promise<{ applied: string[] }>((resolve, reject) => {
      c.once("exit", (code) => {
        if (code !== 0) return reject(new Error(`migrate child exited with ${code}: ${err}`));
        resolve(JSON.parse(out.split("\n").filter((l) => l.startsWith("{")).pop() ?? "null"));
      });
    });
    done.catch(() => undefined);
    return { ready, done };
  });
  const timer = setTimeout(() => children.forEach((c) => c.kill("SIGKILL")), timeoutMs);
  try {
    await Promise.all(outputs.map((o) => o.ready));
    for (const c of children) c.stdin.write("go\n");
    return await Promise.all(outputs.map((o) => o.done));
  } finally {
    clearTimeout(timer);
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  }
}
