/**
 * Tasks and task items in the registry store: creation, status and times,
 * resumable listing, and leases across registry processes. Runs once per dialect.
 */
import { expect } from "chai";
import { InvalidArgumentError, NotFoundError } from "sgridnext";
import type { InstanceRecord, KnexStore } from "../../registry/store";
import { type DialectCase, forEachDialect, freshStore, rejects, uniq } from "./helpers/db";

forEachDialect("registry store: tasks", (d: DialectCase) => {
  let store: KnexStore;
  let cleanup: () => Promise<void>;
  before(async () => ({ store, cleanup } = await freshStore(d)));
  after(async () => cleanup?.());

  async function instances(n: number): Promise<{ app: string; list: InstanceRecord[] }> {
    const app = uniq("App");
    await store.servers.create({ application: app, name: "S", type: "node" });
    const list: InstanceRecord[] = [];
    for (let i = 0; i < n; i++) {
      const node = uniq("node-");
      await store.nodes.upsert({ name: node, address: "a", agentVersion: "1" });
      list.push(await store.instances.create({ application: app, server: "S", node, adapters: [] }));
    }
    return { app, list };
  }

  it("creates a task with one item per instance in batches, all NOT_START and pending", async () => {
    const { app, list } = await instances(3);
    const t = await store.tasks.create({
      kind: "publish", params: { patchId: 7, batchSize: 2, stopOnFailure: true }, createdBy: "alice",
      items: list.map((inst, i) => ({ instanceId: inst.id, batch: Math.floor(i / 2) + 1 })),
    });
    expect(t).to.include({ kind: "publish", status: "pending", createdBy: "alice", reason: null, startedAt: null, finishedAt: null, owner: null });
    expect(t.params).to.deep.equal({ patchId: 7, batchSize: 2, stopOnFailure: true });
    expect(t.items.map((it) => [it.batch, it.status, it.application, it.server, it.node, it.instanceId])).to.deep.equal(
      list.map((inst, i) => [Math.floor(i / 2) + 1, "NOT_START", app, "S", inst.node, inst.id]),
    );
    expect(await store.tasks.get(t.id)).to.deep.equal(t);
  });

  it("moves task and items through their statuses with start and finish times", async () => {
    const { list } = await instances(2);
    const t = await store.tasks.create({ kind: "restart", createdBy: "alice", items: list.map((i) => ({ instanceId: i.id, batch: 1 })) });
    const running = await store.tasks.setStatus(t.id, "running");
    expect(running.status).to.equal("running");
    expect(running.startedAt).to.be.a("number");
    const [a, b] = t.items;
    const ra = await store.tasks.setItemStatus(a.id, "RUNNING");
    expect(ra.startedAt).to.be.a("number");
    expect(ra.finishedAt).to.equal(null);
    const sa = await store.tasks.setItemStatus(a.id, "SUCCESS");
    expect(sa).to.include({ status: "SUCCESS", startedAt: ra.startedAt });
    expect(sa.finishedAt).to.be.at.least(ra.startedAt!);
    const fb = await store.tasks.setItemStatus(b.id, "FAILED", "did not become active within 30s");
    expect(fb).to.include({ status: "FAILED", reason: "did not become active within 30s" });
    expect(fb.startedAt).to.be.a("number"); // failed before it ran: started = finished
    const done = await store.tasks.setStatus(t.id, "partial", "1 of 2 failed");
    expect(done).to.include({ status: "partial", reason: "1 of 2 failed", startedAt: running.startedAt });
    expect(done.finishedAt).to.be.a("number");
    expect(done.items.map((i) => i.status)).to.deep.equal(["SUCCESS", "FAILED"]);
    // Back to NOT_START clears the times (a retried item).
    const again = await store.tasks.setItemStatus(b.id, "NOT_START", null);
    expect(again).to.include({ status: "NOT_START", reason: null, startedAt: null, finishedAt: null });
  });

  it("lists tasks newest first with filters and paging, and the unfinished ones oldest first", async () => {
    const { list } = await instances(1);
    const items = [{ instanceId: list[0].id, batch: 1 }];
    const t1 = await store.tasks.create({ kind: "start", createdBy: "a", items });
    const t2 = await store.tasks.create({ kind: "stop", createdBy: "a", items });
    const t3 = await store.tasks.create({ kind: "start", createdBy: "a", items });
    await store.tasks.setStatus(t2.id, "running");
    await store.tasks.setStatus(t3.id, "success");
    const ids = (await store.tasks.list({ limit: 3 })).map((t) => t.id);
    expect(ids).to.deep.equal([t3.id, t2.id, t1.id]);
    expect((await store.tasks.list({ beforeId: t3.id, limit: 1 })).map((t) => t.id)).to.deep.equal([t2.id]);
    expect((await store.tasks.list({ kind: "start", limit: 2 })).map((t) => t.id)).to.deep.equal([t3.id, t1.id]);
    expect((await store.tasks.list({ status: "running" })).map((t) => t.id)).to.include(t2.id).and.not.include(t1.id);
    const unfinished = (await store.tasks.listUnfinished()).map((t) => t.id);
    expect(unfinished.indexOf(t1.id)).to.be.lessThan(unfinished.indexOf(t2.id));
    expect(unfinished).not.to.include(t3.id);
    expect((await store.tasks.list({ limit: 1 }))[0].items).to.have.length(1);
  });

  it("lets one registry process at a time hold a task, until its lease runs out", async () => {
    const { list } = await instances(1);
    const t = await store.tasks.create({ kind: "start", createdBy: "a", items: [{ instanceId: list[0].id, batch: 1 }] });
    expect(await store.tasks.claim(t.id, "registry-1", 60_000)).to.equal(true);
    expect(await store.tasks.claim(t.id, "registry-2", 60_000)).to.equal(false);
    expect(await store.tasks.claim(t.id, "registry-1", 60_000)).to.equal(true); // renewal
    expect((await store.tasks.get(t.id)).owner).to.equal("registry-1");
    await store.tasks.release(t.id, "registry-2"); // not the owner: no-op
    expect((await store.tasks.get(t.id)).owner).to.equal("registry-1");
    await store.tasks.release(t.id, "registry-1");
    expect(await store.tasks.claim(t.id, "registry-2", 1)).to.equal(true);
    await new Promise((r) => setTimeout(r, 20));
    expect(await store.tasks.claim(t.id, "registry-3", 60_000)).to.equal(true); // registry-2's lease ran out
    const claims = await Promise.all(["x", "y", "z"].map((o) => store.tasks.claim(t.id, o, 60_000)));
    expect(claims.filter(Boolean)).to.have.length(0); // registry-3 holds it
    expect(await rejects(store.tasks.claim(987654, "x", 1000))).to.be.instanceOf(NotFoundError);
  });

  it("keeps items when their instance is undeployed", async () => {
    const { list } = await instances(1);
    const t = await store.tasks.create({ kind: "undeploy", createdBy: "a", items: [{ instanceId: list[0].id, batch: 1 }] });
    await store.instances.remove(list[0].id);
    const after = await store.tasks.get(t.id);
    expect(after.items[0]).to.include({ instanceId: list[0].id, node: list[0].node });
  });

  it("refuses unknown instances, tasks and items with NOT_FOUND, and bad input with INVALID_ARGUMENT", async () => {
    const { list } = await instances(1);
    let err = await rejects(store.tasks.create({ kind: "start", createdBy: "a", items: [{ instanceId: list[0].id, batch: 1 }, { instanceId: 888888, batch: 1 }] }));
    expect(err).to.be.instanceOf(NotFoundError);
    expect(err.message).to.contain("888888");
    err = await rejects(store.tasks.get(777777));
    expect(err).to.be.instanceOf(NotFoundError);
    expect(err.message).to.contain("task 777777");
    err = await rejects(store.tasks.setItemStatus(777777, "RUNNING"));
    expect(err).to.be.instanceOf(NotFoundError);
    expect(err.message).to.contain("task item 777777");
    const cases: Array<[any, string]> = [
      [{ kind: "explode", createdBy: "a", items: [] }, "task kind"],
      [{ kind: "start", createdBy: "a", items: [{ instanceId: list[0].id, batch: 0 }] }, "batch"],
      [{ kind: "start", createdBy: "a", items: [{ instanceId: list[0].id, batch: 1 }, { instanceId: list[0].id, batch: 2 }] }, "twice"],
      [{ kind: "start", createdBy: "a/b", items: [] }, "user name"],
    ];
    for (const [input, what] of cases) {
      err = await rejects(store.tasks.create(input));
      expect(err, what).to.be.instanceOf(InvalidArgumentError);
      expect(err.message).to.contain(what);
    }
    const t = await store.tasks.create({ kind: "start", createdBy: "a", items: [] });
    expect(await rejects(store.tasks.setStatus(t.id, "done" as any))).to.be.instanceOf(InvalidArgumentError);
    expect(await rejects(store.tasks.setItemStatus(1, "DONE" as any))).to.be.instanceOf(InvalidArgumentError);
  });
});
