/**
 * Issue 17 item 1, end to end with real processes: `sgrid registry`, two
 * `sgrid node` agents, the fault servant on both nodes, and a caller process
 * calling Fault.EchoServer.EchoObj by name at a steady rate
 * (test/fault/harness). A canary of a bad version (every Say fails) is
 * rolled back by the registry on its own, and the caller's failed calls stay
 * within the canary's share of the calls; a good canary is promoted to every
 * instance with 0 failed calls.
 */
import * as path from "node:path";
import { expect } from "chai";
import { FaultCluster } from "./harness/cluster";
import type { Caller } from "./harness/caller";
import { countsBetween, formatCounts } from "./harness/counts";
import { echoPackage } from "./harness/package";
import { ECHO_OBJ, ECHO_SERVER } from "./harness/scenario";
import { waitFor } from "../helpers/wait";

const NODES = ["node-a", "node-b"];
const RATE = 200;

describe("fault suite: canary publish, automatic rollback and promotion @slow", function () {
  this.timeout(8 * 60_000);
  let cluster: FaultCluster;
  let caller: Caller;

  before(async () => {
    cluster = await FaultCluster.start({ name: "canary", nodes: NODES });
    await cluster.publishEcho(ECHO_SERVER, NODES, "EchoObj", "1.0.0");
    await cluster.waitAllActive({ [ECHO_OBJ]: 2 });
    caller = await cluster.startCaller([ECHO_OBJ], RATE);
    await caller.waitOk(200);
  });

  after(async () => {
    await cluster?.stop();
  });

  it("a bad canary (10 % of calls) is rolled back automatically; the caller's failures stay within the canary's share", async () => {
    const bad = await echoPackage(path.join(cluster.out, "packages"), "Fault", "EchoServer", "2.0.0-bad", { failCalls: true });
    const before = caller.counts();
    const r = await cluster.cli(["publish", ECHO_SERVER, bad, "--canary", "10%", "--canary-bake", "60", "--canary-min-calls", "30"]);
    expect(r.code, r.out).to.equal(1);
    expect(r.out).to.include("canary rolled back").and.include("error rate 100.0 %");
    const taskId = Number(/^task (\d+): /m.exec(r.out)![1]);
    const task = await cluster.admin.getTask({ id: taskId }, cluster.as);
    expect(task.status).to.equal("failed");
    expect(task.reason).to.match(/^canary rolled back: error rate 100\.0 %/);
    const canary = task.canary!;
    expect(canary.state).to.equal("rolled_back");
    expect(canary.share).to.be.closeTo(0.1, 0.01);
    expect(canary.rollbackTaskId).to.be.greaterThan(0);
    const rolled = await waitFor("the rollback task to end", async () => {
      const t = await cluster.admin.getTask({ id: canary.rollbackTaskId }, cluster.as);
      return ["success", "failed", "partial"].includes(t.status) ? t : undefined;
    }, 120_000, 200);
    expect(rolled.status).to.equal("success");
    expect(rolled.createdBy).to.equal("registry");
    const atRollback = caller.counts();
    await caller.waitOk(400);
    const after = caller.counts();
    expect(after.failed, "no failed call once the canary was rolled back").to.equal(atRollback.failed);
    const during = countsBetween(before, after);
    const total = during.ok + during.failed;
    console.log(`      bad canary: ${formatCounts(during)}; share ${(100 * canary.share).toFixed(1)} %; failed ${(100 * during.failed / total).toFixed(2)} % of ${total} calls; ${canary.reason}`);
    expect(during.failed, "the bad version got calls").to.be.greaterThan(0);
    expect(Object.keys(during.byCode)).to.deep.equal(["INTERNAL"]);
    expect(during.failed, "failed calls within the canary's share").to.be.at.most(Math.ceil(canary.share * total));
    expect((await cluster.instances("Fault", "EchoServer")).map((i) => i.observedVersion)).to.deep.equal([1, 1]);
    const events = (await cluster.admin.listEvents({ kind: "task.canary", targetPrefix: ECHO_SERVER, actor: "", beforeId: 0, afterId: 0, limit: 20 }, cluster.as)).events;
    expect(events.some((e) => e.message.includes("rolled back: error rate 100.0 %"))).to.equal(true);
  });

  it("a good canary (one instance) passes its bake and is promoted to every instance, with 0 failed calls", async () => {
    const good = await echoPackage(path.join(cluster.out, "packages"), "Fault", "EchoServer", "3.0.0");
    const before = caller.counts();
    const r = await cluster.cli(["publish", ECHO_SERVER, good, "--canary", "1", "--canary-bake", "15", "--canary-min-calls", "30"]);
    expect(r.code, r.out).to.equal(0);
    expect(r.out).to.include("canary promoted").and.match(/task \d+ success: 2 succeeded/);
    const taskId = Number(/^task (\d+): /m.exec(r.out)![1]);
    const task = await cluster.admin.getTask({ id: taskId }, cluster.as);
    expect(task.canary!.state).to.equal("promoted");
    expect(task.canary!.reason).to.include("passed the 15 s bake");
    expect(task.canary!.canaryCalls).to.be.at.least(30);
    await caller.waitOk(200);
    const during = countsBetween(before, caller.counts());
    console.log(`      good canary: ${formatCounts(during)}; ${task.canary!.reason}`);
    expect(during.failed, JSON.stringify(during.byCode)).to.equal(0);
    const versions = (await cluster.instances("Fault", "EchoServer")).map((i) => i.observedVersion);
    expect(versions).to.deep.equal([3, 3]);
    expect((await cluster.instances("Fault", "EchoServer")).map((i) => i.adapters[0]!.weight), "weights restored").to.deep.equal([100, 100]);
  });

  it("a canary with --canary-hold waits for a person: sgrid publish exits 0 saying so, sgrid canary promote finishes it on every instance", async () => {
    const good = await echoPackage(path.join(cluster.out, "packages"), "Fault", "EchoServer", "4.0.0");
    const before = caller.counts();
    // A just-started process can be slow on its first calls on a loaded machine: the p99 ratio is set far off, the hold is the point.
    const r = await cluster.cli(["publish", ECHO_SERVER, good, "--canary", "1", "--canary-bake", "10", "--canary-min-calls", "30", "--canary-max-p99-ratio", "1000", "--canary-hold"]);
    expect(r.code, r.out).to.equal(0);
    const taskId = Number(/^task (\d+): /m.exec(r.out)![1]);
    expect(r.out).to.include(`task ${taskId}: the canary is held; decide with \`sgrid canary promote ${taskId}\``);
    const held = await cluster.admin.getTask({ id: taskId }, cluster.as);
    expect([held.status, held.canary!.state]).to.deep.equal(["running", "held"]);
    expect(held.canary!.reason).to.include("passed the 10 s bake").and.include("held for a person");
    expect((await cluster.instances("Fault", "EchoServer")).map((i) => i.observedVersion).sort()).to.deep.equal([3, 4]);

    const p = await cluster.cli(["canary", "promote", String(taskId)]);
    expect(p.code, p.out).to.equal(0);
    expect(p.out).to.include(`task ${taskId}: promote the canary (it was held)`).and.match(new RegExp(`task ${taskId} success: 2 succeeded`));
    const done = await cluster.admin.getTask({ id: taskId }, cluster.as);
    expect([done.status, done.canary!.state, done.canary!.decidedBy]).to.deep.equal(["success", "promoted", "admin"]);
    expect((await cluster.instances("Fault", "EchoServer")).map((i) => i.observedVersion)).to.deep.equal([4, 4]);
    const again = await cluster.cli(["canary", "rollback", String(taskId)]);
    expect(again.code, again.out).to.not.equal(0);
    expect(again.out).to.include("there is nothing left to decide");
    await caller.waitOk(200);
    const during = countsBetween(before, caller.counts());
    console.log(`      held canary promoted with sgrid canary promote: ${formatCounts(during)}`);
    expect(during.byCode.INTERNAL ?? 0, "the new version answers every call it gets").to.equal(0);
  });
});
