/**
 * Instances and Obj endpoints in the registry store. Runs once per dialect.
 */
import { expect } from "chai";
import { AlreadyExistsError, InvalidArgumentError, NotFoundError } from "sgridnext";
import type { KnexStore } from "../../registry/store";
import { type DialectCase, fakeSha, forEachDialect, freshStore, rejects, uniq } from "./helpers/db";

forEachDialect("registry store: instances and endpoints", (d: DialectCase) => {
  let store: KnexStore;
  let cleanup: () => Promise<void>;
  before(async () => ({ store, cleanup } = await freshStore(d)));
  after(async () => cleanup?.());

  /** A server on two new nodes' worth of setup; returns the names. */
  async function setup(): Promise<{ app: string; n1: string; n2: string }> {
    const app = uniq("App");
    const n1 = uniq("n1-");
    const n2 = uniq("n2-");
    await store.nodes.upsert({ name: n1, address: "10.0.0.1", agentVersion: "1" });
    await store.nodes.upsert({ name: n2, address: "10.0.0.2", agentVersion: "1" });
    await store.servers.create({ application: app, name: "Hello", type: "node" });
    return { app, n1, n2 };
  }

  it("places a server on a node with adapters, env, limits, health check and desired state", async () => {
    const { app, n1 } = await setup();
    const patch = await store.patches.create({ application: app, server: "Hello", sha256: fakeSha("p"), size: 5, uploader: "admin", storageKey: "k" });
    await store.servers.update(app, "Hello", { defaultPatchId: patch.id });
    const inst = await store.instances.create({
      application: app, server: "Hello", node: n1,
      adapters: [{ obj: "GreeterObj", host: "0.0.0.0", port: 10000 }, { obj: "AdminObj", host: "127.0.0.1", port: 10001, protocol: "sgrid", weight: 7 }],
      env: { NODE_ENV: "production" }, limits: { memoryBytes: 1 << 28, cpuCores: 1.5 }, healthCheck: { type: "http", path: "/healthz", port: 10002 },
    });
    expect(inst).to.include({ application: app, server: "Hello", node: n1, desiredState: "inactive", desiredPatchId: patch.id, observedState: "inactive", pid: null, restarts: 0, drained: false });
    expect(inst.adapters).to.deep.equal([
      { obj: "GreeterObj", host: "0.0.0.0", port: 10000, protocol: "grpc", weight: 100 },
      { obj: "AdminObj", host: "127.0.0.1", port: 10001, protocol: "sgrid", weight: 7 },
    ]);
    expect(inst.env).to.deep.equal({ NODE_ENV: "production" });
    expect(inst.limits).to.deep.equal({ memoryBytes: 1 << 28, cpuCores: 1.5 });
    expect(inst.healthCheck).to.deep.equal({ type: "http", path: "/healthz", port: 10002 });
    expect(await store.instances.get(inst.id)).to.deep.equal(inst);
    expect(await store.instances.find(app, "Hello", n1)).to.deep.equal(inst);
    expect(await store.instances.list({ application: app })).to.deep.equal([inst]);
    expect(await store.instances.list({ node: n1, server: "Hello" })).to.deep.equal([inst]);
    expect(await store.instances.usedPorts(n1)).to.deep.equal([10000, 10001]);
  });

  it("refuses a second instance of a server on one node, and a port already used on the node", async () => {
    const { app, n1, n2 } = await setup();
    await store.instances.create({ application: app, server: "Hello", node: n1, adapters: [{ obj: "A", host: "h", port: 11000 }] });
    let err = await rejects(store.instances.create({ application: app, server: "Hello", node: n1, adapters: [] }));
    expect(err).to.be.instanceOf(AlreadyExistsError);
    expect(err.message).to.contain(`"${app}.Hello"`).and.contain(`"${n1}"`);
    await store.servers.create({ application: app, name: "Other", type: "binary" });
    err = await rejects(store.instances.create({ application: app, server: "Other", node: n1, adapters: [{ obj: "B", host: "h", port: 11000 }] }));
    expect(err).to.be.instanceOf(AlreadyExistsError);
    expect(err.message).to.contain("port 11000").and.contain(`${app}.Hello.A`);
    // The same port on another node is fine.
    await store.instances.create({ application: app, server: "Other", node: n2, adapters: [{ obj: "B", host: "h", port: 11000 }] });
  });

  it("answers NOT_FOUND naming the unknown server, node, instance or patch", async () => {
    const { app, n1 } = await setup();
    let err = await rejects(store.instances.create({ application: app, server: "Nope", node: n1, adapters: [] }));
    expect(err).to.be.instanceOf(NotFoundError);
    expect(err.message).to.contain(`"${app}.Nope"`);
    err = await rejects(store.instances.create({ application: app, server: "Hello", node: "no-such-node", adapters: [] }));
    expect(err).to.be.instanceOf(NotFoundError);
    expect(err.message).to.contain('"no-such-node"');
    err = await rejects(store.instances.get(999999));
    expect(err).to.be.instanceOf(NotFoundError);
    expect(err.message).to.contain("instance 999999");
    err = await rejects(store.instances.create({ application: app, server: "Hello", node: n1, adapters: [], desiredPatchId: 999999 }));
    expect(err).to.be.instanceOf(NotFoundError);
    expect(err.message).to.contain("patch 999999");
    expect(await store.instances.find(app, "Hello", n1)).to.equal(undefined);
  });

  it("refuses bad adapters, env and limits", async () => {
    const { app, n1 } = await setup();
    const bad: Array<[any, string]> = [
      [{ adapters: [{ obj: "a/b", host: "h", port: 1 }] }, "Obj name"],
      [{ adapters: [{ obj: "A", host: "h", port: 0 }] }, "port"],
      [{ adapters: [{ obj: "A", host: "h", port: 70000 }] }, "port"],
      [{ adapters: [{ obj: "A", host: "", port: 1 }] }, "host"],
      [{ adapters: [{ obj: "A", host: "h", port: 1, protocol: "http" }] }, "protocol"],
      [{ adapters: [{ obj: "A", host: "h", port: 1 }, { obj: "A", host: "h", port: 2 }] }, "declared twice"],
      [{ adapters: [], env: { "BAD-NAME": "x" } }, "env"],
      [{ adapters: [], limits: { memoryBytes: -1 } }, "memoryBytes"],
      [{ adapters: [], limits: { cpuCores: 0 } }, "cpuCores"],
      [{ adapters: [], limits: { disk: 1 } }, "disk"],
      [{ adapters: [], desiredState: "running" }, "desired state"],
    ];
    for (const [extra, what] of bad) {
      const err = await rejects(store.instances.create({ application: app, server: "Hello", node: n1, ...extra }));
      expect(err, what).to.be.instanceOf(InvalidArgumentError);
      expect(err.message).to.contain(what);
    }
  });

  it("updates spec, desired state, observed state and the drained flag", async () => {
    const { app, n1 } = await setup();
    const p1 = await store.patches.create({ application: app, server: "Hello", sha256: fakeSha("1"), size: 1, uploader: "admin", storageKey: "k1" });
    const inst = await store.instances.create({ application: app, server: "Hello", node: n1, adapters: [{ obj: "A", host: "h", port: 12000 }] });
    const spec = await store.instances.updateSpec(inst.id, { adapters: [{ obj: "A", host: "h", port: 12001 }], env: { X: "y" }, limits: { pids: 100 }, healthCheck: null });
    expect(spec.adapters[0].port).to.equal(12001);
    expect(spec).to.deep.include({ env: { X: "y" }, limits: { pids: 100 }, healthCheck: null });
    expect(await store.instances.usedPorts(n1)).to.deep.equal([12001]);
    const desired = await store.instances.setDesired(inst.id, { state: "active", patchId: p1.id });
    expect(desired).to.include({ desiredState: "active", desiredPatchId: p1.id });
    const t = Date.now();
    const obs = await store.instances.reportObserved(inst.id, { state: "failed", pid: 321, patchId: p1.id, restarts: 3, lastExitReason: "exit code 1", at: t });
    expect(obs).to.include({ observedState: "failed", pid: 321, observedPatchId: p1.id, restarts: 3, lastExitReason: "exit code 1", observedAt: t });
    const obs2 = await store.instances.reportObserved(inst.id, { state: "inactive", pid: null });
    expect(obs2).to.include({ observedState: "inactive", pid: null, restarts: 3, lastExitReason: "exit code 1" });
    expect((await store.instances.setDrained(inst.id, true)).drained).to.equal(true);
    const err = await rejects(store.instances.reportObserved(inst.id, { state: "exploded" as any }));
    expect(err).to.be.instanceOf(InvalidArgumentError);
    // recordObserved (the node session's write): the same columns, no read-back, the observed topic only.
    const revs = await store.revisions.get();
    await store.instances.recordObserved(inst.id, { state: "active", pid: 654, patchId: p1.id, restarts: 4, lastExitReason: null, at: t + 1 });
    expect(await store.instances.get(inst.id)).to.include({ observedState: "active", pid: 654, observedPatchId: p1.id, restarts: 4, lastExitReason: null, observedAt: t + 1 });
    const revs2 = await store.revisions.get();
    expect(revs2.observed).to.equal(revs.observed + 1);
    expect(revs2.instances).to.equal(revs.instances);
    expect(await rejects(store.instances.recordObserved(999_999_999, { state: "active" }))).to.be.instanceOf(NotFoundError);
    expect(await rejects(store.instances.recordObserved(inst.id, { state: "exploded" as any }))).to.be.instanceOf(InvalidArgumentError);
    expect((await store.instances.setDesired(inst.id, { patchId: null })).desiredPatchId).to.equal(null);
  });

  it("finds an Obj's endpoints, active only when desired and observed active, node online and not drained", async () => {
    const { app, n1, n2 } = await setup();
    const obj = `${app}.Hello.GreeterObj`;
    const i1 = await store.instances.create({ application: app, server: "Hello", node: n1, adapters: [{ obj: "GreeterObj", host: "10.0.0.1", port: 13000, weight: 3 }, { obj: "Other", host: "10.0.0.1", port: 13001 }], desiredState: "active" });
    const i2 = await store.instances.create({ application: app, server: "Hello", node: n2, adapters: [{ obj: "GreeterObj", host: "10.0.0.2", port: 13000, protocol: "sgrid" }], desiredState: "active" });
    const activeOf = async () => Object.fromEntries((await store.endpoints.find(obj)).map((e) => [e.node, e.active]));
    const reasonOf = async () => Object.fromEntries((await store.endpoints.find(obj)).map((e) => [e.node, e.inactiveReason]));
    expect(await activeOf()).to.deep.equal({ [n1]: false, [n2]: false }); // not running yet
    expect(await reasonOf(), "never reported running").to.deep.equal({ [n1]: "down", [n2]: "down" });
    await store.instances.reportObserved(i1.id, { state: "active", pid: 1 });
    await store.instances.reportObserved(i2.id, { state: "active", pid: 2 });
    const eps = await store.endpoints.find(obj);
    expect(eps).to.have.length(2);
    expect(eps.find((e) => e.node === n1)).to.deep.equal({
      obj, instanceId: i1.id, node: n1, host: "10.0.0.1", port: 13000, protocol: "grpc", weight: 3, active: true, inactiveReason: "",
      desiredState: "active", observedState: "active", nodeOnline: true, drained: false,
    });
    expect(eps.find((e) => e.node === n2)).to.include({ protocol: "sgrid", weight: 100, active: true });
    await store.instances.setDrained(i1.id, true);
    expect(await activeOf()).to.deep.equal({ [n1]: false, [n2]: true });
    expect(await reasonOf()).to.deep.equal({ [n1]: "drained", [n2]: "" });
    await store.instances.setDrained(i1.id, false);
    await store.nodes.setOnline(n2, false);
    expect(await activeOf()).to.deep.equal({ [n1]: true, [n2]: false });
    expect(await reasonOf()).to.deep.equal({ [n1]: "", [n2]: "node_offline" });
    await store.instances.setDesired(i1.id, { state: "inactive" });
    expect(await activeOf()).to.deep.equal({ [n1]: false, [n2]: false });
    expect(await reasonOf()).to.deep.equal({ [n1]: "stopped", [n2]: "node_offline" });
    const all = await store.endpoints.list({ application: app });
    expect(all.map((e) => e.obj).sort()).to.deep.equal([obj, obj, `${app}.Hello.Other`]);
  });

  it("answers NOT_FOUND for an unknown Obj and INVALID_ARGUMENT for a malformed one", async () => {
    const { app, n1 } = await setup();
    let err = await rejects(store.endpoints.find(`${app}.Nope.GreeterObj`));
    expect(err).to.be.instanceOf(NotFoundError);
    expect(err.message).to.contain(`"${app}.Nope.GreeterObj"`);
    await store.instances.create({ application: app, server: "Hello", node: n1, adapters: [{ obj: "GreeterObj", host: "h", port: 14000 }] });
    err = await rejects(store.endpoints.find(`${app}.Hello.MissingObj`));
    expect(err).to.be.instanceOf(NotFoundError);
    expect(err.message).to.contain(`"${app}.Hello.MissingObj"`);
    for (const bad of ["Demo.Hello", "Demo.Hello.Greeter.Obj", "Demo/x.Hello.Obj", "", "Demo..Obj"]) {
      err = await rejects(store.endpoints.find(bad));
      expect(err, bad).to.be.instanceOf(InvalidArgumentError);
    }
  });

  it("removes an instance with its instance-level configs", async () => {
    const { app, n1 } = await setup();
    const inst = await store.instances.create({ application: app, server: "Hello", node: n1, adapters: [] });
    const scope = { level: "instance" as const, application: app, server: "Hello", node: n1 };
    await store.configs.put(scope, "own.conf", { content: "x", author: "admin" });
    const r0 = await store.revisions.get();
    await store.instances.remove(inst.id);
    const r1 = await store.revisions.get();
    expect(r1.instances).to.equal(r0.instances + 1);
    expect(r1.configs).to.equal(r0.configs + 1);
    expect(await store.instances.find(app, "Hello", n1)).to.equal(undefined);
    expect(await store.configs.listFiles(scope)).to.deep.equal([]);
    const err = await rejects(store.instances.remove(inst.id));
    expect(err).to.be.instanceOf(NotFoundError);
  });
});
