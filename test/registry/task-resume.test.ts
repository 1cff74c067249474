/**
 * Tasks are durable: a registry restarted mid-task resumes it from the
 * database without redoing finished batches; a task whose runner died is
 * taken over once its lease runs out; two runners on one database never run
 * one task twice. SQLite always, MySQL when SGRID_TEST_MYSQL_URL is set.
 */
import { expect } from "chai";
import { TaskRunner } from "../../registry/admin";
import type { TaskRecord } from "../../registry/store";
import { type DialectCase, type TestDatabase, forEachDialect } from "./helpers/db";
import { type AdminHarness, type SimAgent, addPatch, connectAgent, startAdminRegistry, uniq, waitFor } from "./helpers/admin-harness";
import { tempDir } from "./helpers/registry";

forEachDialect("registry tasks: durability @slow", (d: DialectCase) => {
  let db: TestDatabase;
  let h: AdminHarness | undefined;
  const agents: SimAgent[] = [];
  const runners: TaskRunner[] = [];
  before(async () => {
    db = await d.create();
  });
  afterEach(async () => {
    for (const r of runners.splice(0)) await r.stop();
    for (const a of agents.splice(0)) await a.close();
    await h?.cleanup();
    h = undefined;
  });
  after(async () => {
    await db?.drop();
  });

  async function agentsFor(nodes: string[], reg: AdminHarness): Promise<Map<string, SimAgent>> {
    const m = new Map<string, SimAgent>();
    for (const n of nodes) {
      const a = await connectAgent(reg.reg.target, n);
      agents.push(a);
      m.set(n, a);
    }
    return m;
  }

  async function finishedTask(harness: AdminHarness, id: number): Promise<TaskRecord> {
    return waitFor(`task ${id} to finish`, async () => {
      const t = await harness.reg.server.store.tasks.get(id);
      return ["success", "failed", "partial"].includes(t.status) ? t : undefined;
    }, 40_000);
  }

  it("resumes a publish after a registry restart, from the batch it was in", async () => {
    const dataDir = tempDir("sgrid-task-resume-");
    h = await startAdminRegistry(d, { dataDir }, db);
    const app = uniq("App");
    const nodes = [uniq("node"), uniq("node"), uniq("node")];
    let byNode = await agentsFor(nodes, h);
    await h.admin.deploy({ application: app, server: "Hello", type: "node", nodes, adapters: [] }, h.as(h.token));
    const v1 = await addPatch(h.reg.server.store, app, "Hello");
    const list = await h.reg.server.store.instances.list({ application: app });
    const ids = nodes.map((n) => list.find((i) => i.node === n)!.id);
    for (const id of ids) await h.reg.server.store.instances.setDesired(id, { state: "active", patchId: v1.id });
    await waitFor("version 1 everywhere", async () => (await h!.reg.server.store.instances.list({ application: app })).every((i) => i.observedState === "active"));
    const v2 = await addPatch(h.reg.server.store, app, "Hello");
    byNode.get(nodes[1]!)!.stuck.add(ids[1]!);
    const task = await h.admin.createTask({ kind: "publish", instanceIds: ids, version: v2.version, batchSize: 1, stopOnFailure: true, batchTimeoutS: 600 }, h.as(h.token));
    const mid = await waitFor("batch 2 running", async () => {
      const t = await h!.reg.server.store.tasks.get(task.id);
      return t.items[1]!.status === "RUNNING" ? t : undefined;
    });
    expect(mid.items.map((i) => i.status)).to.deep.equal(["SUCCESS", "RUNNING", "NOT_START"]);

    // Stop the registry (its runner hands the task back) and its agents.
    for (const a of agents.splice(0)) await a.close();
    h.reg.comm.close();
    await h.reg.server.stop();
    const stored = await (async () => {
      const again = await startAdminRegistry(d, { dataDir }, db);
      h = again;
      return again.reg.server.store.tasks.get(task.id);
    })();
    expect(stored.items.map((i) => i.status)).to.deep.equal(["SUCCESS", "RUNNING", "NOT_START"]);
    // The agents come back (the held instance is released now).
    byNode = await agentsFor(nodes, h);
    const done = await finishedTask(h, task.id);
    expect(done.status).to.equal("success");
    expect(done.items.map((i) => i.status)).to.deep.equal(["SUCCESS", "SUCCESS", "SUCCESS"]);
    // The first batch was not redone: its times are those from before the restart.
    expect(done.items[0]!.finishedAt).to.equal(mid.items[0]!.finishedAt);
    expect(done.items[1]!.startedAt).to.equal(mid.items[1]!.startedAt);
    const after = await h.reg.server.store.instances.list({ application: app });
    expect(after.map((i) => [i.observedState, i.observedPatchId])).to.deep.equal([["active", v2.id], ["active", v2.id], ["active", v2.id]]);
    // The lease is handed back once the task ended.
    await waitFor("the lease to be released", async () => (await h!.reg.server.store.tasks.get(task.id)).owner === null);
  });

  it("takes over a task whose runner died once its lease runs out, and runs it once with two runners about", async () => {
    h = await startAdminRegistry(d, {}, db);
    const harness = h;
    const ctx = harness.reg.server.context;
    // A second registry process's runner on the same database (short scan period).
    const second = new TaskRunner({ ...ctx, settings: { ...ctx.settings, processId: "second-registry" } }, { scanMs: 100, pollMs: 100, leaseMs: 3000 });
    runners.push(second);
    await second.start();
    const app = uniq("App");
    const nodes = [uniq("node"), uniq("node")];
    await agentsFor(nodes, harness);
    await harness.admin.deploy({ application: app, server: "Hello", type: "node", nodes, adapters: [] }, harness.as(harness.token));
    const v1 = await addPatch(harness.reg.server.store, app, "Hello");
    const ids = (await harness.reg.server.store.instances.list({ application: app })).map((i) => i.id);
    // A task written and claimed by a registry that then died (one transaction, so no live runner sees it unclaimed).
    const task = await harness.reg.server.store.transaction(async (tx) => {
      const t = await tx.tasks.create({
        kind: "publish", createdBy: "admin", params: { patchId: v1.id, version: v1.version, batchSize: 1, stopOnFailure: true },
        items: ids.map((id, i) => ({ instanceId: id, batch: i + 1 })),
      });
      await tx.tasks.setStatus(t.id, "running");
      expect(await tx.tasks.claim(t.id, "dead-registry", 1500)).to.equal(true);
      return t;
    });
    harness.reg.server.changes.kick();
    const done = await finishedTask(harness, task.id);
    expect(done.status).to.equal("success");
    expect(done.items.map((i) => i.status)).to.deep.equal(["SUCCESS", "SUCCESS"]);
    const finishes = await harness.reg.server.store.events.list({ kind: "task.finish", limit: 1000 });
    expect(finishes.filter((e) => (e.data as { taskId?: number }).taskId === task.id)).to.have.length(1);

    // A new task with both runners awake: finished once.
    const v2 = await addPatch(harness.reg.server.store, app, "Hello");
    const again = await harness.admin.createTask({ kind: "publish", instanceIds: ids, version: v2.version, batchSize: 1, stopOnFailure: true, batchTimeoutS: 0 }, harness.as(harness.token));
    second.kick();
    const done2 = await finishedTask(harness, again.id);
    expect(done2.status).to.equal("success");
    const finishes2 = await harness.reg.server.store.events.list({ kind: "task.finish", limit: 1000 });
    expect(finishes2.filter((e) => (e.data as { taskId?: number }).taskId === again.id)).to.have.length(1);
  });
});
