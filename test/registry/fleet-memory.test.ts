/**
 * Degraded mode's memory over a real store: it remembers the last full
 * lists of nodes, servers and instances (and the patch versions), follows
 * writes through the change feed, and answers from memory, flagged, once
 * the store cannot be read (here: its own store, closed). Runs once per
 * dialect; the real MariaDB outage is test/admin/degraded-mysql.test.ts.
 */
import { expect } from "chai";
import { getLogger } from "sgridnext";
import { FleetMemory } from "../../registry/admin/api/fleet-memory";
import { PollingChangeFeed } from "../../registry/server";
import { openStore, type KnexStore } from "../../registry/store";
import { type DialectCase, type TestDatabase, forEachDialect, rejects, uniq } from "./helpers/db";
import { seedObj, waitFor } from "./helpers/registry";

forEachDialect("registry fleet memory (degraded mode)", (d: DialectCase) => {
  let db: TestDatabase;
  let store: KnexStore;
  let feed: PollingChangeFeed;
  let memory: FleetMemory;
  let closed = false;
  before(async () => {
    db = await d.create();
    store = await openStore(db.url);
    feed = new PollingChangeFeed(store, { intervalMs: 20, log: getLogger("test.changes") });
    await feed.start();
    memory = new FleetMemory({ store, changes: feed, log: getLogger("test.memory"), refreshMs: 20 });
  });
  after(async () => {
    await memory?.stop();
    await feed?.stop();
    if (!closed) await store?.close();
    await db?.drop();
  });

  it("fails as the store does while nothing is remembered, answers from the database while it can, and from memory, flagged, once it cannot", async () => {
    const s = await seedObj(store, { nodes: 2 });
    const patch = await store.patches.create({ application: s.app, server: s.server, sha256: "a".repeat(64), size: 1, storageKey: "a".repeat(64), uploader: "t", comment: "" });
    await store.instances.setDesired(s.instances[0]!.id, { patchId: patch.id });
    // Nothing read yet; the background read (start) fills it, and follows a write made after.
    memory.start();
    const late = uniq("late-node");
    await store.nodes.upsert({ name: late, address: "10.9.9.9", agentVersion: "t" });
    await waitFor("the memory to follow the write", () => memory.patchVersions.get(patch.id) === patch.version && memory.server(s.app, s.server) !== undefined, 10_000);
    const fresh = await memory.nodes();
    expect(fresh.degraded).to.equal(undefined);
    expect(fresh.value.map((n) => n.name)).to.include(late);
    const filtered = await memory.instances({ node: s.nodes[1] });
    expect(filtered.degraded).to.equal(undefined);
    expect(filtered.value.map((i) => i.id)).to.deep.equal([s.instances[1]!.id]);
    await memory.stop();
    const readAt = Date.now();
    const all = (await memory.instances()).value;
    const servers = (await memory.servers()).value;

    await store.close();
    closed = true;
    const nodes = await memory.nodes();
    expect(nodes.degraded?.asOf).to.be.greaterThan(0).and.at.most(readAt);
    expect(nodes.degraded?.reason).to.match(/database .* (is unavailable|is busy)/);
    expect(nodes.value.map((n) => n.name)).to.include(late);
    const insts = await memory.instances();
    expect(insts.degraded).to.not.equal(undefined);
    expect(insts.value).to.deep.equal(all);
    // Filters apply to the remembered list.
    expect((await memory.instances({ application: s.app, node: s.nodes[1] })).value.map((i) => i.id)).to.deep.equal([s.instances[1]!.id]);
    expect((await memory.instances({ application: "NoSuchApp" })).value).to.deep.equal([]);
    const byApp = await memory.servers(s.app);
    expect(byApp.degraded).to.not.equal(undefined);
    expect(byApp.value.servers.map((x) => x.fullName)).to.deep.equal([`${s.app}.${s.server}`]);
    expect((await memory.servers()).value).to.deep.equal(servers);
    expect(memory.patchVersions.get(patch.id)).to.equal(patch.version);
  });

  it("an outage before anything was remembered fails with the store's error", async () => {
    const own = await openStore(db.url);
    const ownFeed = new PollingChangeFeed(own, { intervalMs: 3_600_000, log: getLogger("test.changes") });
    const empty = new FleetMemory({ store: own, changes: ownFeed, log: getLogger("test.memory") });
    await own.close();
    const err = await rejects(empty.nodes());
    expect(err.code).to.equal("DATABASE_UNAVAILABLE");
  });
});
