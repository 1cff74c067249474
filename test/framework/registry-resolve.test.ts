/**
 * Proxies made from a bare Obj name, resolved through the registry's Query
 * API (a stand-in registry on a real port; real servants in process).
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Application, CancelledError, Communicator, NoEndpointError, type Endpoint } from "sgridnext";
import { EchoProxy } from "../gen/demo/echo.sgrid";
import { EchoImpl } from "../helpers/echo-servant";
import { outputDir } from "../helpers/paths";
import { StandInRegistry } from "./registry-standin";
import { waitFor } from "../helpers/wait";

const OBJ = "Test.EchoServer.EchoObj";

/** Polls `cond` until it is true; fails after `timeoutMs` with `what`. */

async function startServant(name: string, protocol: "grpc" | "sgrid" = "grpc"): Promise<{ app: Application; port: number; impl: EchoImpl }> {
  const impl = new EchoImpl(name);
  const app = new Application({ app: "Test", server: "EchoServer", handleSignals: false, agent: "", registry: "", adapters: { EchoObj: `${protocol === "sgrid" ? "sgrid://" : ""}127.0.0.1:0` } });
  app.addServant("EchoObj", impl);
  await app.start();
  return { app, port: app.adapters()[0]!.endpoint.port, impl };
}

async function servedBy(proxy: EchoProxy, n: number, hashKey?: string): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const r = await proxy.say({ text: "x" }, hashKey === undefined ? undefined : { hashKey });
    counts.set(r.metadata.served_by!, (counts.get(r.metadata.served_by!) ?? 0) + 1);
  }
  return counts;
}

describe("framework registry resolution (stand-in registry)", function () {
  this.timeout(60_000);
  let registry: StandInRegistry;
  const servants: Array<{ app: Application; port: number; impl: EchoImpl }> = [];
  const comms: Communicator[] = [];
  let cacheRoot: string;

  // As inside a servant (an Application keeps its watches open between calls); a standalone
  // client's watch-while-used is in standalone-client.test.ts.
  function communicator(extra: ConstructorParameters<typeof Communicator>[0] = {}): Communicator {
    const c = new Communicator({ registry: registry.address, cacheDir: cacheRoot, env: {}, keepWatching: true, ...extra });
    comms.push(c);
    return c;
  }

  let testNo = 0;
  before(async () => {
    registry = new StandInRegistry();
    await registry.start();
    for (const name of ["a", "b", "c"]) servants.push(await startServant(name));
  });

  beforeEach(() => {
    cacheRoot = outputDir(`registry-resolve-${++testNo}`);
    registry.query.set(OBJ, servants.map((s) => ({ port: s.port })));
  });

  afterEach(() => {
    for (const c of comms.splice(0)) c.close();
  });

  after(async () => {
    await registry.stop();
    for (const s of servants) await s.app.stop(200);
  });

  it("resolves a bare Obj name and round-robins over the active endpoints", async () => {
    const proxy = communicator().stringToProxy(EchoProxy, OBJ);
    const counts = await servedBy(proxy, 30);
    expect([...counts.keys()].sort()).to.deep.equal(["a", "b", "c"]);
    for (const n of counts.values()) expect(n).to.equal(10);
  });

  it("shares one proxy and one registry watch per Obj, however often it is asked for", async () => {
    const comm = communicator();
    const watchesBefore = registry.query.watchCalls;
    const p1 = comm.stringToProxy(EchoProxy, OBJ);
    const p2 = comm.stringToProxy(EchoProxy, OBJ);
    const p3 = comm.stringToProxy(EchoProxy, OBJ, { strategy: "random" });
    expect(p2).to.equal(p1);
    expect(p3).to.not.equal(p1);
    await p1.say({ text: "1" });
    await p3.say({ text: "3" });
    await waitFor("the watch to open", () => registry.query.watchCalls > watchesBefore);
    await sleep(200);
    expect(registry.query.watchCalls - watchesBefore).to.equal(1);
    expect(p3.$invoker.source).to.equal(p1.$invoker.source);
  });

  it("sends a new instance traffic as soon as it is active, and a drained one none", async () => {
    const proxy = communicator().stringToProxy(EchoProxy, OBJ);
    await servedBy(proxy, 3);
    const d = await startServant("d");
    servants.push(d);
    registry.query.set(OBJ, servants.map((s) => ({ port: s.port })));
    // The watch delivers the change: poll (no fixed sleep) until "d" answers.
    await waitFor("the new instance to get a call", async () => (await servedBy(proxy, 4)).has("d"), 5_000);

    // Drain "a": once the proxy's list no longer has it, it gets no new calls.
    const drained = servants[0]!;
    registry.query.set(OBJ, servants.filter((s) => s !== drained).map((s) => ({ port: s.port })));
    await waitFor("the drained endpoint to leave the list", () => !proxy.$invoker.currentEndpoints().some((e) => e.port === drained.port));
    const before = drained.impl.calls;
    const counts = await servedBy(proxy, 60);
    expect(drained.impl.calls).to.equal(before);
    expect(counts.has("a")).to.equal(false);
    expect([...counts.keys()].sort()).to.deep.equal(["b", "c", "d"]);
  });

  it("feeds the registry's weights to the weighted strategy", async () => {
    registry.query.set(OBJ, [{ port: servants[0]!.port, weight: 100 }, { port: servants[1]!.port, weight: 300 }]);
    const proxy = communicator().stringToProxy(EchoProxy, OBJ, { strategy: "weighted" });
    const counts = await servedBy(proxy, 80);
    expect(counts.get("a")).to.equal(20);
    expect(counts.get("b")).to.equal(60);
  });

  it("prefers native endpoints when any is active, and falls back to gRPC when none is", async () => {
    const native = await startServant("native", "sgrid");
    try {
      registry.query.set(OBJ, [{ port: servants[1]!.port, protocol: "grpc" }, { port: native.port, protocol: "sgrid" }]);
      const proxy = communicator().stringToProxy(EchoProxy, OBJ);
      const counts = await servedBy(proxy, 10);
      expect([...counts.entries()]).to.deep.equal([["native", 10]]);
      registry.query.set(OBJ, [{ port: servants[1]!.port, protocol: "grpc" }]);
      await waitFor("the native endpoint to leave the list", () => proxy.$invoker.currentEndpoints().every((e: Endpoint) => e.protocol === "grpc"));
      expect([...(await servedBy(proxy, 5)).keys()]).to.deep.equal(["b"]);
    } finally {
      await native.app.stop(200);
    }
  });

  it("routes a hash key to the same instance every time, and consistent hash moves about 1/N of keys when one is added", async () => {
    registry.query.set(OBJ, servants.slice(0, 3).map((s) => ({ port: s.port })));
    const proxy = communicator().stringToProxy(EchoProxy, OBJ, { strategy: "consistent-hash" });
    const keys = Array.from({ length: 300 }, (_, i) => `user-${i}`);
    const before = new Map<string, string>();
    for (const k of keys) {
      const owners = await servedBy(proxy, 2, k);
      expect(owners.size, `key ${k} stays on one instance`).to.equal(1);
      before.set(k, [...owners.keys()][0]!);
    }
    const extra = await startServant("e");
    try {
      registry.query.set(OBJ, [...servants.slice(0, 3), extra].map((s) => ({ port: s.port })));
      await waitFor("the 4th endpoint to arrive", () => proxy.$invoker.currentEndpoints().length === 4);
      let moved = 0;
      for (const k of keys) {
        const r = await proxy.say({ text: k }, { hashKey: k });
        if (r.metadata.served_by !== before.get(k)) {
          moved++;
          expect(r.metadata.served_by, "a key only moves to the new instance").to.equal("e");
        }
      }
      // Ideal is 1/4 of 300 = 75; allow the ring's unevenness.
      expect(moved).to.be.within(40, 120);
    } finally {
      registry.query.set(OBJ, servants.map((s) => ({ port: s.port })));
      await extra.app.stop(200);
    }
  });

  it("keeps calling from memory while the registry is down, and a new communicator starts from the disk cache", async () => {
    const comm = communicator();
    const proxy = comm.stringToProxy(EchoProxy, OBJ);
    await servedBy(proxy, 3);
    await comm.registry()!.flush();
    const cacheFile = path.join(cacheRoot, `${OBJ}.json`);
    await waitFor("the cache file", () => fs.existsSync(cacheFile));
    const cached = JSON.parse(fs.readFileSync(cacheFile, "utf8")) as { endpoints: Array<{ port: number }> };
    expect(cached.endpoints.map((e) => e.port).sort()).to.deep.equal(servants.map((s) => s.port).sort());

    await registry.stop();
    try {
      const counts = await servedBy(proxy, 30);
      expect([...counts.values()].reduce((a, b) => a + b, 0)).to.equal(30);
      const fresh = communicator().stringToProxy(EchoProxy, OBJ);
      const freshCounts = await servedBy(fresh, servants.length * 2);
      expect(freshCounts.size).to.equal(servants.length);
      expect(fresh.$invoker.source.describe()).to.match(/cache/);
    } finally {
      await registry.start();
    }
    // The watch comes back on its own after the registry restarts.
    const watchesBefore = registry.query.watchCalls;
    await waitFor("the proxy to re-watch", () => registry.query.watchCalls > watchesBefore, 40_000);
  });

  it("falls back to endpoints the registry only suspects when no active one is left, drops decided ones at once, and keeps the disk cache", async () => {
    const comm = communicator();
    const proxy = comm.stringToProxy(EchoProxy, OBJ);
    const [a, b, c] = servants as [typeof servants[0], typeof servants[0], typeof servants[0]];
    await servedBy(proxy, 3);
    await comm.registry()!.flush();
    const cacheFile = path.join(cacheRoot, `${OBJ}.json`);
    await waitFor("the cache file", () => fs.existsSync(cacheFile));
    const cachedPorts = () => (JSON.parse(fs.readFileSync(cacheFile, "utf8")) as { endpoints: Array<{ port: number }> }).endpoints.map((e) => e.port).sort();
    const all = servants.map((s) => s.port).sort();
    expect(cachedPorts()).to.deep.equal(all);
    const ports = () => proxy.$invoker.currentEndpoints().map((e) => e.port).sort();

    // The registry lost a's node and has not seen b ready (guesses); c is drained (a decision).
    registry.query.set(OBJ, [], [{ port: a.port, reason: "node_offline" }, { port: b.port, reason: "not_ready" }, { port: c.port, reason: "drained" }]);
    await waitFor("c to leave the list", () => !ports().includes(c.port));
    expect(ports()).to.deep.equal([a.port, b.port].sort());
    const counts = await servedBy(proxy, 20);
    expect([...counts.keys()].sort()).to.deep.equal(["a", "b"]);
    expect(proxy.$invoker.source.describe()).to.contain("no active endpoint: calling suspect ones");
    await comm.registry()!.flush();
    expect(cachedPorts(), "an all-suspect list is not written to the disk cache").to.deep.equal(all);

    // As soon as one endpoint is active again, only it is called.
    registry.query.set(OBJ, [{ port: b.port }], [{ port: a.port, reason: "node_offline" }, { port: c.port, reason: "drained" }]);
    await waitFor("only b in the list", () => ports().length === 1 && ports()[0] === b.port);
    expect([...(await servedBy(proxy, 5)).keys()]).to.deep.equal(["b"]);
    await comm.registry()!.flush();
    expect(cachedPorts()).to.deep.equal([b.port]);

    // Nothing but decisions (drained, stopped, down): no endpoint at all, and the disk keeps b.
    registry.query.set(OBJ, [], [{ port: a.port, reason: "drained" }, { port: b.port, reason: "stopped" }, { port: c.port, reason: "down" }]);
    await waitFor("an empty list", () => ports().length === 0);
    const err = await proxy.say({ text: "x" }).then(() => undefined, (e: Error) => e);
    expect(err).to.be.instanceOf(NoEndpointError);
    await comm.registry()!.flush();
    expect(cachedPorts()).to.deep.equal([b.port]);
  });

  it("recovers from a watch that is stuck without breaking: the periodic FindObject notices and re-watches", async () => {
    const comm = communicator({ resolverOptions: { refreshIntervalMs: 200 } });
    const proxy = comm.stringToProxy(EchoProxy, OBJ);
    await servedBy(proxy, 3);
    registry.query.frozen = true;
    try {
      const watchesBefore = registry.query.watchCalls;
      registry.query.set(OBJ, servants.slice(0, 2).map((s) => ({ port: s.port })));
      await waitFor("the proxy to see the change despite the stuck watch", () => proxy.$invoker.currentEndpoints().length === 2);
      expect(registry.query.watchCalls).to.be.greaterThan(watchesBefore);
    } finally {
      registry.query.frozen = false;
    }
  });

  it("fails with NO_ENDPOINT naming the Obj when the registry does not know it", async () => {
    const proxy = communicator().stringToProxy(EchoProxy, "Test.EchoServer.NoSuchObj");
    const err = await proxy.say({ text: "x" }).then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(NoEndpointError);
    expect((err as Error).message).to.contain("Test.EchoServer.NoSuchObj");
  });

  it("fails with NO_ENDPOINT naming the registry error when the registry is unreachable and nothing is cached, once its deadline allows no more waiting", async () => {
    const comm = new Communicator({ registry: "127.0.0.1:1", cacheDir: path.join(cacheRoot, "empty"), env: {} });
    comms.push(comm);
    const err = await comm.stringToProxy(EchoProxy, OBJ).say({ text: "x" }, { timeoutMs: 500 }).then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(NoEndpointError);
    expect((err as Error).message).to.match(/Test\.EchoServer\.EchoObj.*unreachable.*UNAVAILABLE/);
  });

  it("a call cancelled while it waits for an unreachable registry fails CANCELLED, not NO_ENDPOINT", async () => {
    const comm = new Communicator({ registry: "127.0.0.1:1", cacheDir: path.join(cacheRoot, "empty-cancel"), env: {} });
    comms.push(comm);
    const ac = new AbortController();
    const call = comm.stringToProxy(EchoProxy, OBJ).say({ text: "x" }, { timeoutMs: 20_000, signal: ac.signal }).then(() => undefined, (e: unknown) => e);
    await sleep(300);
    ac.abort();
    const err = await call;
    expect(err, String(err)).to.be.instanceOf(CancelledError);
    expect((err as Error).message).to.match(/waiting for the registry.*Test\.EchoServer\.EchoObj/);
  });

  it("refuses a registry address that does not parse, naming it", () => {
    const comm = new Communicator({ registry: "not an address", env: {} });
    comms.push(comm);
    expect(() => comm.stringToProxy(EchoProxy, OBJ)).to.throw(/registry address "not an address"/);
  });
});
