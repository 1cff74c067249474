/**
 * Opening databases, URL redaction, migrations (idempotent, concurrent,
 * locked), restarts that lose nothing, and change detection across two
 * stores on one database. Runs once per dialect.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import { Status } from "sgridnext";
import { DatabaseUnavailableError, DatabaseUrlError, MigrationFailedError, MigrationLockedError } from "../../registry/errors";
import { KnexStore, MIGRATIONS_TABLE, migrateLatest, migrationStatus, openDatabase, openStore, parseDatabaseUrl, redactUrl } from "../../registry/store";
import * as initial from "../../registry/store/migrations/0001_initial";
import { TOPICS } from "../../registry/store/records";
import { MIGRATIONS } from "../../registry/store/migrations";

const ALL_MIGRATIONS = MIGRATIONS.map((m) => m.name);
import { type TestDatabase, dropMysqlDatabase, fakeSha, forEachDialect, migrateInProcesses, mysqlBaseUrl, rejects } from "./helpers/db";

const TABLES = ["revisions", "nodes", "servers", "patches", "instances", "config_files", "config_versions", "tasks", "task_items", "users", "user_roles", "events"];

describe("registry store: database URLs", () => {
  it("redacts the password from URLs", () => {
    expect(redactUrl("mysql://root:s3cret@db.example:3306/sgrid")).to.equal("mysql://root:***@db.example:3306/sgrid");
    expect(redactUrl("mysql://u:p%40ss@h/db")).to.equal("mysql://u:***@h/db");
    expect(redactUrl("mysql://u:p@ss@h/db")).to.equal("mysql://u:***@h/db");
    expect(redactUrl("mysql://root@h:3306/db")).to.equal("mysql://root@h:3306/db");
    expect(redactUrl("mysql://h/db?user=u&password=x1&ssl=1")).to.equal("mysql://h/db?user=u&password=***&ssl=1");
    expect(redactUrl("sqlite:/var/lib/sgrid/registry.db")).to.equal("sqlite:/var/lib/sgrid/registry.db");
  });

  it("parses sqlite and mysql URLs", () => {
    expect(parseDatabaseUrl("sqlite:data/r.db")).to.deep.equal({ dialect: "sqlite", filename: path.resolve("data/r.db") });
    expect(parseDatabaseUrl("sqlite:///tmp/x.db")).to.deep.equal({ dialect: "sqlite", filename: "/tmp/x.db" });
    expect(parseDatabaseUrl("sqlite::memory:")).to.deep.equal({ dialect: "sqlite", filename: ":memory:" });
    expect(parseDatabaseUrl("mysql://app:p%40ss@10.0.0.5:3307/sgrid")).to.deep.equal({
      dialect: "mysql", host: "10.0.0.5", port: 3307, user: "app", password: "p@ss", database: "sgrid",
    });
  });

  it("refuses bad URLs with a message that names the URL without its password", () => {
    for (const url of ["postgres://u:topsecret@h/db", "mysql://u:topsecret@h/", "mysql://u:topsecret@h/bad;name", "sqlite:", ""]) {
      let err: any;
      try {
        parseDatabaseUrl(url);
      } catch (e) {
        err = e;
      }
      expect(err, url).to.be.instanceOf(DatabaseUrlError);
      expect(err.code).to.equal("DATABASE_URL_INVALID");
      expect(err.status).to.equal(Status.INVALID_ARGUMENT);
      expect(err.message).not.to.contain("topsecret");
      if (url.includes("topsecret")) expect(err.message).to.contain("u:***@h");
    }
  });

  it("reports an unreachable MySQL as DATABASE_UNAVAILABLE naming the URL without password", async () => {
    const err = await rejects(openDatabase("mysql://root:hunter2@127.0.0.1:1/sgrid", { connectTimeoutMs: 2000, acquireTimeoutMs: 3000 }));
    expect(err).to.be.instanceOf(DatabaseUnavailableError);
    expect(err.code).to.equal("DATABASE_UNAVAILABLE");
    expect(err.status).to.equal(Status.UNAVAILABLE);
    expect(err.retryable).to.equal(true);
    expect(err.message).to.contain("mysql://root:***@127.0.0.1:1/sgrid");
    expect(err.message).not.to.contain("hunter2");
  });

  it("opens a private in-memory SQLite database", async () => {
    const store = await openStore("sqlite::memory:");
    try {
      await store.servers.create({ application: "Mem", name: "S", type: "node" });
      expect((await store.servers.list()).map((x) => x.fullName)).to.deep.equal(["Mem.S"]);
    } finally {
      await store.close();
    }
  });

  it("reports a SQLite file that cannot be created as DATABASE_UNAVAILABLE naming the path", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sgrid-store-bad-"));
    try {
      const blocker = path.join(dir, "file");
      fs.writeFileSync(blocker, "not a directory");
      const err = await rejects(openDatabase(`sqlite:${blocker}/sub/r.db`));
      expect(err).to.be.instanceOf(DatabaseUnavailableError);
      expect(err.message).to.contain(`${blocker}/sub/r.db`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

forEachDialect("registry store: migrations and restarts", (d) => {
  const cleanups: Array<() => Promise<void>> = [];
  async function database(): Promise<TestDatabase> {
    const db = await d.create();
    cleanups.push(() => db.drop());
    return db;
  }
  async function knexFor(db: TestDatabase) {
    const k = await openDatabase(db.url);
    cleanups.unshift(() => k.destroy());
    return k;
  }
  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.shift()!().catch(() => undefined);
  });

  it("migrates a new database, then finds nothing to do (idempotent)", async () => {
    const db = await database();
    const k = await knexFor(db);
    expect((await migrationStatus(k)).pending).to.deep.equal(ALL_MIGRATIONS);
    expect(await migrateLatest(k)).to.deep.equal({ applied: ALL_MIGRATIONS });
    expect(await migrateLatest(k)).to.deep.equal({ applied: [] });
    expect(await migrationStatus(k)).to.deep.equal({ applied: ALL_MIGRATIONS, pending: [] });
    for (const t of TABLES) expect(await k.schema.hasTable(t), t).to.equal(true);
    // The migration itself is idempotent table by table (MySQL DDL is not transactional).
    await initial.up(k);
    expect((await k("revisions").count({ n: "*" }))[0].n).to.satisfy((n: unknown) => Number(n) === TOPICS.length);
  });

  it("lets several registry processes migrate one database at the same moment", async () => {
    const db = await database();
    const results = await migrateInProcesses(db.url, 3);
    // Exactly one process applied the migration; the others waited for the lock and found nothing to do.
    expect(results.flatMap((r) => r.applied)).to.deep.equal(ALL_MIGRATIONS);
    const k = await knexFor(db);
    expect((await k(MIGRATIONS_TABLE).select("name")).map((r: any) => r.name)).to.deep.equal(ALL_MIGRATIONS);
    const locks = await k(`${MIGRATIONS_TABLE}_lock`).select("*");
    expect(locks).to.have.length(1);
    expect(Number(locks[0].is_locked)).to.equal(0);
    for (const t of TABLES) expect(await k.schema.hasTable(t), t).to.equal(true);
  });

  if (d.name === "mysql") {
    it("lets several pools in one process migrate at the same moment", async () => {
      const db = await database();
      const ks = await Promise.all([1, 2, 3, 4].map(() => knexFor(db)));
      const results = await Promise.all(ks.map((k) => migrateLatest(k, { initialBackoffMs: 10, maxBackoffMs: 200 })));
      expect(results.flatMap((r) => r.applied)).to.deep.equal(ALL_MIGRATIONS);
      expect(await ks[0](`${MIGRATIONS_TABLE}_lock`).select("*")).to.have.length(1);
    });
  }

  it("waits for a held migration lock, then fails with MIGRATION_LOCKED naming the database", async () => {
    const db = await database();
    const k = await knexFor(db);
    await migrateLatest(k);
    await k(`${MIGRATIONS_TABLE}_lock`).update({ is_locked: 1 });
    const err = await rejects(migrateLatest(k, { lockTimeoutMs: 300, initialBackoffMs: 20, maxBackoffMs: 50 }));
    expect(err).to.be.instanceOf(MigrationLockedError);
    expect(err.message).to.contain(redactUrl(db.url));
    expect(err.message).to.contain(`${MIGRATIONS_TABLE}_lock`);
    await k(`${MIGRATIONS_TABLE}_lock`).update({ is_locked: 0 });
    expect(await migrateLatest(k)).to.deep.equal({ applied: [] });
  });

  it("refuses a database migrated by a newer version with MIGRATION_FAILED", async () => {
    const db = await database();
    const k = await knexFor(db);
    await migrateLatest(k);
    await k(MIGRATIONS_TABLE).insert({ name: "9999_from_the_future", batch: 2, migration_time: new Date() });
    const err = await rejects(migrateLatest(k));
    expect(err).to.be.instanceOf(MigrationFailedError);
    expect(err.message).to.contain("9999_from_the_future").and.contain(redactUrl(db.url));
  });

  it("repairs a lock table left with several rows by an unguarded race", async () => {
    const db = await database();
    const k = await knexFor(db);
    await migrateLatest(k);
    await k(`${MIGRATIONS_TABLE}_lock`).insert({ index: 2, is_locked: 0 });
    expect(await migrateLatest(k, { lockTimeoutMs: 2000 })).to.deep.equal({ applied: [] });
    expect(await k(`${MIGRATIONS_TABLE}_lock`).select("*")).to.have.length(1);
  });

  it("loses nothing across close and reopen (a registry restart)", async () => {
    const db = await database();
    let store = await openStore(db.url);
    cleanups.unshift(() => store.close());
    await store.nodes.upsert({ name: "node-a.example", address: "10.0.0.1", agentVersion: "1.2.3", hostInfo: { cpus: 4, os: "linux" } });
    await store.servers.create({ application: "Demo", name: "Hello", type: "node", defaults: { env: { A: "1" } } });
    const patch = await store.patches.create({ application: "Demo", server: "Hello", sha256: fakeSha("p1"), size: 1234, comment: "first", uploader: "admin", storageKey: "sha256/ab" });
    await store.servers.update("Demo", "Hello", { defaultPatchId: patch.id });
    const inst = await store.instances.create({
      application: "Demo", server: "Hello", node: "node-a.example",
      adapters: [{ obj: "GreeterObj", host: "10.0.0.1", port: 10000, protocol: "sgrid", weight: 50 }],
      env: { LOG: "debug" }, limits: { memoryBytes: 256 * 1024 * 1024, cpuCores: 0.5, pids: 64 }, healthCheck: { type: "tcp", port: 10000 },
      desiredState: "active",
    });
    await store.instances.reportObserved(inst.id, { state: "active", pid: 4242, patchId: patch.id, restarts: 2, lastExitReason: "OOM killed" });
    await store.configs.put({ level: "application", application: "Demo" }, "app.conf", { content: "x=1\n", author: "admin" });
    await store.configs.put({ level: "instance", application: "Demo", server: "Hello", node: "node-a.example" }, "app.conf", { content: "x=2\n", author: "admin", comment: "override" });
    const task = await store.tasks.create({ kind: "publish", params: { patchId: patch.id, batchSize: 1 }, createdBy: "admin", items: [{ instanceId: inst.id, batch: 1 }] });
    await store.tasks.setStatus(task.id, "running");
    await store.tasks.setItemStatus(task.items[0].id, "RUNNING");
    await store.users.create({ name: "alice", passwordHash: "scrypt$abc" });
    await store.users.grant("alice", "Demo", "operator");
    await store.events.append({ actor: "alice", kind: "instance.oom", target: "Demo.Hello@node-a.example", message: "killed", data: { rss: 1 } });

    const before = {
      nodes: await store.nodes.list(), servers: await store.servers.list(), instances: await store.instances.list(),
      patches: await store.patches.list("Demo", "Hello"), files: await store.configs.listForInstance("Demo", "Hello", "node-a.example"),
      layers: await store.configs.layersForInstance("Demo", "Hello", "node-a.example", "app.conf"),
      unfinished: await store.tasks.listUnfinished(), users: await store.users.list(), events: await store.events.list(),
      revisions: await store.revisions.get(),
    };
    await store.close();
    store = await openStore(db.url);
    const after = {
      nodes: await store.nodes.list(), servers: await store.servers.list(), instances: await store.instances.list(),
      patches: await store.patches.list("Demo", "Hello"), files: await store.configs.listForInstance("Demo", "Hello", "node-a.example"),
      layers: await store.configs.layersForInstance("Demo", "Hello", "node-a.example", "app.conf"),
      unfinished: await store.tasks.listUnfinished(), users: await store.users.list(), events: await store.events.list(),
      revisions: await store.revisions.get(),
    };
    expect(after).to.deep.equal(before);
    expect(after.unfinished).to.have.length(1);
    expect(after.unfinished[0].status).to.equal("running");
    expect(after.unfinished[0].items[0].status).to.equal("RUNNING");
    expect(after.instances[0].limits).to.deep.equal({ memoryBytes: 256 * 1024 * 1024, cpuCores: 0.5, pids: 64 });
  });

  it("lets a second store on the same database notice writes through the revision counters", async () => {
    const db = await database();
    const a = await openStore(db.url);
    cleanups.unshift(() => a.close());
    const b = await openStore(db.url);
    cleanups.unshift(() => b.close());
    const r0 = await b.revisions.get();
    await a.servers.create({ application: "Shared", name: "S1", type: "binary" });
    const r1 = await b.revisions.get();
    expect(r1.servers).to.be.greaterThan(r0.servers);
    expect(r1.nodes).to.equal(r0.nodes);
    expect((await b.servers.get("Shared", "S1")).type).to.equal("binary");
    await a.nodes.upsert({ name: "n1", address: "h", agentVersion: "1" });
    const r2 = await b.revisions.get();
    await a.nodes.heartbeat("n1"); // online already: cheap, no bump
    expect((await b.revisions.get()).nodes).to.equal(r2.nodes);
    await a.nodes.setOnline("n1", false);
    await a.nodes.heartbeat("n1"); // back online: bump
    expect((await b.revisions.get()).nodes).to.equal(r2.nodes + 2);
  });

  it("commits a transaction's writes together, or none of them", async () => {
    const db = await database();
    const store = await openStore(db.url);
    cleanups.unshift(() => store.close());
    const r0 = await store.revisions.get();
    const err = await rejects(store.transaction(async (tx) => {
      await tx.servers.create({ application: "Tx", name: "A", type: "node" });
      await tx.patches.create({ application: "Tx", server: "A", sha256: fakeSha("t"), size: 1, uploader: "admin", storageKey: "k" });
      throw new Error("boom");
    }));
    expect(err.message).to.equal("boom");
    expect(await store.servers.find("Tx", "A")).to.equal(undefined);
    expect(await store.revisions.get()).to.deep.equal(r0);
    const made = await store.transaction(async (tx) => {
      await tx.servers.create({ application: "Tx", name: "B", type: "node" });
      return tx.transaction((inner) => inner.patches.create({ application: "Tx", server: "B", sha256: fakeSha("u"), size: 1, uploader: "admin", storageKey: "k" }));
    });
    expect(made.version).to.equal(1);
    const r1 = await store.revisions.get();
    expect(r1.servers).to.equal(r0.servers + 1);
    expect(r1.patches).to.equal(r0.patches + 1);
  });

  if (d.name === "mysql") {
    it("creates a missing MySQL database, unless told not to", async () => {
      const u = new URL(mysqlBaseUrl()!);
      u.pathname = `/sgrid_test_create_${process.pid}_${Date.now() % 100000}`;
      const url = u.toString();
      cleanups.push(() => dropMysqlDatabase(u.pathname.slice(1)));
      const err = await rejects(openDatabase(url, { createDatabase: false }));
      expect(err).to.be.instanceOf(DatabaseUnavailableError);
      expect(err.message).to.contain(redactUrl(url));
      const store = await openStore(url);
      cleanups.unshift(() => store.close());
      await store.nodes.upsert({ name: "n", address: "a", agentVersion: "1" });
      expect(await store.nodes.list()).to.have.length(1);
    });

    it("recovers when its connections are cut (a database restart), reporting DATABASE_UNAVAILABLE meanwhile", async () => {
      const db = await database();
      const store = await openStore(db.url, { poolMax: 3 });
      cleanups.unshift(() => store.close());
      await store.servers.create({ application: "Cut", name: "S", type: "node" });
      await Promise.all([store.nodes.list(), store.servers.list(), store.instances.list()]); // fill the pool
      const admin = await knexFor(db);
      const [rows] = await admin.raw("SELECT ID AS id FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()", [new URL(db.url).pathname.slice(1)]);
      expect(rows.length).to.be.greaterThan(0);
      for (const r of rows) await admin.raw(`KILL ${Number(r.id)}`);
      let failures = 0;
      for (let i = 0; i < 6; i++) {
        try {
          expect((await store.servers.get("Cut", "S")).fullName).to.equal("Cut.S");
          break;
        } catch (err) {
          expect(err).to.be.instanceOf(DatabaseUnavailableError);
          expect((err as Error).message).to.contain(redactUrl(db.url));
          failures++;
        }
      }
      expect(failures).to.be.lessThan(6);
      await store.servers.create({ application: "Cut", name: "T", type: "node" });
    });
  }

  it("answers ping, and reports DATABASE_UNAVAILABLE once closed; close is idempotent", async () => {
    const db = await database();
    const store: KnexStore = await openStore(db.url);
    await store.ping();
    expect(store.dialect).to.equal(d.name);
    expect(store.safeUrl).to.equal(redactUrl(db.url));
    await store.close();
    await store.close();
    const err = await rejects(store.nodes.list());
    expect(err).to.be.instanceOf(DatabaseUnavailableError);
    expect(err.message).to.contain(redactUrl(db.url));
  });
});
