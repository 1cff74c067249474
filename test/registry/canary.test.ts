/**
 * Canary publishes, the parts that decide before and after anything runs:
 * the plan (which instances, what weights, what share), the judge (the
 * verdict from the service monitor's figures), and the Admin API refusing
 * bad canary input with INVALID_ARGUMENT and nothing started.
 */
import { expect } from "chai";
import { FailedPreconditionError, InvalidArgumentError, LATENCY_BUCKETS_MS } from "sgridnext";
import { judgeCanary } from "../../registry/admin/canary-judge";
import { CANARY_DEFAULTS, canarySettings, planCanary } from "../../registry/admin/canary-plan";
import type { InstanceRecord } from "../../registry/store/records";
import { type DialectCase, forEachDialect } from "./helpers/db";
import { type AdminHarness, addPatch, rejects, startAdminRegistry, uniq } from "./helpers/admin-harness";

const opts = (o: Partial<{ percent: number; instances: number; bakeS: number; maxErrorRateDelta: number; minCalls: number; hold: boolean }>) => ({
  percent: 0, instances: 0, bakeS: 0, maxP99Ratio: 0, minCalls: 0, p99FloorMs: 0, hold: false, ...o,
});
const inst = (id: number, weight = 100) => ({ id, adapters: [{ obj: "EchoObj", host: "", port: 20000 + id, protocol: "grpc", weight }] }) as unknown as InstanceRecord;
/** `calls` calls of which `errors` failed, all in the bucket of `ms`. */
const sums = (calls: number, errors: number, ms = 1) => {
  const buckets = LATENCY_BUCKETS_MS.map(() => 0);
  buckets[LATENCY_BUCKETS_MS.findIndex((b) => b >= ms)] = calls;
  return { calls, errors, buckets };
};

describe("canary plan and judge", () => {
  it("a share of calls picks as few instances as it rounds to and sets their weights to give it", () => {
    const plan = planCanary(canarySettings(opts({ percent: 10 }), 2), [inst(1), inst(2)]);
    expect(plan.canaryIds).to.deep.equal([1]);
    expect(plan.weights).to.deep.equal({ 1: { EchoObj: 11 } });
    expect(plan.originalWeights).to.deep.equal({ 1: { EchoObj: 100 } });
    expect(plan.share).to.be.closeTo(0.1, 0.005);
    const ten = planCanary(canarySettings(opts({ percent: 30 }), 10), Array.from({ length: 10 }, (_, i) => inst(i + 1)));
    expect(ten.canaryIds).to.deep.equal([1, 2, 3]);
    expect(ten.share).to.be.closeTo(0.3, 0.005);
  });

  it("a number of instances takes the first ones and leaves weights alone", () => {
    const plan = planCanary(canarySettings(opts({ instances: 2 }), 4), [inst(1), inst(2), inst(3), inst(4)]);
    expect(plan.canaryIds).to.deep.equal([1, 2]);
    expect(plan.weights).to.deep.equal({});
    expect(plan.share).to.equal(0.5);
  });

  it("fills in the documented defaults", () => {
    const s = canarySettings(opts({ percent: 5 }), 3);
    expect(s).to.include({ bakeS: CANARY_DEFAULTS.bakeS, maxErrorRateDelta: 1, maxP99Ratio: 1.5, minCalls: 100, p99FloorMs: 10, hold: false });
    expect(canarySettings({ ...opts({ percent: 5 }), maxErrorRateDelta: 0 }, 3).maxErrorRateDelta, "0 points is a value, not the default").to.equal(0);
  });

  it("refuses 0 %, 100 % and more, a count above (or equal to) the instances, both or neither, one instance", () => {
    const bad = (o: ReturnType<typeof opts>, n: number) => expect(() => canarySettings(o, n)).to.throw(InvalidArgumentError);
    bad(opts({}), 3);
    bad(opts({ percent: 100 }), 3);
    bad(opts({ percent: 150 }), 3);
    bad(opts({ percent: -5 }), 3);
    bad(opts({ percent: Number.NaN }), 3);
    bad(opts({ instances: 4 }), 3);
    bad(opts({ instances: 3 }), 3);
    bad(opts({ percent: 10, instances: 1 }), 3);
    bad(opts({ percent: 10 }), 1);
    expect(() => canarySettings(opts({ instances: 4 }), 3)).to.throw(/above the 3 instance/);
    expect(() => canarySettings(opts({ percent: 150 }), 3)).to.throw(/over 0 % and under 100 %/);
  });

  const settings = canarySettings(opts({ percent: 10, bakeS: 60, minCalls: 50 }), 2);
  it("fails a canary at once when its error rate is above the old version's by more than allowed, once it has enough calls", () => {
    const v = judgeCanary({ canary: sums(60, 60), baseline: sums(540, 0), settings, now: 0, bakeEndsAt: 60_000 });
    expect(v.verdict).to.equal("fail");
    expect(v.reason).to.include("error rate 100.0 %").and.include("60 error(s) in 60 call(s)");
    expect(judgeCanary({ canary: sums(40, 40), baseline: sums(540, 0), settings, now: 0, bakeEndsAt: 60_000 }).verdict, "fewer than min calls").to.equal("wait");
  });

  it("fails a slow canary (p99 over the ratio and the floor), not a canary a bucket slower under the floor", () => {
    expect(judgeCanary({ canary: sums(100, 0, 100), baseline: sums(900, 0, 20), settings, now: 0, bakeEndsAt: 1 }).verdict).to.equal("fail");
    expect(judgeCanary({ canary: sums(100, 0, 2), baseline: sums(900, 0, 1), settings, now: 1, bakeEndsAt: 1 }).verdict).to.equal("pass");
  });

  it("passes only after the bake, and holds a canary that got too few calls to judge", () => {
    expect(judgeCanary({ canary: sums(100, 0), baseline: sums(900, 1), settings, now: 59_000, bakeEndsAt: 60_000 }).verdict).to.equal("wait");
    expect(judgeCanary({ canary: sums(100, 0), baseline: sums(900, 1), settings, now: 60_000, bakeEndsAt: 60_000 }).verdict).to.equal("pass");
    const few = judgeCanary({ canary: sums(3, 0), baseline: sums(900, 1), settings, now: 60_000, bakeEndsAt: 60_000 });
    expect(few.verdict).to.equal("insufficient");
    expect(few.reason).to.include("only 3 call(s)");
  });
});

forEachDialect("registry admin API: canary input", (d: DialectCase) => {
  let h: AdminHarness;
  before(async () => {
    h = await startAdminRegistry(d);
  });
  after(async () => {
    await h?.cleanup();
  });

  it("refuses bad canary options with INVALID_ARGUMENT; no task is created and no weight changes", async () => {
    const app = uniq("App");
    const names = [uniq("node"), uniq("node"), uniq("node")];
    for (const [i, name] of names.entries()) await h.reg.server.store.nodes.upsert({ name, address: `10.9.1.${i + 1}:9600`, agentVersion: "test" });
    const ad = [{ obj: "EchoObj", host: "", port: 0, protocol: "", weight: 0 }];
    const ids = (await h.admin.deploy({ application: app, server: "Echo", type: "node", nodes: names, adapters: ad }, h.as(h.token))).instances.map((i) => i.id);
    const patch = await addPatch(h.reg.server.store, app, "Echo");
    const base = { kind: "publish", instanceIds: ids, version: patch.version, batchSize: 0, stopOnFailure: false, batchTimeoutS: 0 };
    const before = (await h.admin.listTasks({ application: app, server: "", limit: 100, beforeId: 0 }, h.as(h.token))).tasks.length;
    for (const [canary, words] of [
      [opts({}), "over 0 %"],
      [opts({ percent: 100 }), "under 100 %"],
      [opts({ percent: 250 }), "under 100 %"],
      [opts({ instances: 4 }), "above the 3 instance(s)"],
      [opts({ instances: 3 }), "every instance"],
      [opts({ percent: 10, instances: 1 }), "not both"],
      [{ ...opts({ percent: 10 }), maxErrorRateDelta: 101 }, "0 to 100 percentage points"],
    ] as const) {
      const err = await rejects(h.admin.createTask({ ...base, canary }, h.as(h.token)));
      expect(err, JSON.stringify(canary)).to.be.instanceOf(InvalidArgumentError);
      expect(err.message).to.include(words);
    }
    const restart = await rejects(h.admin.createTask({ ...base, kind: "restart", version: 0, canary: opts({ percent: 10 }) }, h.as(h.token)));
    expect(restart).to.be.instanceOf(InvalidArgumentError);
    expect((await h.admin.listTasks({ application: app, server: "", limit: 100, beforeId: 0 }, h.as(h.token))).tasks).to.have.length(before);
    for (const i of (await h.admin.listInstances({ application: app, server: "Echo", node: "" }, h.as(h.token))).instances) {
      expect(i.adapters[0]!.weight).to.equal(100);
      expect(i.desiredState).to.equal("inactive");
    }
  });

  it("DecideCanary: a bad action is INVALID_ARGUMENT, a task without a canary FAILED_PRECONDITION", async () => {
    const app = uniq("App");
    const name = uniq("node");
    await h.reg.server.store.nodes.upsert({ name, address: "10.9.2.1:9600", agentVersion: "test" });
    const [i] = (await h.admin.deploy({ application: app, server: "Echo", type: "node", nodes: [name], adapters: [] }, h.as(h.token))).instances;
    const task = await h.admin.createTask({ kind: "stop", instanceIds: [i!.id], version: 0, batchSize: 0, stopOnFailure: false, batchTimeoutS: 0 }, h.as(h.token));
    expect(await rejects(h.admin.decideCanary({ id: task.id, action: "maybe" }, h.as(h.token)))).to.be.instanceOf(InvalidArgumentError);
    const none = await rejects(h.admin.decideCanary({ id: task.id, action: "promote" }, h.as(h.token)));
    expect(none).to.be.instanceOf(FailedPreconditionError);
    expect(none.message).to.include("is not a canary publish");
  });
});
