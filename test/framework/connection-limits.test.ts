/**
 * Connection limits on purpose: 2,000 WatchObject streams from one proxy to
 * one Sgrid gRPC server all work, and cancelling them all at once does not
 * take the connection down (Node's HTTP/2 closes a connection whose peer
 * resets more than 1,000 streams in a burst: the proxy spreads calls over
 * connections of at most 900). Past the configured connections a call is
 * refused at once with RESOURCE_EXHAUSTED while the others go on. The native
 * transport carries 2,000 concurrent streams on its one connection.
 */
import { expect } from "chai";
import { setMaxListeners } from "node:events";
import { Application, Communicator, makeEndpoint, ResourceExhaustedError } from "sgridnext";
import { QueryProxy, QueryService } from "sgridnext/gen/sgrid/registry/v1/query.sgrid";
import { GrpcChannel } from "sgridnext/internal/transport/grpc/client";
import { EchoProxy } from "../gen/demo/echo.sgrid";
import { EchoImpl } from "../helpers/echo-servant";
import { waitFor } from "../helpers/wait";
import { StandInRegistry } from "./registry-standin";
import { dialects } from "../registry/helpers/db";
import { seedObj, startTestRegistry } from "../registry/helpers/registry";

const N = 2000;

/** Opens `n` watches; resolves once each has its first reply; `cancel()` aborts them all at once. */
async function openWatches(watch: (obj: string, signal: AbortSignal) => AsyncIterable<{ revision: number }>, n: number) {
  const ac = new AbortController();
  setMaxListeners(0, ac.signal);
  const firsts: Array<Promise<void>> = [];
  const replies = new Array<number>(n).fill(0);
  const failures: string[] = [];
  const ended: Array<Promise<void>> = [];
  for (let i = 0; i < n; i++) {
    let first!: () => void;
    firsts.push(new Promise<void>((r) => { first = r; }));
    ended.push((async () => {
      try {
        for await (const _ of watch(`Test.S.Obj${i}`, ac.signal)) { replies[i]!++; first(); }
      } catch (err) {
        if (!ac.signal.aborted) failures.push(`${(err as Error).name}: ${(err as Error).message}`);
      }
      first();
    })());
  }
  await Promise.all(firsts);
  return { replies, failures, cancel: async () => { ac.abort(); await Promise.all(ended); } };
}

describe("connection limits @slow", function () {
  this.timeout(120_000);
  let registry: StandInRegistry;

  before(async () => {
    registry = new StandInRegistry();
    await registry.start();
    for (let i = 0; i < N; i++) registry.query.set(`Test.S.Obj${i}`, [{ port: 20_000 + (i % 100) }]);
  });

  after(async () => { await registry.stop(); });

  it(`${N} concurrent WatchObject streams from one proxy all work, and cancelling them together leaves the proxy working`, async () => {
    const comm = new Communicator({ registry: "" });
    try {
      const query = comm.stringToProxy(QueryProxy, registry.address);
      const w = await openWatches((obj, signal) => query.watchObject({ obj }, { signal }), N);
      expect(w.failures).to.deep.equal([]);
      expect(w.replies.every((r) => r >= 1)).to.equal(true);
      const channel = comm.channel(makeEndpoint("127.0.0.1", registry.port)) as GrpcChannel;
      const perConnection = channel.callsPerConnection();
      expect(perConnection.reduce((a, b) => a + b, 0)).to.equal(N);
      expect(Math.max(...perConnection)).to.be.at.most(900);
      // A change reaches every watch.
      const before = [...w.replies];
      registry.query.set("Test.S.Obj7", [{ port: 20_999 }]);
      await waitFor("the change on the watch of Obj7", () => w.replies[7]! > before[7]!);
      await w.cancel();
      expect(w.failures).to.deep.equal([]);
      expect((await query.findObject({ obj: "Test.S.Obj1" })).active).to.have.length(1);
      await waitFor("the extra connections to close", () => channel.callsPerConnection().length === 1);
    } finally {
      comm.close();
    }
  });

  it(`${N} concurrent WatchObject streams of one Obj on the real registry (SQLite) all work, and cancelling them together leaves the proxy working`, async () => {
    const reg = await startTestRegistry(dialects().find((d) => d.name === "sqlite")!);
    try {
      const s = await seedObj(reg.server.store, { nodes: 1 });
      await waitFor("the Obj in the registry's answer", async () => (await reg.query.findObject({ obj: s.full })).active.length === 1);
      const w = await openWatches((_obj, signal) => reg.query.watchObject({ obj: s.full }, { signal }), N);
      expect(w.failures).to.deep.equal([]);
      await waitFor("every watch open on the registry", () => reg.querySvc.openWatches === N);
      await w.cancel();
      expect(w.failures).to.deep.equal([]);
      expect((await reg.query.findObject({ obj: s.full })).active).to.have.length(1);
      await waitFor("the registry to end every watch", () => reg.querySvc.openWatches === 0);
    } finally {
      await reg.cleanup();
    }
  });

  it("refuses a call past the last allowed connection at once with RESOURCE_EXHAUSTED, and the calls in flight go on", async () => {
    const channel = new GrpcChannel(makeEndpoint("127.0.0.1", registry.port), { limits: { maxCallsPerConnection: 50, maxConnections: 2 } });
    try {
      const watch = (obj: string, signal: AbortSignal) => channel.serverStream(QueryService.methods.watchObject, { obj }, { deadline: Infinity, metadata: {}, signal });
      const w = await openWatches(watch, 100);
      expect(channel.callsPerConnection()).to.deep.equal([50, 50]);
      const refused = await channel.unary(QueryService.methods.findObject, { obj: "Test.S.Obj1" }, { deadline: Date.now() + 5000, metadata: {} }).then(() => undefined, (e: unknown) => e);
      expect(refused).to.be.instanceOf(ResourceExhaustedError);
      expect((refused as Error).message).to.contain("100 calls already in flight on 2 connection(s)");
      const before = w.replies[3]!;
      registry.query.set("Test.S.Obj3", [{ port: 20_998 }]);
      await waitFor("the watches to go on after the refusal", () => w.replies[3]! > before);
      await w.cancel();
      expect(w.failures).to.deep.equal([]);
      expect((await channel.unary(QueryService.methods.findObject, { obj: "Test.S.Obj1" }, { deadline: Date.now() + 5000, metadata: {} })).obj).to.equal("Test.S.Obj1");
    } finally {
      channel.close();
    }
  });

  it("gives a connection's place back whenever a call ends: success, error, cancel, deadline, on every kind of call", async () => {
    const app = new Application({ app: "Test", server: "EchoServer", handleSignals: false, registry: "", agent: "", adapters: { EchoObj: "127.0.0.1:0" } });
    app.addServant("EchoObj", new EchoImpl());
    await app.start();
    const comm = new Communicator({ registry: "" });
    try {
      const port = app.adapters()[0]!.endpoint.port;
      const echo = comm.stringToProxy(EchoProxy, `127.0.0.1:${port}`);
      const channel = comm.channel(makeEndpoint("127.0.0.1", port)) as GrpcChannel;
      const settle = (p: Promise<unknown>) => p.then(() => "ok", (e: Error) => e.name);
      const cancelled = new AbortController();
      setTimeout(() => cancelled.abort(), 50);
      async function* two() { yield { count: 1 }; yield { count: 2 }; }
      async function drain(it: AsyncIterable<unknown>) { for await (const _ of it) { /* read */ } }
      const outcomes = await Promise.all([
        settle(echo.say({ text: "ok" })),
        settle(echo.fail({ code: "NOPE", message: "no" })),
        settle(echo.slow({ millis: 5000, id: "c" }, { signal: cancelled.signal })),
        settle(echo.slow({ millis: 5000, id: "d" }, { timeoutMs: 100 })),
        settle(drain(echo.repeat({ text: "r", count: 3 }))),
        settle(echo.sum(two())),
        settle(drain(echo.chat(two()))),
      ]);
      expect(outcomes).to.deep.equal(["ok", "SgridError", "CancelledError", "DeadlineExceededError", "ok", "ok", "ok"]);
      await waitFor("every call's place given back", () => channel.callsPerConnection().every((n) => n === 0));
    } finally {
      comm.close();
      await app.stop(500);
    }
  });

  it(`the native transport carries ${N} concurrent streams on one connection, and cancelling them together leaves it working`, async () => {
    const app = new Application({ app: "Test", server: "EchoServer", handleSignals: false, registry: "", agent: "", adapters: { EchoObj: "sgrid://127.0.0.1:0" } });
    app.addServant("EchoObj", new EchoImpl());
    await app.start();
    const comm = new Communicator({ registry: "" });
    try {
      const echo = comm.stringToProxy(EchoProxy, `sgrid://127.0.0.1:${app.adapters()[0]!.endpoint.port}`);
      async function* forever(i: number, signal: AbortSignal) {
        yield { text: `s${i}` };
        await new Promise((r) => signal.addEventListener("abort", r, { once: true }));
      }
      const w = await openWatches((obj, signal) => {
        const i = Number(obj.slice("Test.S.Obj".length));
        return (async function* () { for await (const m of echo.chat(forever(i, signal), { signal })) yield { revision: m.index }; })();
      }, N);
      expect(w.failures).to.deep.equal([]);
      expect(app.connections()).to.have.length(1);
      await w.cancel();
      expect(w.failures).to.deep.equal([]);
      expect((await echo.say({ text: "after" })).text).to.equal("after");
    } finally {
      comm.close();
      await app.stop(500);
    }
  });
});
