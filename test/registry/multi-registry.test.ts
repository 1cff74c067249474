/**
 * Several registries, one database: two `sgrid registry` processes started at
 * the same moment on one fresh MySQL database (both migrate it) give the same
 * FindObject answers, and a change made through one (or by a third writer)
 * reaches a WatchObject held on the other. MySQL only (SGRID_TEST_MYSQL_URL).
 */
import fs from "node:fs";
import { expect } from "chai";
import { Communicator } from "sgridnext";
import type { FindObjectReply } from "sgridnext/gen/sgrid/registry/v1/query";
import { AdminProxy } from "sgridnext/gen/sgrid/registry/v1/admin.sgrid";
import { QueryProxy } from "sgridnext/gen/sgrid/registry/v1/query.sgrid";
import { type KnexStore, openStore } from "../../registry/store";
import { type TestDatabase, dialects } from "./helpers/db";
import { type RegistryProcess, seedObj, startRegistryProcess, tempDir, waitFor } from "./helpers/registry";

const mysql = dialects().find((d) => d.name === "mysql");

(mysql ? describe : describe.skip)("several registries on one database [mysql]", () => {
  let db: TestDatabase;
  let a: RegistryProcess | undefined;
  let b: RegistryProcess | undefined;
  let store: KnexStore;
  const comm = new Communicator();
  const dirs: string[] = [];

  before(async () => {
    db = await mysql!.create();
    const start = () => {
      const dir = tempDir("sgrid-reg-multi-");
      dirs.push(dir);
      return startRegistryProcess(["--db", db.url, "--listen", "127.0.0.1:0", "--data-dir", dir, "--heartbeat-timeout", "10m"], { SGRID_ADMIN_PASSWORD: "multi-admin-pw" });
    };
    [a, b] = await Promise.all([start(), start()]);
    // The test's own connection: a third writer, like an operator's tool.
    store = await openStore(db.url);
  });
  after(async () => {
    comm.close();
    await Promise.all([a?.stop(), b?.stop()]);
    await store?.close();
    await db?.drop();
    dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true }));
  });

  it("gives the same FindObject answers from both processes", async () => {
    const qa = comm.stringToProxy(QueryProxy, a!.address);
    const qb = comm.stringToProxy(QueryProxy, b!.address);
    const s = await seedObj(store, { nodes: 3 });
    await store.instances.reportObserved(s.instances[2]!.id, { state: "failed" });
    const want = (r: FindObjectReply) => r.active.length === 2 && r.inactive.length === 1;
    const ra = await waitFor("registry A's answer", async () => { const r = await qa.findObject({ obj: s.full }); return want(r) ? r : undefined; });
    const rb = await waitFor("registry B's answer", async () => { const r = await qb.findObject({ obj: s.full }); return want(r) ? r : undefined; });
    expect(rb).to.deep.equal(ra);
  });

  it("delivers a change written while watching on the other process to its WatchObject", async () => {
    const qb = comm.stringToProxy(QueryProxy, b!.address);
    const s = await seedObj(store, { nodes: 2 });
    await waitFor("registry B to know the Obj", async () => (await qb.findObject({ obj: s.full })).active.length === 2);
    const ac = new AbortController();
    const watch = qb.watchObject({ obj: s.full }, { signal: ac.signal })[Symbol.asyncIterator]();
    const first = await watch.next();
    expect(first.value.active).to.have.length(2);
    await store.instances.setDesired(s.instances[0]!.id, { state: "inactive" });
    const next = await watch.next();
    expect(next.value.active.map((e: { instanceId: number }) => e.instanceId)).to.deep.equal([s.instances[1]!.id]);
    ac.abort();
  });

  it("delivers a stop task started through one process to a WatchObject held on the other", async () => {
    const adminA = comm.stringToProxy(AdminProxy, a!.address);
    const qb = comm.stringToProxy(QueryProxy, b!.address);
    const s = await seedObj(store, { nodes: 2 });
    await waitFor("registry B to know the Obj", async () => (await qb.findObject({ obj: s.full })).active.length === 2);
    const ac = new AbortController();
    const watch = qb.watchObject({ obj: s.full }, { signal: ac.signal })[Symbol.asyncIterator]();
    expect((await watch.next()).value.active).to.have.length(2);
    const { token } = await adminA.login({ user: "admin", password: "multi-admin-pw" });
    await adminA.createTask({ kind: "stop", instanceIds: [s.instances[1]!.id] }, { metadata: { authorization: `Bearer ${token}` } });
    const next = await watch.next();
    expect(next.value.active.map((e: { instanceId: number }) => e.instanceId)).to.deep.equal([s.instances[0]!.id]);
    ac.abort();
  });

  it("both processes stop cleanly on SIGTERM", async () => {
    const [ea, eb] = await Promise.all([a!.stop(), b!.stop()]);
    expect(ea).to.deep.equal({ code: 0, signal: null });
    expect(eb).to.deep.equal({ code: 0, signal: null });
    a = b = undefined;
  });
});
