/**
 * Degraded, not dead: a registry whose MySQL connection is cut while running
 * keeps answering Query from memory, fails writes with UNAVAILABLE naming the
 * database without its password, and recovers when the connection returns.
 * The cut is real: registry -> TCP forwarder (in this test) -> MariaDB.
 * MySQL only (SGRID_TEST_MYSQL_URL).
 */
import { expect } from "chai";
import { Status } from "sgridnext";
import { AdminProxy } from "sgridnext/gen/sgrid/registry/v1/admin.sgrid";
import { DatabaseUnavailableError } from "../../registry/errors";
import { openStore } from "../../registry/store";
import { type TestDatabase, dialects, rejects } from "./helpers/db";
import { TcpForwarder, type TestRegistry, seedObj, startTestRegistry, viaPort, waitFor } from "./helpers/registry";

const mysql = dialects().find((d) => d.name === "mysql");

(mysql ? describe : describe.skip)("registry degraded mode [mysql]", () => {
  let db: TestDatabase;
  let forwarder: TcpForwarder;
  let reg: TestRegistry;

  before(async () => {
    db = await mysql!.create();
    const u = new URL(db.url);
    forwarder = new TcpForwarder({ host: u.hostname, port: u.port ? Number(u.port) : 3306 });
    const port = await forwarder.listen();
    // The registry reaches MariaDB only through the forwarder.
    reg = await startTestRegistry(mysql!, {}, { ...db, url: viaPort(db.url, port) });
  });
  after(async () => {
    await reg?.cleanup();
    await forwarder?.close();
    await db?.drop();
  });

  it("answers Query from memory while the database is cut, fails writes UNAVAILABLE, and recovers", async () => {
    const store = reg.server.store;
    const s = await seedObj(store, { nodes: 2 });
    reg.server.changes.kick();
    const before = await waitFor("two active endpoints", async () => {
      const r = await reg.query.findObject({ obj: s.full });
      return r.active.length === 2 ? r : undefined;
    });
    const ac = new AbortController();
    const watch = reg.query.watchObject({ obj: s.full }, { signal: ac.signal })[Symbol.asyncIterator]();
    expect((await watch.next()).value.revision).to.equal(before.revision);

    const admin = reg.comm.stringToProxy(AdminProxy, reg.target, { timeoutMs: 20_000 });
    const { token } = await admin.login({ user: "admin", password: "test-admin-pw" });
    const auth = { metadata: { authorization: `Bearer ${token}` } };

    forwarder.cut();
    await waitFor("the change feed to notice the outage", () => !reg.server.changes.healthy, 30_000);

    // Reads: the last good answers, from memory, again and again.
    for (let i = 0; i < 5; i++) expect(await reg.query.findObject({ obj: s.full })).to.deep.equal(before);
    let err = await rejects(reg.query.findObject({ obj: "Never.Seen.Obj" }));
    expect(err.status).to.equal(Status.NOT_FOUND);

    // Writes: UNAVAILABLE, retryable, naming the database without a password.
    err = await rejects(store.instances.setDesired(s.instances[0]!.id, { state: "inactive" }));
    expect(err).to.be.instanceOf(DatabaseUnavailableError);
    expect(err.status).to.equal(Status.UNAVAILABLE);
    expect(err.retryable).to.equal(true);
    expect(err.message).to.contain(`127.0.0.1:${forwarder.port}`);
    const pw = new URL(db.url).password;
    if (pw) expect(err.message).to.not.contain(pw);
    // The same through the Admin API: UNAVAILABLE on the wire, rebuilt as the same class.
    err = await rejects(admin.createTask({ kind: "stop", instanceIds: [s.instances[0]!.id] }, auth));
    expect(err.status).to.equal(Status.UNAVAILABLE);
    expect(err.code).to.equal("DATABASE_UNAVAILABLE");

    forwarder.restore();
    await waitFor("the change feed to see the database again", () => reg.server.changes.healthy, 30_000);
    // Writes work again, and the change reaches readers and the open watch.
    await waitFor("a write to succeed", async () => {
      await store.instances.setDesired(s.instances[0]!.id, { state: "inactive" });
      return true;
    }, 30_000, 200);
    const after = await waitFor("the new answer", async () => {
      const r = await reg.query.findObject({ obj: s.full });
      return r.active.length === 1 ? r : undefined;
    });
    expect(after.revision).to.not.equal(before.revision);
    const next = await watch.next();
    expect(next.value.revision).to.equal(after.revision);
    ac.abort();
  });

  it("serves Query from memory across a cut made while nothing was happening, and picks up writes made by others meanwhile", async () => {
    const store = reg.server.store;
    const s = await seedObj(store, { nodes: 1 });
    reg.server.changes.kick();
    await waitFor("one active endpoint", async () => (await reg.query.findObject({ obj: s.full })).active.length === 1);
    forwarder.cut();
    await waitFor("the outage to be noticed", () => !reg.server.changes.healthy, 30_000);
    // Another writer (another registry's view of the same database) changes the Obj while this one is cut off.
    const other = await openStore(db.url);
    try {
      await other.instances.setDesired(s.instances[0]!.id, { state: "inactive" });
    } finally {
      await other.close();
    }
    expect((await reg.query.findObject({ obj: s.full })).active).to.have.length(1);
    forwarder.restore();
    await waitFor("the other writer's change", async () => (await reg.query.findObject({ obj: s.full })).active.length === 0, 30_000);
  });
});
