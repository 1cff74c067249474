/**
 * Nodes and servers in the registry store. Runs once per dialect.
 */
import { expect } from "chai";
import { AlreadyExistsError, FailedPreconditionError, InvalidArgumentError, NotFoundError } from "sgridnext";
import type { KnexStore } from "../../registry/store";
import { type DialectCase, fakeSha, forEachDialect, freshStore, rejects, uniq } from "./helpers/db";

forEachDialect("registry store: nodes", (d: DialectCase) => {
  let store: KnexStore;
  let cleanup: () => Promise<void>;
  before(async () => ({ store, cleanup } = await freshStore(d)));
  after(async () => cleanup?.());

  it("creates a node from its hello, online with a heartbeat, and updates it on the next hello", async () => {
    const name = uniq("node-");
    const t0 = Date.now();
    const n1 = await store.nodes.upsert({ name, address: "10.0.0.1", agentVersion: "1.0.0", hostInfo: { cpus: 2, mem: 4096 } });
    expect(n1).to.include({ name, address: "10.0.0.1", agentVersion: "1.0.0", online: true });
    expect(n1.hostInfo).to.deep.equal({ cpus: 2, mem: 4096 });
    expect(n1.lastHeartbeatAt).to.be.at.least(t0);
    await store.nodes.setOnline(name, false);
    const n2 = await store.nodes.upsert({ name, address: "10.0.0.2", agentVersion: "1.1.0" });
    expect(n2).to.include({ id: n1.id, address: "10.0.0.2", agentVersion: "1.1.0", online: true });
    expect(n2.hostInfo).to.deep.equal({});
    expect(n2.createdAt).to.equal(n1.createdAt);
    expect(await store.nodes.get(name)).to.deep.equal(n2);
    expect(await store.nodes.find(name)).to.deep.equal(n2);
    expect((await store.nodes.list()).map((n) => n.name)).to.include(name);
  });

  it("records heartbeats, marks stale nodes offline, and brings them back on the next heartbeat", async () => {
    const fresh = uniq("fresh-");
    const stale = uniq("stale-");
    await store.nodes.upsert({ name: fresh, address: "a", agentVersion: "1" });
    await store.nodes.upsert({ name: stale, address: "b", agentVersion: "1" });
    const now = Date.now();
    await store.nodes.heartbeat(stale, now - 60_000);
    await store.nodes.heartbeat(fresh, now);
    expect((await store.nodes.get(stale)).lastHeartbeatAt).to.equal(now - 60_000);
    const marked = await store.nodes.markStale(now - 15_000);
    expect(marked).to.include(stale);
    expect(marked).not.to.include(fresh);
    expect((await store.nodes.get(stale)).online).to.equal(false);
    expect((await store.nodes.get(fresh)).online).to.equal(true);
    expect(await store.nodes.markStale(now - 15_000)).not.to.include(stale); // already offline
    await store.nodes.heartbeat(stale, now + 1);
    expect(await store.nodes.get(stale)).to.include({ online: true, lastHeartbeatAt: now + 1 });
  });

  it("records a batch of heartbeats in one write: online nodes' times (no revision bump), changed host info (one bump); offline and unknown nodes untouched and returned", async () => {
    const [a, b, off] = [uniq("batch-a-"), uniq("batch-b-"), uniq("batch-off-")];
    const ghost = uniq("batch-ghost-");
    for (const name of [a, b, off]) await store.nodes.upsert({ name, address: "10.0.0.1", agentVersion: "1", hostInfo: { cpuCount: 2 } });
    await store.nodes.setOnline(off, false);
    const offBefore = await store.nodes.get(off);
    const r0 = (await store.revisions.get()).nodes;
    const now = Date.now() + 60_000;
    const missing = await store.nodes.recordHeartbeats([
      { name: a, at: now }, { name: b, at: now + 400 }, { name: off, at: now }, { name: ghost, at: now },
    ]);
    expect(missing).to.deep.equal([off, ghost].sort());
    expect((await store.revisions.get()).nodes).to.equal(r0);
    // One time per statement: the batch's oldest, never later than a node's own heartbeat.
    expect((await store.nodes.get(a)).lastHeartbeatAt).to.equal(now);
    expect((await store.nodes.get(b)).lastHeartbeatAt).to.be.within(now, now + 400);
    expect(await store.nodes.get(off)).to.deep.equal(offBefore);
    expect(await store.nodes.find(ghost)).to.equal(undefined);
    // Host info with the times: one bump for the batch, only the given node's info replaced.
    expect(await store.nodes.recordHeartbeats([{ name: a, at: now + 1000, hostInfo: { cpuCount: 4, hostname: "a" } }, { name: b, at: now + 1000 }])).to.deep.equal([]);
    expect((await store.revisions.get()).nodes).to.equal(r0 + 1);
    expect(await store.nodes.get(a)).to.deep.include({ hostInfo: { cpuCount: 4, hostname: "a" }, lastHeartbeatAt: now + 1000, online: true });
    expect((await store.nodes.get(b)).hostInfo).to.deep.equal({ cpuCount: 2 });
    // More nodes than one statement takes.
    const many = Array.from({ length: 1200 }, (_, i) => `${uniq("batch-many-")}-${i}`);
    await store.knex.batchInsert("nodes", many.map((name) => ({ name, address: "x", agent_version: "1", host_info: "{}", online: true, created_at: 1, updated_at: 1, last_heartbeat_at: 1 })), 200);
    expect(await store.nodes.recordHeartbeats(many.map((name, i) => ({ name, at: now + 2000 + (i % 3) })))).to.deep.equal([]);
    const times = (await store.knex("nodes").whereIn("name", many).select("last_heartbeat_at")).map((r: any) => Number(r.last_heartbeat_at));
    expect(times).to.have.length(1200);
    for (const t of times) expect(t).to.be.within(now + 2000, now + 2002);
    expect(await store.nodes.recordHeartbeats([])).to.deep.equal([]);
  });

  it("refuses a heartbeat batch with a bad node name or time, writing none of it", async () => {
    const name = uniq("batch-bad-");
    await store.nodes.upsert({ name, address: "a", agentVersion: "1" });
    const before = await store.nodes.get(name);
    for (const bad of [[{ name, at: Date.now() + 9e6 }, { name: "a/b", at: 1 }], [{ name, at: Date.now() + 9e6 }, { name, at: Number.NaN }]]) {
      const err = await rejects(store.nodes.recordHeartbeats(bad));
      expect(err).to.be.instanceOf(InvalidArgumentError);
    }
    expect(await store.nodes.get(name)).to.deep.equal(before);
  });

  it("sets the online flag, bumping the revision only on a change", async () => {
    const name = uniq("flag-");
    await store.nodes.upsert({ name, address: "a", agentVersion: "1" });
    const r0 = (await store.revisions.get()).nodes;
    await store.nodes.setOnline(name, true);
    expect((await store.revisions.get()).nodes).to.equal(r0);
    await store.nodes.setOnline(name, false);
    expect((await store.revisions.get()).nodes).to.equal(r0 + 1);
    expect((await store.nodes.get(name)).online).to.equal(false);
  });

  it("answers NOT_FOUND naming an unknown node, and refuses bad node names", async () => {
    const calls = [() => store.nodes.get("ghost-node"), () => store.nodes.heartbeat("ghost-node"), () => store.nodes.setOnline("ghost-node", true), () => store.nodes.remove("ghost-node")];
    for (const call of calls) {
      const err = await rejects(call());
      expect(err).to.be.instanceOf(NotFoundError);
      expect(err.message).to.contain('node "ghost-node"');
    }
    expect(await store.nodes.find("ghost-node")).to.equal(undefined);
    for (const bad of ["a/b", "a\\b", "..", "a..b", "", "x".repeat(129), "sp ace"]) {
      const err = await rejects(store.nodes.upsert({ name: bad, address: "a", agentVersion: "1" }));
      expect(err, bad).to.be.instanceOf(InvalidArgumentError);
      expect(err.message).to.contain("node name");
    }
  });

  it("removes a node, but not while instances are placed on it", async () => {
    const node = uniq("rm-");
    const app = uniq("App");
    await store.nodes.upsert({ name: node, address: "a", agentVersion: "1" });
    await store.servers.create({ application: app, name: "S", type: "node" });
    const inst = await store.instances.create({ application: app, server: "S", node, adapters: [] });
    const err = await rejects(store.nodes.remove(node));
    expect(err).to.be.instanceOf(FailedPreconditionError);
    expect(err.message).to.contain(`${app}.S`);
    await store.instances.remove(inst.id);
    await store.nodes.remove(node);
    expect(await store.nodes.find(node)).to.equal(undefined);
  });
});

forEachDialect("registry store: servers", (d: DialectCase) => {
  let store: KnexStore;
  let cleanup: () => Promise<void>;
  before(async () => ({ store, cleanup } = await freshStore(d)));
  after(async () => cleanup?.());

  it("creates, gets, lists and updates servers", async () => {
    const app = uniq("App");
    const s = await store.servers.create({ application: app, name: "HelloServer", type: "node", defaults: { env: { A: "1" } } });
    expect(s).to.include({ application: app, name: "HelloServer", fullName: `${app}.HelloServer`, type: "node", defaultPatchId: null });
    expect(s.defaults).to.deep.equal({ env: { A: "1" } });
    await store.servers.create({ application: app, name: "Alpha", type: "java" });
    expect(await store.servers.get(app, "HelloServer")).to.deep.equal(s);
    expect(await store.servers.getById(s.id)).to.deep.equal(s);
    expect((await store.servers.list({ application: app })).map((x) => x.name)).to.deep.equal(["Alpha", "HelloServer"]);
    expect(await store.servers.listApplications()).to.include(app);
    const p = await store.patches.create({ application: app, server: "HelloServer", sha256: fakeSha("x"), size: 1, uploader: "admin", storageKey: "k1" });
    const u = await store.servers.update(app, "HelloServer", { type: "binary", defaultPatchId: p.id, defaults: { limits: { pids: 10 } } });
    expect(u).to.include({ type: "binary", defaultPatchId: p.id });
    expect(u.defaults).to.deep.equal({ limits: { pids: 10 } });
    expect((await store.servers.update(app, "HelloServer", { defaultPatchId: null })).defaultPatchId).to.equal(null);
  });

  it("refuses a duplicate server with ALREADY_EXISTS naming it, and keeps names case-sensitive", async () => {
    const app = uniq("Dup");
    await store.servers.create({ application: app, name: "S", type: "node" });
    const err = await rejects(store.servers.create({ application: app, name: "S", type: "java" }));
    expect(err).to.be.instanceOf(AlreadyExistsError);
    expect(err.message).to.contain(`"${app}.S"`);
    // Same on both dialects: "s" is another server than "S".
    await store.servers.create({ application: app, name: "s", type: "node" });
    expect((await store.servers.list({ application: app })).map((x) => x.name).sort()).to.deep.equal(["S", "s"]);
  });

  it("gives each of many concurrent creates of one server exactly one winner", async () => {
    const app = uniq("Race");
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => store.servers.create({ application: app, name: "S", type: "node" })));
    expect(results.filter((r) => r.status === "fulfilled")).to.have.length(1);
    for (const r of results) if (r.status === "rejected") expect(r.reason).to.be.instanceOf(AlreadyExistsError);
  });

  it("answers NOT_FOUND naming the server, and refuses a default patch of another server", async () => {
    const app = uniq("Nf");
    let err = await rejects(store.servers.get(app, "Nope"));
    expect(err).to.be.instanceOf(NotFoundError);
    expect(err.message).to.contain(`"${app}.Nope"`);
    err = await rejects(store.servers.getById(987654));
    expect(err).to.be.instanceOf(NotFoundError);
    await store.servers.create({ application: app, name: "A", type: "node" });
    await store.servers.create({ application: app, name: "B", type: "node" });
    const pb = await store.patches.create({ application: app, server: "B", sha256: fakeSha("b"), size: 1, uploader: "admin", storageKey: "kb" });
    err = await rejects(store.servers.update(app, "A", { defaultPatchId: pb.id }));
    expect(err).to.be.instanceOf(NotFoundError);
    expect(err.message).to.contain(`"${app}.A"`);
    expect(await store.servers.find(app, "Nope")).to.equal(undefined);
  });

  it("refuses bad names and types", async () => {
    const cases: Array<[string, string, string]> = [
      ["a/b", "S", "application name"], ["A", "a\\b", "server name"], ["A..B", "S", "application name"], ["", "S", "application name"],
      ["A", "x".repeat(65), "server name"], ["A.B", "S", "application name"],
    ];
    for (const [application, name, what] of cases) {
      const err = await rejects(store.servers.create({ application, name, type: "node" }));
      expect(err, `${application} ${name}`).to.be.instanceOf(InvalidArgumentError);
      expect(err.message).to.contain(what);
    }
    const err = await rejects(store.servers.create({ application: "A", name: "S", type: "python" as any }));
    expect(err).to.be.instanceOf(InvalidArgumentError);
    expect(err.message).to.contain("server type");
  });

  it("removes a server with its patches and configs, not while it has instances", async () => {
    const app = uniq("Rm");
    const node = uniq("n-");
    await store.nodes.upsert({ name: node, address: "a", agentVersion: "1" });
    await store.servers.create({ application: app, name: "S", type: "node" });
    await store.servers.create({ application: app, name: "T", type: "node" });
    await store.patches.create({ application: app, server: "S", sha256: fakeSha("1"), size: 1, uploader: "admin", storageKey: `${app}-only-s` });
    await store.patches.create({ application: app, server: "S", sha256: fakeSha("2"), size: 1, uploader: "admin", storageKey: `${app}-shared` });
    await store.patches.create({ application: app, server: "T", sha256: fakeSha("2"), size: 1, uploader: "admin", storageKey: `${app}-shared` });
    await store.configs.put({ level: "server", application: app, server: "S" }, "s.conf", { content: "x", author: "admin" });
    const inst = await store.instances.create({ application: app, server: "S", node, adapters: [] });
    const err = await rejects(store.servers.remove(app, "S"));
    expect(err).to.be.instanceOf(FailedPreconditionError);
    expect(err.message).to.contain(node);
    await store.instances.remove(inst.id);
    expect(await store.servers.remove(app, "S")).to.deep.equal({ orphanedStorageKeys: [`${app}-only-s`] });
    expect(await store.servers.find(app, "S")).to.equal(undefined);
    expect(await store.configs.listFiles({ level: "server", application: app, server: "S" })).to.deep.equal([]);
    expect(await store.patches.list(app, "T")).to.have.length(1);
    // A server made again under the same name starts its patch numbers afresh.
    await store.servers.create({ application: app, name: "S", type: "node" });
    expect((await store.patches.create({ application: app, server: "S", sha256: fakeSha("3"), size: 1, uploader: "admin", storageKey: "k" })).version).to.equal(1);
  });
});
