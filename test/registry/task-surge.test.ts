/**
 * A publish, restart or rollback never takes down the last serving endpoint
 * of an Obj (registry/admin/surge.ts), over real gRPC with simulated agents
 * on real node sessions: a single instance gets a surge beside it on another
 * port, FindObject lists an active endpoint at every moment, and the surge
 * is gone at the end; a surge that fails leaves the instance untouched;
 * items on an offline node wait for it and say so. SQLite always, MySQL when
 * SGRID_TEST_MYSQL_URL is set.
 */
import { expect } from "chai";
import { type DialectCase, forEachDialect } from "./helpers/db";
import { type AdminHarness, type SimAgent, finishedTask, simCluster, startAdminRegistry, waitFor } from "./helpers/admin-harness";

forEachDialect("registry tasks: surges @slow", (d: DialectCase) => {
  let h: AdminHarness;
  beforeEach(function () {
    this.currentTest?.timeout(120_000);
  });
  const agents: SimAgent[] = [];
  before(async () => {
    h = await startAdminRegistry(d);
  });
  after(async () => {
    for (const a of agents) await a.close();
    await h?.cleanup();
  });

  const cluster = (n: number) => simCluster(h, agents, n);

  function task(kind: string, ids: number[], version = 0, batchSize = 0, batchTimeoutS = 0) {
    return h.admin.createTask({ kind, instanceIds: ids, version, batchSize, stopOnFailure: true, batchTimeoutS }, h.as(h.token));
  }

  const finished = (id: number) => finishedTask(h, id, 60_000);

  async function instances(app: string) {
    return (await h.admin.listInstances({ application: app, server: "", node: "" }, h.as(h.token))).instances;
  }

  /** Samples FindObject every few ms until stopped: the fewest active endpoints seen, and every port seen active. */
  function watchActive(obj: string) {
    let min = Infinity;
    const ports = new Set<number>();
    let stop = false;
    const loop = (async () => {
      while (!stop) {
        const r = await h.reg.query.findObject({ obj });
        min = Math.min(min, r.active.length);
        for (const e of r.active) ports.add(e.port);
        await new Promise((res) => setTimeout(res, 5));
      }
    })();
    return { async end() { stop = true; await loop; return { min, ports: [...ports].sort() }; } };
  }

  it("publishes a single instance with a surge beside it on another port: an active endpoint at every moment, the surge gone at the end", async () => {
    const c = await cluster(1);
    const before = (await instances(c.app))[0]!;
    const port = before.adapters[0]!.port;
    const watch = watchActive(c.obj);
    const t = await task("publish", c.ids, c.v2.version);
    const mid = await waitFor("the surge beside the instance", async () => (await instances(c.app)).find((i) => i.surgeOf === c.ids[0]));
    expect(mid.node).to.equal(c.nodes[0]);
    expect(mid.adapters[0]!.port).to.not.equal(port);
    expect(mid.desiredVersion).to.equal(2);
    const done = await finished(t.id);
    const seen = await watch.end();
    expect(done.status, done.items[0]!.reason).to.equal("success");
    expect(seen.min, "fewest active endpoints seen during the publish").to.equal(1);
    expect(seen.ports).to.deep.equal([port, mid.adapters[0]!.port].sort());
    const after = await instances(c.app);
    expect(after.map((i) => [i.id, i.adapters[0]!.port, i.observedVersion, i.drained, i.surgeOf])).to.deep.equal([[c.ids[0], port, 2, false, 0]]);
    const events = (await h.admin.listEvents({ kind: "", targetPrefix: `${c.app}.`, actor: "", beforeId: 0, afterId: 0, limit: 50 }, h.as(h.token))).events;
    const surgeEvent = events.find((e) => e.kind === "instance.surge" && e.message.includes(`task ${t.id}`));
    // The version by its number: read before the surge's transaction (inside it, SQLite's one connection is taken).
    expect(surgeEvent?.message).to.include(`surge instance ${mid.id} started beside it`).and.match(/ on version 2$/);
    expect(events.some((e) => e.kind === "instance.surge_end")).to.equal(true);
    await waitFor("the agent to get a desired state without the surge", () => c.agentOn(c.nodes[0]!).fake.lastDesired()?.instances.length === 1);

    // A rollback goes the same way.
    const watchBack = watchActive(c.obj);
    const back = await h.admin.rollbackTask({ id: t.id }, h.as(h.token));
    expect((await finished(back.id)).status).to.equal("success");
    expect((await watchBack.end()).min).to.equal(1);
    expect((await instances(c.app)).map((i) => [i.observedVersion, i.surgeOf])).to.deep.equal([[1, 0]]);
  });

  it("restarts a single instance with a surge: it goes down and up again while the surge serves", async () => {
    const c = await cluster(1);
    const agent = c.agentOn(c.nodes[0]!);
    const from = agent.reports.filter((r) => r.instanceId === c.ids[0]).length;
    const watch = watchActive(c.obj);
    const done = await finished((await task("restart", c.ids)).id);
    expect(done.status, done.items[0]!.reason).to.equal("success");
    expect((await watch.end()).min).to.equal(1);
    expect(agent.reports.filter((r) => r.instanceId === c.ids[0]).slice(from).map((r) => r.state)).to.deep.equal(["inactive", "active"]);
    expect((await instances(c.app)).map((i) => [i.id, i.observedState, i.drained, i.surgeOf])).to.deep.equal([[c.ids[0], "active", false, 0]]);
  });

  it("does not surge when another instance serves: the instances switch one by one", async () => {
    const c = await cluster(2);
    const done = await finished((await task("publish", c.ids, c.v2.version, 1)).id);
    expect(done.status).to.equal("success");
    const events = (await h.admin.listEvents({ kind: "instance.surge", targetPrefix: `${c.app}.`, actor: "", beforeId: 0, afterId: 0, limit: 10 }, h.as(h.token))).events;
    expect(events).to.deep.equal([]);
  });

  it("a surge that fails fails the item; the instance is left serving its version, the surge removed", async () => {
    const c = await cluster(1);
    const agent = c.agentOn(c.nodes[0]!);
    agent.failAbove = Math.max(...(await instances(c.app)).map((i) => i.id));
    try {
      const watch = watchActive(c.obj);
      const done = await finished((await task("publish", c.ids, c.v2.version)).id);
      expect((await watch.end()).min).to.equal(1);
      expect(done.status).to.equal("failed");
      expect(done.items[0]!.reason).to.match(/surge instance \d+ of instance \d+ .* failed on version 2: exit code 3/).and.include("left serving its version untouched");
      expect((await instances(c.app)).map((i) => [i.id, i.desiredVersion, i.observedVersion, i.observedState, i.drained])).to.deep.equal([[c.ids[0], 1, 1, "active", false]]);
    } finally {
      agent.failAbove = 0;
    }
  });

  it("a publish of a server's every instance in one batch: the surge's node installs first, the others keep serving until the surge is reported or for at most settle + grace", async () => {
    // A registry of its own with a longer settle time: the hold (settle + drain grace) is long enough to look at.
    const settleMs = 3000;
    const h2 = await startAdminRegistry(d, { taskSettleMs: settleMs });
    const own: SimAgent[] = [];
    try {
      const c = await simCluster(h2, own, 2);
      const [first, second] = [...c.ids].sort((x, y) => x - y) as [number, number];
      const surgeAgent = c.agentOf(first);
      const other = c.agentOf(second);
      const versionOn = (agent: SimAgent, id: number) => agent.fake.lastDesired()?.instances.find((i) => i.instanceId === id)?.patch?.version;
      // The surge (a new, higher id) is never reported: as while its node downloads the package.
      surgeAgent.silentAbove = second;
      const t = await h2.admin.createTask({ kind: "publish", instanceIds: c.ids, version: c.v2.version, batchSize: 0, stopOnFailure: true, batchTimeoutS: 0 }, h2.as(h2.token));
      const held = await waitFor("the other item to wait for the surge", async () => {
        const x = await h2.admin.getTask({ id: t.id }, h2.as(h2.token));
        return x.items.find((i) => i.instanceId === second && i.reason.includes("being installed first"));
      }, 30_000);
      expect(held.reason).to.match(/^surge instance \d+ beside instance \d+ on node ".+" being installed first; instance \d+ .* keeps serving/);
      expect(versionOn(other, second), "the other instance's desired version while it waits").to.equal(1);
      // Never reported: the hold ends anyway after settle + grace, and the other instance switches.
      const switched = await waitFor("the other item to succeed", async () => {
        const x = await h2.admin.getTask({ id: t.id }, h2.as(h2.token));
        return x.items.find((i) => i.instanceId === second && i.status === "SUCCESS") ? x : undefined;
      }, 60_000);
      expect(switched.items.find((i) => i.instanceId === first)!.status).to.equal("RUNNING");
      expect(versionOn(other, second)).to.equal(2);
      const surge = (await h2.admin.listInstances({ application: c.app, server: "", node: "" }, h2.as(h2.token))).instances.find((i) => i.surgeOf === first)!;
      expect(surgeAgent.reports.some((r) => r.instanceId === surge.id), "the surge was not reported yet").to.equal(false);
      surgeAgent.silentAbove = 0;
      surgeAgent.poke();
      const done = await finishedTask(h2, t.id, 60_000);
      expect(done.status, JSON.stringify(done.items.map((i) => i.reason))).to.equal("success");
      expect((await h2.admin.listInstances({ application: c.app, server: "", node: "" }, h2.as(h2.token))).instances.map((i) => [i.observedVersion, i.surgeOf])).to.deep.equal([[2, 0], [2, 0]]);

    } finally {
      for (const a of own) await a.close();
      await h2.cleanup();
    }
  });

  it("with --batch 1 and the other node offline: the online instance switches with a surge, the offline one waits for its node and says so", async () => {
    const c = await cluster(2);
    const [a, b] = c.nodes as [string, string];
    await c.agentOn(b).close();
    // What the offline sweep does once the heartbeat timeout has passed (600 s in these registries; the fault suite runs the real sweep).
    await h.reg.server.store.nodes.setOnline(b, false);
    await waitFor(`node ${b} offline`, async () => (await h.admin.listNodes({}, h.as(h.token))).nodes.find((n) => n.name === b)?.online === false, 30_000);
    const watch = watchActive(c.obj);
    const t = await task("publish", c.ids, c.v2.version, 1, 20);
    const waiting = await waitFor("the offline item to say it waits for its node", async () => {
      const x = await h.admin.getTask({ id: t.id }, h.as(h.token));
      if (["success", "failed", "partial"].includes(x.status)) throw new Error(`task ended: ${JSON.stringify(x.items.map((i) => [i.status, i.reason]))}`);
      return x.items[1]!.status === "RUNNING" && x.items[1]!.reason.includes("offline") ? x : undefined;
    }, 30_000);
    expect(waiting.items[0]!.status).to.equal("SUCCESS");
    expect(waiting.items[1]!.reason).to.include(`node "${b}" is offline: waiting for it to come back`);
    const done = await finished(t.id);
    expect((await watch.end()).min).to.equal(1);
    expect(done.items.map((i) => i.status)).to.deep.equal(["SUCCESS", "FAILED"]);
    expect(done.items[1]!.reason).to.match(/timed out after 20 s/).and.include("offline");
    const list = await instances(c.app);
    expect(list.find((i) => i.node === a)!.observedVersion).to.equal(2);
    expect(list.filter((i) => i.surgeOf !== 0)).to.deep.equal([]);
  });
});
