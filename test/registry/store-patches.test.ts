/**
 * Patches in the registry store: per-server numbering (also under concurrent
 * uploads through two stores), lookups, and removal rules. Runs once per dialect.
 */
import { expect } from "chai";
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from "sgridnext";
import { type KnexStore, openStore } from "../../registry/store";
import { type DialectCase, type TestDatabase, fakeSha, forEachDialect, freshStore, rejects, uniq } from "./helpers/db";

forEachDialect("registry store: patches", (d: DialectCase) => {
  let store: KnexStore;
  let db: TestDatabase;
  let cleanup: () => Promise<void>;
  before(async () => ({ store, db, cleanup } = await freshStore(d)));
  after(async () => cleanup?.());

  const upload = (s: KnexStore, app: string, server: string, label: string, key = `k-${label}`) =>
    s.patches.create({ application: app, server, sha256: fakeSha(label), size: label.length, comment: `patch ${label}`, uploader: "ci-bot", storageKey: key });

  it("numbers patches 1, 2, 3... per server and never reuses a number", async () => {
    const app = uniq("App");
    await store.servers.create({ application: app, name: "A", type: "node" });
    await store.servers.create({ application: app, name: "B", type: "node" });
    const a1 = await upload(store, app, "A", "a1");
    const b1 = await upload(store, app, "B", "b1");
    const a2 = await upload(store, app, "A", "a2");
    expect([a1.version, a2.version, b1.version]).to.deep.equal([1, 2, 1]);
    expect(a1).to.include({ application: app, server: "A", sha256: fakeSha("a1"), size: 2, comment: "patch a1", uploader: "ci-bot", storageKey: "k-a1" });
    expect(a1.createdAt).to.be.a("number");
    await store.patches.remove(a2.id);
    expect((await upload(store, app, "A", "a3")).version).to.equal(3);
  });

  it("gives concurrent uploads to one server distinct, gapless versions, also through two stores on one database", async () => {
    const app = uniq("Race");
    await store.servers.create({ application: app, name: "A", type: "node" });
    await store.servers.create({ application: app, name: "B", type: "node" });
    // MySQL: a second pool, as a second registry process would have. SQLite: one process owns the file.
    const other = d.name === "mysql" ? await openStore(db.url) : store;
    try {
      const jobs: Array<Promise<{ server: string; version: number }>> = [];
      for (let i = 0; i < 15; i++) {
        for (const server of ["A", "B"]) {
          const s = i % 2 === 0 ? store : other;
          jobs.push(upload(s, app, server, `${server}${i}`).then((p) => ({ server: p.server, version: p.version })));
        }
      }
      const done = await Promise.all(jobs);
      for (const server of ["A", "B"]) {
        const versions = done.filter((p) => p.server === server).map((p) => p.version).sort((x, y) => x - y);
        expect(versions, server).to.deep.equal(Array.from({ length: 15 }, (_, i) => i + 1));
        expect((await store.patches.list(app, server)).map((p) => p.version)).to.deep.equal(Array.from({ length: 15 }, (_, i) => 15 - i));
      }
    } finally {
      if (other !== store) await other.close();
    }
  });

  it("gets a patch by id and by version, lists newest first", async () => {
    const app = uniq("Get");
    await store.servers.create({ application: app, name: "S", type: "java" });
    const p1 = await upload(store, app, "S", "one");
    const p2 = await upload(store, app, "S", "two");
    expect(await store.patches.get(p1.id)).to.deep.equal(p1);
    expect(await store.patches.getByVersion(app, "S", 2)).to.deep.equal(p2);
    expect(await store.patches.list(app, "S")).to.deep.equal([p2, p1]);
  });

  it("answers NOT_FOUND naming the patch or server", async () => {
    const app = uniq("Nf");
    await store.servers.create({ application: app, name: "S", type: "node" });
    let err = await rejects(store.patches.get(424242));
    expect(err).to.be.instanceOf(NotFoundError);
    expect(err.message).to.contain("patch 424242");
    err = await rejects(store.patches.getByVersion(app, "S", 9));
    expect(err).to.be.instanceOf(NotFoundError);
    expect(err.message).to.contain(`version 9 of server "${app}.S"`);
    err = await rejects(store.patches.list(app, "Missing"));
    expect(err).to.be.instanceOf(NotFoundError);
    expect(err.message).to.contain(`"${app}.Missing"`);
    err = await rejects(upload(store, app, "Missing", "x"));
    expect(err).to.be.instanceOf(NotFoundError);
  });

  it("refuses a bad sha256, size, uploader or storage key", async () => {
    const app = uniq("Bad");
    await store.servers.create({ application: app, name: "S", type: "node" });
    const base = { application: app, server: "S", sha256: fakeSha("ok"), size: 1, uploader: "admin", storageKey: "k" };
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ sha256: "abc" }, "sha256"], [{ sha256: "z".repeat(64) }, "sha256"], [{ size: -1 }, "patch size"], [{ size: 1.5 }, "patch size"],
      [{ uploader: "a/b" }, "user name"], [{ storageKey: "" }, "storage key"],
    ];
    for (const [patch, what] of cases) {
      const err = await rejects(store.patches.create({ ...base, ...patch } as any));
      expect(err, what).to.be.instanceOf(InvalidArgumentError);
      expect(err.message).to.contain(what);
    }
    expect(await store.patches.list(app, "S")).to.deep.equal([]);
    const upper = await store.patches.create({ ...base, sha256: fakeSha("ok").toUpperCase() });
    expect(upper.sha256).to.equal(fakeSha("ok"));
  });

  it("refuses to remove a patch an instance wants or runs, or the server's default; reports shared storage keys", async () => {
    const app = uniq("Rm");
    const node = uniq("n-");
    await store.nodes.upsert({ name: node, address: "a", agentVersion: "1" });
    await store.servers.create({ application: app, name: "S", type: "node" });
    const p1 = await upload(store, app, "S", "p1", `${app}-shared`);
    const p2 = await upload(store, app, "S", "p2", `${app}-shared`);
    const p3 = await upload(store, app, "S", "p3", `${app}-own`);
    const inst = await store.instances.create({ application: app, server: "S", node, adapters: [], desiredPatchId: p1.id });
    let err = await rejects(store.patches.remove(p1.id));
    expect(err).to.be.instanceOf(FailedPreconditionError);
    expect(err.message).to.contain(`${app}.S@${node}`).and.contain("desired");
    await store.instances.setDesired(inst.id, { patchId: p3.id });
    await store.instances.reportObserved(inst.id, { state: "active", patchId: p1.id });
    err = await rejects(store.patches.remove(p1.id));
    expect(err).to.be.instanceOf(FailedPreconditionError);
    expect(err.message).to.contain("running");
    await store.instances.reportObserved(inst.id, { state: "active", patchId: p3.id });
    await store.servers.update(app, "S", { defaultPatchId: p2.id });
    err = await rejects(store.patches.remove(p2.id));
    expect(err).to.be.instanceOf(FailedPreconditionError);
    expect(err.message).to.contain("default");
    await store.servers.update(app, "S", { defaultPatchId: null });

    const r1 = await store.patches.remove(p1.id);
    expect(r1).to.deep.equal({ patch: p1, storageKeyInUse: true });
    expect(await store.patches.remove(p2.id)).to.deep.include({ storageKeyInUse: false });
    expect((await store.patches.list(app, "S")).map((p) => p.id)).to.deep.equal([p3.id]);
    err = await rejects(store.patches.remove(p1.id));
    expect(err).to.be.instanceOf(NotFoundError);
  });
});
