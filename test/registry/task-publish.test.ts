/**
 * Tasks run by the registry, end to end over real gRPC: the Admin API
 * creates them, the task runner changes desired state batch by batch, and
 * simulated agents on real node sessions report observed state. SQLite
 * always, MySQL when SGRID_TEST_MYSQL_URL is set.
 */
import { expect } from "chai";
import { FailedPreconditionError, InvalidArgumentError } from "sgridnext";
import type { TaskInfo } from "sgridnext/gen/sgrid/registry/v1/admin";
import { TASK_RUNNER_DEFAULTS } from "../../registry/admin/task-runner";
import { type DialectCase, forEachDialect } from "./helpers/db";
import {
  type AdminHarness, type SimAgent, finishedTask, rejects, simCluster, startAdminRegistry, waitFor,
} from "./helpers/admin-harness";

forEachDialect("registry tasks", (d: DialectCase) => {
  let h: AdminHarness;
  const agents: SimAgent[] = [];
  before(async () => {
    h = await startAdminRegistry(d);
  });
  after(async () => {
    for (const a of agents) await a.close();
    await h?.cleanup();
  });

  const cluster = (n: number) => simCluster(h, agents, n);
  const finished = (id: number) => finishedTask(h, id);

  async function instances(app: string) {
    return (await h.admin.listInstances({ application: app, server: "", node: "" }, h.as(h.token))).instances;
  }

  it("publishes in batches of 1 over 3 instances: each batch waits for the one before, drained while it switches", async () => {
    const c = await cluster(3);
    expect((await instances(c.app)).map((i) => [i.observedState, i.observedVersion])).to.deep.equal([["active", 1], ["active", 1], ["active", 1]]);
    // Hold the second instance back to look at the task mid-way.
    c.agentOf(c.ids[1]!).stuck.add(c.ids[1]!);
    const snapshots: TaskInfo[] = [];
    const task = await h.admin.createTask({ kind: "publish", instanceIds: c.ids, version: c.v2.version, batchSize: 1, stopOnFailure: true, batchTimeoutS: 0 }, h.as(h.token));
    expect(task.items.map((i) => i.batch)).to.deep.equal([1, 2, 3]);
    expect(JSON.parse(task.previousVersionsJson)).to.deep.equal(Object.fromEntries(c.ids.map((id) => [String(id), 1])));
    const watching = (async () => {
      for await (const t of h.admin.watchTask({ id: task.id }, h.as(h.token))) snapshots.push(t);
    })();

    await waitFor("batch 2 to be running", async () => {
      const t = await h.admin.getTask({ id: task.id }, h.as(h.token));
      return t.items[1]!.status === "RUNNING" ? t : undefined;
    });
    const mid = await h.admin.getTask({ id: task.id }, h.as(h.token));
    expect(mid.items.map((i) => i.status)).to.deep.equal(["SUCCESS", "RUNNING", "NOT_START"]);
    const stuck = await waitFor("the held instance to be drained on version 2", async () => {
      const i = (await instances(c.app)).find((x) => x.id === c.ids[1]);
      return i && i.drained && i.desiredVersion === 2 && i.observedState === "activating" ? i : undefined;
    });
    expect(stuck.observedVersion).to.equal(2);
    // Out of load balancing meanwhile; the third instance is still on version 1.
    const found = await h.reg.query.findObject({ obj: `${c.app}.Hello.GreeterObj` });
    expect(found.active.map((e) => e.instanceId).sort()).to.deep.equal([c.ids[0], c.ids[2]].sort());
    expect((await instances(c.app)).find((x) => x.id === c.ids[2])!.desiredVersion).to.equal(1);

    c.agentOf(c.ids[1]!).stuck.delete(c.ids[1]!);
    c.agentOf(c.ids[1]!).poke();
    const done = await finished(task.id);
    await watching;
    expect(done.status).to.equal("success");
    expect(done.reason).to.equal("");
    expect(done.items.map((i) => i.status)).to.deep.equal(["SUCCESS", "SUCCESS", "SUCCESS"]);
    // Batch by batch: each item started after the one before had finished.
    for (let b = 1; b < 3; b++) expect(done.items[b]!.startedAt).to.be.at.least(done.items[b - 1]!.finishedAt);
    // The watch saw the task move and ended with it.
    expect(snapshots.length).to.be.greaterThan(2);
    expect(snapshots.at(-1)!.status).to.equal("success");
    for (const s of snapshots) {
      const st = s.items.map((i) => i.status);
      if (st[1] !== "NOT_START") expect(st[0], JSON.stringify(st)).to.equal("SUCCESS");
      if (st[2] !== "NOT_START") expect(st[1], JSON.stringify(st)).to.equal("SUCCESS");
    }
    const after = await instances(c.app);
    expect(after.map((i) => [i.observedState, i.observedVersion, i.drained])).to.deep.equal([["active", 2, false], ["active", 2, false], ["active", 2, false]]);
  });

  it("ends an item when its instance has been active for the settle time, not at the runner's next poll", async () => {
    // The test registries settle in 600 ms (test/registry/helpers/registry.ts); the runner polls every 2 s.
    const settleMs = 600;
    const c = await cluster(2);
    const done = await finished((await h.admin.createTask({ kind: "publish", instanceIds: c.ids, version: c.v2.version, batchSize: 1, stopOnFailure: true, batchTimeoutS: 0 }, h.as(h.token))).id);
    expect(done.status).to.equal("success");
    const observed = new Map((await instances(c.app)).map((i) => [i.id, i]));
    for (const item of done.items) {
      const inst = observed.get(item.instanceId)!;
      expect([inst.observedState, inst.observedVersion]).to.deep.equal(["active", 2]);
      // Both times are the registry's: when it stored the agent's "active on version 2", and when it ended the item.
      const afterActive = Number(item.finishedAt) - Number(inst.observedAt);
      expect(afterActive, `item ${item.id}: ms from observed active to SUCCESS`).to.be.at.least(settleMs).and.below(TASK_RUNNER_DEFAULTS.pollMs);
    }
  });

  it("fails an item whose instance never becomes active at the batch timeout; stop-on-failure leaves the rest (PARTIAL)", async () => {
    const c = await cluster(3);
    c.agentOf(c.ids[1]!).stuck.add(c.ids[1]!);
    // Long enough for the first instance to switch on a loaded machine.
    const task = await h.admin.createTask({ kind: "publish", instanceIds: c.ids, version: c.v2.version, batchSize: 1, stopOnFailure: true, batchTimeoutS: 4 }, h.as(h.token));
    const done = await finished(task.id);
    expect(done.status).to.equal("partial");
    expect(done.items.map((i) => i.status)).to.deep.equal(["SUCCESS", "FAILED", "NOT_START"]);
    expect(done.items[1]!.reason).to.match(/timed out after 4 s/).and.include(`instance ${c.ids[1]}`).and.include("activating");
    expect(done.reason).to.include("stopped after batch 2");
    // The untouched instance still desires version 1; the failed one is back in load balancing terms (not drained).
    const list = await instances(c.app);
    expect(list.find((i) => i.id === c.ids[2])!.desiredVersion).to.equal(1);
    expect(list.find((i) => i.id === c.ids[1])!.drained).to.equal(false);
    const events = (await h.admin.listEvents({ kind: "task.finish", targetPrefix: `${c.app}.`, actor: "", beforeId: 0, afterId: 0, limit: 10 }, h.as(h.token))).events;
    expect(events.some((e) => e.message.includes(`task ${task.id}`) && e.message.includes("partial"))).to.equal(true);
  });

  it("does not count a crash-looping instance as started: briefly active after each spawn is not SUCCESS", async () => {
    const c = await cluster(2);
    c.agentOf(c.ids[0]!).flapping.add(c.ids[0]!);
    const task = await h.admin.createTask({ kind: "publish", instanceIds: c.ids, version: c.v2.version, batchSize: 1, stopOnFailure: true, batchTimeoutS: 5 }, h.as(h.token));
    const done = await finished(task.id);
    expect(done.items.map((i) => i.status)).to.deep.equal(["FAILED", "NOT_START"]);
    expect(done.items[0]!.reason).to.match(/timed out after 5 s/);
    expect(done.status).to.equal("failed");
  });

  it("fails at once an item whose instance reports failed; a first batch that fails makes the task FAILED", async () => {
    const c = await cluster(2);
    c.agentOf(c.ids[0]!).failing.add(c.ids[0]!);
    const task = await h.admin.createTask({ kind: "publish", instanceIds: c.ids, version: c.v2.version, batchSize: 1, stopOnFailure: true, batchTimeoutS: 600 }, h.as(h.token));
    const done = await finished(task.id);
    expect(done.status).to.equal("failed");
    expect(done.items.map((i) => i.status)).to.deep.equal(["FAILED", "NOT_START"]);
    expect(done.items[0]!.reason).to.include("exit code 3");
  });

  it("without stop-on-failure runs every batch", async () => {
    const c = await cluster(3);
    c.agentOf(c.ids[0]!).failing.add(c.ids[0]!);
    const task = await h.admin.createTask({ kind: "publish", instanceIds: c.ids, version: c.v2.version, batchSize: 1, stopOnFailure: false, batchTimeoutS: 600 }, h.as(h.token));
    const done = await finished(task.id);
    expect(done.status).to.equal("partial");
    expect(done.items.map((i) => i.status)).to.deep.equal(["FAILED", "SUCCESS", "SUCCESS"]);
  });

  it("rolls a publish back: a new publish task to each instance's previous version", async () => {
    const c = await cluster(2);
    const pub = await h.admin.createTask({ kind: "publish", instanceIds: c.ids, version: c.v2.version, batchSize: 1, stopOnFailure: true, batchTimeoutS: 0 }, h.as(h.token));
    expect((await finished(pub.id)).status).to.equal("success");
    expect((await instances(c.app)).map((i) => i.observedVersion)).to.deep.equal([2, 2]);
    const back = await h.admin.rollbackTask({ id: pub.id }, h.as(h.token));
    expect(back.kind).to.equal("publish");
    expect(back.id).to.not.equal(pub.id);
    expect(back.version).to.equal(1);
    expect(back.batchSize).to.equal(1);
    expect(back.items.map((i) => i.instanceId)).to.deep.equal(c.ids);
    const done = await finished(back.id);
    expect(done.status).to.equal("success");
    expect((await instances(c.app)).map((i) => [i.desiredVersion, i.observedVersion])).to.deep.equal([[1, 1], [1, 1]]);
    // A rollback of a rollback goes forward again.
    expect(JSON.parse(done.previousVersionsJson)).to.deep.equal(Object.fromEntries(c.ids.map((id) => [String(id), 2])));
    const stop = await h.admin.createTask({ kind: "stop", instanceIds: [c.ids[0]!], version: 0, batchSize: 0, stopOnFailure: false, batchTimeoutS: 0 }, h.as(h.token));
    await finished(stop.id);
    expect(await rejects(h.admin.rollbackTask({ id: stop.id }, h.as(h.token)))).to.be.instanceOf(FailedPreconditionError);
  });

  it("stops, starts, restarts and undeploys", async () => {
    const c = await cluster(2);
    const run = async (kind: string, ids = c.ids) => finished((await h.admin.createTask({ kind, instanceIds: ids, version: 0, batchSize: 1, stopOnFailure: true, batchTimeoutS: 0 }, h.as(h.token))).id);
    expect((await run("stop")).status).to.equal("success");
    expect((await instances(c.app)).map((i) => [i.desiredState, i.observedState])).to.deep.equal([["inactive", "inactive"], ["inactive", "inactive"]]);
    expect((await run("start")).status).to.equal("success");
    expect((await instances(c.app)).map((i) => [i.desiredState, i.observedState])).to.deep.equal([["active", "active"], ["active", "active"]]);
    const agent = c.agentOf(c.ids[0]!);
    const before = agent.reports.filter((r) => r.instanceId === c.ids[0]).length;
    expect((await run("restart", [c.ids[0]!])).status).to.equal("success");
    // The instance went down and up again.
    const states = agent.reports.filter((r) => r.instanceId === c.ids[0]).slice(before).map((r) => r.state);
    expect(states).to.deep.equal(["inactive", "active"]);
    expect((await instances(c.app)).map((i) => [i.observedState, i.drained])).to.deep.equal([["active", false], ["active", false]]);
    expect((await run("undeploy")).status).to.equal("success");
    expect(await instances(c.app)).to.deep.equal([]);
    await waitFor("the agents to get desired states without the instances", () => c.nodes.every((n) => c.agentOf(c.ids[c.nodes.indexOf(n)]!).fake.lastDesired()?.instances.length === 0));
  });

  it("refuses bad tasks with the right status", async () => {
    const c = await cluster(1);
    const t = (over: Record<string, unknown>) => h.admin.createTask({ kind: "publish", instanceIds: c.ids, version: 2, batchSize: 0, stopOnFailure: false, batchTimeoutS: 0, ...over }, h.as(h.token));
    expect(await rejects(t({ kind: "explode" }))).to.be.instanceOf(InvalidArgumentError);
    expect(await rejects(t({ instanceIds: [] }))).to.be.instanceOf(InvalidArgumentError);
    expect(await rejects(t({ version: 0 }))).to.be.instanceOf(InvalidArgumentError);
    expect((await rejects(t({ version: 99 }))).code).to.equal("NOT_FOUND");
    expect((await rejects(t({ instanceIds: [987654] }))).code).to.equal("NOT_FOUND");
    expect(await rejects(t({ kind: "stop" }))).to.be.instanceOf(InvalidArgumentError);
    // An instance already in an unfinished task.
    c.agentOf(c.ids[0]!).stuck.add(c.ids[0]!);
    const busy = await t({ batchTimeoutS: 2 });
    const clash = await rejects(t({}));
    expect(clash).to.be.instanceOf(FailedPreconditionError);
    expect(clash.message).to.include(`task ${busy.id}`);
    await finished(busy.id);
  });
});
