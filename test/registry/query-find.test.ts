/**
 * The Query API over a real gRPC port: FindObject and WatchObject of a
 * registry started in this process. Runs once per dialect.
 */
import { expect } from "chai";
import { InvalidArgumentError, NotFoundError, UnauthenticatedError } from "sgridnext";
import type { FindObjectReply } from "sgridnext/gen/sgrid/registry/v1/query";
import { type DialectCase, forEachDialect, rejects, uniq } from "./helpers/db";
import { type TestRegistry, seedObj, startTestRegistry, waitFor } from "./helpers/registry";

forEachDialect("registry Query: FindObject and WatchObject", (d: DialectCase) => {
  let reg: TestRegistry;
  before(async () => {
    reg = await startTestRegistry(d);
  });
  after(async () => reg?.cleanup());

  /** FindObject until `pred` holds (the cache follows writes within a poll or two). */
  const findUntil = (obj: string, what: string, pred: (r: FindObjectReply) => boolean) =>
    waitFor(what, async () => {
      const r = await reg.query.findObject({ obj });
      return pred(r) ? r : undefined;
    });

  /** Waits until the cache has loaded a snapshot newer than now (so a write made before is reflected). */
  const nextSnapshot = async () => {
    const g = reg.cache.currentGeneration;
    reg.server.changes.kick();
    await waitFor("a new endpoint snapshot", () => reg.cache.currentGeneration > g);
  };

  it("answers active and inactive endpoints: desired and observed active on an online node, not drained; says why each inactive one is", async () => {
    const s = await seedObj(reg.server.store, { nodes: 6 });
    const [i0, i1, i2, i3, i4, i5] = s.instances;
    await reg.server.store.instances.reportObserved(i1!.id, { state: "failed" });
    await reg.server.store.instances.setDesired(i2!.id, { state: "inactive" });
    await reg.server.store.nodes.setOnline(s.nodes[3]!, false);
    await reg.server.store.instances.setDrained(i4!.id, true);
    await reg.server.store.instances.reportObserved(i5!.id, { state: "activating" });
    const r = await findUntil(s.full, "one active endpoint", (x) => x.active.length === 1 && x.inactive.length === 5);
    expect(r.obj).to.equal(s.full);
    expect(r.active).to.deep.equal([{
      obj: s.full, host: "10.1.0.1", port: 20000, protocol: "grpc", weight: 100, node: s.nodes[0], instanceId: i0!.id, active: true, inactiveReason: "",
    }]);
    expect(r.inactive.map((e) => e.instanceId).sort()).to.deep.equal([i1!.id, i2!.id, i3!.id, i4!.id, i5!.id].sort());
    expect(r.inactive.every((e) => e.active === false)).to.equal(true);
    // Decisions and facts (proxies drop them) vs liveness guesses (proxies keep them as a fallback).
    const reason = new Map(r.inactive.map((e) => [e.instanceId, e.inactiveReason]));
    expect([i1, i2, i3, i4, i5].map((i) => reason.get(i!.id))).to.deep.equal(["down", "stopped", "node_offline", "drained", "not_ready"]);
    // A drained instance on an offline node is drained: a guess never hides a decision.
    await reg.server.store.nodes.setOnline(s.nodes[4]!, false);
    await nextSnapshot();
    const r2 = await reg.query.findObject({ obj: s.full });
    expect(r2.inactive.find((e) => e.instanceId === i4!.id)!.inactiveReason).to.equal("drained");
    expect(r2.revision, "the same answer").to.equal(r.revision);
    expect(r.revision).to.be.a("number").and.not.equal(0);
  });

  it("keeps the revision while the answer is unchanged and changes it with the answer", async () => {
    const s = await seedObj(reg.server.store, { nodes: 2 });
    const before = await findUntil(s.full, "two active endpoints", (x) => x.active.length === 2);
    // A write elsewhere: a new snapshot, the same answer.
    await seedObj(reg.server.store, { nodes: 1 });
    await nextSnapshot();
    const same = await reg.query.findObject({ obj: s.full });
    expect(same).to.deep.equal(before);
    await reg.server.store.instances.setDesired(s.instances[0]!.id, { state: "inactive" });
    const after = await findUntil(s.full, "one active endpoint", (x) => x.active.length === 1);
    expect(after.revision).to.not.equal(before.revision);
    // Back to the first answer: back to its revision (a fingerprint, equal on every registry).
    await reg.server.store.instances.setDesired(s.instances[0]!.id, { state: "active" });
    const again = await findUntil(s.full, "two active endpoints again", (x) => x.active.length === 2);
    expect(again.revision).to.equal(before.revision);
  });

  it("NOT_FOUND for an unknown server or an Obj no instance declares, naming it; INVALID_ARGUMENT for a bad name", async () => {
    const s = await seedObj(reg.server.store, { nodes: 1 });
    await findUntil(s.full, "the seeded Obj", (x) => x.active.length === 1);
    let err = await rejects(reg.query.findObject({ obj: "NoSuchApp.NoServer.Obj" }));
    expect(err).to.be.instanceOf(NotFoundError);
    expect(err.message).to.contain("NoSuchApp.NoServer.Obj").and.contain("no server");
    err = await rejects(reg.query.findObject({ obj: `${s.app}.${s.server}.OtherObj` }));
    expect(err).to.be.instanceOf(NotFoundError);
    expect(err.message).to.contain(`${s.app}.${s.server}.OtherObj`).and.contain("no instance");
    for (const bad of ["", "OnlyTwo.Parts", "A.B.C.D", "App.Ser ver.Obj", "../x.y.z"]) {
      err = await rejects(reg.query.findObject({ obj: bad }));
      expect(err, bad).to.be.instanceOf(InvalidArgumentError);
      if (bad) expect(err.message).to.contain(bad);
    }
    err = await rejects((async () => {
      for await (const _ of reg.query.watchObject({ obj: "NoSuchApp.NoServer.Obj" })) { /* none */ }
    })());
    expect(err).to.be.instanceOf(NotFoundError);
  });

  it("WatchObject sends the current list, then a new one only when it differs, and ends when the client cancels", async () => {
    const s = await seedObj(reg.server.store, { nodes: 2 });
    await findUntil(s.full, "two active endpoints", (x) => x.active.length === 2);
    const ac = new AbortController();
    const it = reg.query.watchObject({ obj: s.full }, { signal: ac.signal })[Symbol.asyncIterator]();
    const first = await it.next();
    expect(first.done).to.equal(false);
    expect(first.value.active).to.have.length(2);
    await waitFor("the watch to be open on the server", () => reg.querySvc.openWatches >= 1);
    // A write that does not change this Obj's answer: nothing must be sent for it.
    await seedObj(reg.server.store, { nodes: 1 });
    await nextSnapshot();
    await reg.server.store.instances.setDesired(s.instances[1]!.id, { state: "inactive" });
    const second = await it.next();
    expect(second.value.revision).to.not.equal(first.value.revision);
    expect(second.value.active.map((e: { instanceId: number }) => e.instanceId)).to.deep.equal([s.instances[0]!.id]);
    expect(second.value.inactive.map((e: { instanceId: number }) => e.instanceId)).to.deep.equal([s.instances[1]!.id]);
    // The node of the last active instance goes offline: the watcher hears it.
    await reg.server.store.nodes.setOnline(s.nodes[0]!, false);
    const third = await it.next();
    expect(third.value.active).to.deep.equal([]);
    expect(third.value.inactive).to.have.length(2);
    const open = reg.querySvc.openWatches;
    ac.abort();
    await rejects(it.next()).catch(() => undefined);
    await waitFor("the server to end the cancelled watch", () => reg.querySvc.openWatches === open - 1);
  });

  it("WatchObject sends an empty list when the Obj's instances are removed, and keeps watching", async () => {
    const s = await seedObj(reg.server.store, { nodes: 1 });
    await findUntil(s.full, "one active endpoint", (x) => x.active.length === 1);
    const ac = new AbortController();
    const it = reg.query.watchObject({ obj: s.full }, { signal: ac.signal })[Symbol.asyncIterator]();
    expect((await it.next()).value.active).to.have.length(1);
    await reg.server.store.instances.remove(s.instances[0]!.id);
    const gone = await it.next();
    expect(gone.value).to.include({ obj: s.full });
    expect(gone.value.active).to.deep.equal([]);
    expect(gone.value.inactive).to.deep.equal([]);
    const node = uniq("back");
    await reg.server.store.nodes.upsert({ name: node, address: "10.9.9.9", agentVersion: "t" });
    const inst = await reg.server.store.instances.create({ application: s.app, server: s.server, node, adapters: [{ obj: s.obj, host: "10.9.9.9", port: 21000 }], desiredState: "active" });
    await reg.server.store.instances.reportObserved(inst.id, { state: "active" });
    const back = await it.next();
    expect(back.value.active.map((e: { node: string }) => e.node)).to.deep.equal([node]);
    ac.abort();
  });
});

forEachDialect("registry Query: with a query token", (d: DialectCase) => {
  let reg: TestRegistry;
  const token = "query-token-0123456789";
  before(async () => {
    reg = await startTestRegistry(d, { queryToken: token, clusterToken: "cluster-token-abcdef" });
  });
  after(async () => reg?.cleanup());

  it("refuses calls without the token or with a wrong one (UNAUTHENTICATED) and serves them with it", async () => {
    const s = await seedObj(reg.server.store, { nodes: 1 });
    reg.server.changes.kick();
    let err = await rejects(reg.query.findObject({ obj: s.full }));
    expect(err).to.be.instanceOf(UnauthenticatedError);
    err = await rejects(reg.query.findObject({ obj: s.full }, { metadata: { authorization: "Bearer wrong-token-0123456789" } }));
    expect(err).to.be.instanceOf(UnauthenticatedError);
    expect(err.message).to.not.contain(token);
    err = await rejects((async () => {
      for await (const _ of reg.query.watchObject({ obj: s.full })) { /* none */ }
    })());
    expect(err).to.be.instanceOf(UnauthenticatedError);
    // Bad input from an unauthenticated caller is refused for the token first, not answered.
    err = await rejects(reg.query.findObject({ obj: "bad" }));
    expect(err).to.be.instanceOf(UnauthenticatedError);
    const auth = { metadata: { authorization: `Bearer ${token}` } };
    const r = await waitFor("the Obj with the token", async () => {
      const x = await reg.query.findObject({ obj: s.full }, auth);
      return x.active.length === 1 ? x : undefined;
    });
    expect(r.active[0]!.port).to.equal(20000);
    // The cluster token is accepted for reads too (agents resolve Objs with it).
    const byCluster = await reg.query.findObject({ obj: s.full }, { metadata: { authorization: "Bearer cluster-token-abcdef" } });
    expect(byCluster.revision).to.equal(r.revision);
  });
});
