/**
 * sgrid endpoints that die, hang or shut down: what callers see. Servants
 * that get killed run in child processes (test/helpers/echo-server-main).
 */
import { expect } from "chai";
import * as net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { Application, Communicator, UnavailableError, makeEndpoint } from "sgridnext";
import { SgridChannel } from "sgridnext/internal/transport/sgrid/index";
import { EchoProxy, EchoService } from "../gen/demo/echo.sgrid";
import { EchoImpl } from "../helpers/echo-servant";
import { startEchoServer, type Spawned } from "../helpers/processes";

const caught = (p: Promise<unknown>): Promise<unknown> => p.then(() => undefined, (e: unknown) => e);

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} hung for ${ms} ms`)), ms); })])
    .finally(() => clearTimeout(timer));
}

/** A port nothing listens on (bound, then closed). */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

const SGRID_ONLY = JSON.stringify({ EchoObj: "sgrid://127.0.0.1:0" });

describe("sgrid transport: endpoints that die, hang or shut down", function () {
  this.timeout(30_000);
  const children: Spawned[] = [];
  const closers: Array<() => unknown> = [];

  afterEach(async () => {
    for (const c of closers.splice(0)) await c();
    for (const s of children.splice(0)) {
      if (s.child.exitCode === null && s.child.signalCode === null) {
        s.child.kill("SIGCONT");
        s.child.kill("SIGKILL");
        await s.exited;
      }
    }
  });

  async function servant(name: string): Promise<{ spawned: Spawned; port: number }> {
    const spawned = await startEchoServer({ SGRID_ADAPTERS: SGRID_ONLY, TEST_NAME: name });
    children.push(spawned);
    return { spawned, port: spawned.adapters[0]!.port };
  }

  it("killing a native endpoint mid-stream: its calls fail with UNAVAILABLE, new calls fail over, nothing hangs", async () => {
    const a = await servant("a");
    const b = await servant("b");
    const comm = new Communicator();
    closers.push(() => comm.close());
    const proxy = comm.stringToProxy(EchoProxy, `Test.EchoServer.EchoObj@sgrid -h 127.0.0.1 -p ${a.port}:sgrid -h 127.0.0.1 -p ${b.port}`);
    const direct = new SgridChannel(makeEndpoint("127.0.0.1", a.port, "sgrid"));
    closers.push(() => direct.close());

    let slow = true;
    const received = [0, 0, 0, 0];
    const streams = received.map((_, i) => (async () => {
      for await (const _r of proxy.repeat({ text: "k".repeat(1024), count: 1_000_000 })) {
        if (++received[i]! >= 3000) return "completed";
        if (slow) await sleep(2);
      }
      return "ended";
    })().then((r) => r, (e: unknown) => e));
    const unaryInFlight = caught(direct.unary(EchoService.methods.slow, { millis: 20_000, id: "in-flight" }, { deadline: Date.now() + 30_000, metadata: {} }));
    while (received.some((n) => n < 3)) await sleep(5);

    a.spawned.child.kill("SIGKILL");
    slow = false;
    const outcomes = await withTimeout(Promise.all(streams), 15_000, "streams");
    const failed = outcomes.filter((o) => o instanceof UnavailableError);
    expect(failed.length, `outcomes: ${outcomes.map(String).join(", ")}`).to.be.at.least(1);
    expect(outcomes.filter((o) => o === "completed").length).to.equal(outcomes.length - failed.length);
    expect(await withTimeout(unaryInFlight, 5_000, "unary in flight")).to.be.instanceOf(UnavailableError);

    const replies = await withTimeout(Promise.all(Array.from({ length: 20 }, (_, i) => proxy.say({ text: `after-${i}` }))), 10_000, "calls after the kill");
    expect(replies.every((r) => r.metadata.served_by === "b")).to.equal(true);
  });

  it("a connection whose server stops answering pings is declared dead: calls in flight fail with UNAVAILABLE", async () => {
    const c = await servant("frozen");
    const ch = new SgridChannel(makeEndpoint("127.0.0.1", c.port, "sgrid"), { pingIntervalMs: 100 });
    closers.push(() => ch.close());
    const call = { deadline: Date.now() + 20_000, metadata: {} };
    expect((await ch.unary(EchoService.methods.say, { text: "warm" }, call)).text).to.equal("warm");
    const pending = caught(ch.unary(EchoService.methods.slow, { millis: 15_000, id: "frozen" }, call));
    await sleep(50);
    const stoppedAt = Date.now();
    c.spawned.child.kill("SIGSTOP");
    const err = await withTimeout(pending, 5_000, "call on a frozen server");
    expect(err).to.be.instanceOf(UnavailableError);
    expect((err as Error).message).to.match(/ping/);
    expect(Date.now() - stoppedAt).to.be.below(1_500);
  });

  for (const scheme of ["sgrid", "grpc"] as const) {
    it(`an endpoint nobody listens on (${scheme}): the call fails UNAVAILABLE and its error's stack names the caller's own async functions`, async () => {
      const port = await closedPort();
      const comm = new Communicator();
      closers.push(() => comm.close());
      const proxy = comm.stringToProxy(EchoProxy, `Test.EchoServer.EchoObj@${scheme} -h 127.0.0.1 -p ${port}`, { timeoutMs: 2_000 });
      async function callerOfTheProxy(): Promise<unknown> {
        return await proxy.say({ text: "x" });
      }
      async function outerCaller(): Promise<unknown> {
        return caught(callerOfTheProxy());
      }
      const err = await outerCaller();
      expect(err).to.be.instanceOf(UnavailableError);
      const stack = (err as Error).stack ?? "";
      expect(stack).to.include("--- remote call, caller stack: ---");
      expect(stack).to.match(/at async callerOfTheProxy /);
    });
  }

  describe("graceful shutdown", () => {
    async function inProcess(name: string, graceMs = 5_000): Promise<{ app: Application; servant: EchoImpl; port: number }> {
      const servant = new EchoImpl(name);
      const app = new Application({ app: "Test", server: name, handleSignals: false, shutdownGraceMs: graceMs, adapters: { EchoObj: "sgrid://127.0.0.1:0" } });
      app.addServant("EchoObj", servant);
      await app.start();
      closers.push(() => app.stop(0));
      return { app, servant, port: app.adapters()[0]!.endpoint.port };
    }

    it("drains calls in flight, refuses new ones with UNAVAILABLE before running them, and the proxy fails over", async () => {
      const a = await inProcess("drain-a");
      const b = await inProcess("drain-b");
      const ch = new SgridChannel(makeEndpoint("127.0.0.1", a.port, "sgrid"));
      closers.push(() => ch.close());
      const comm = new Communicator();
      closers.push(() => comm.close());
      const proxy = comm.stringToProxy(EchoProxy, `Test.EchoServer.EchoObj@sgrid -h 127.0.0.1 -p ${a.port}:sgrid -h 127.0.0.1 -p ${b.port}`);
      await proxy.say({ text: "warm a" });
      await proxy.say({ text: "warm b" });

      const call = () => ({ deadline: Date.now() + 10_000, metadata: {} });
      const inflight = Array.from({ length: 5 }, (_, i) => ch.unary(EchoService.methods.slow, { millis: 400, id: `drain-${i}` }, call()));
      await sleep(50);
      const started = Date.now();
      const stopping = a.app.stop(5_000);
      await sleep(30);
      const callsBefore = a.servant.calls;
      expect(await caught(ch.unary(EchoService.methods.say, { text: "too late" }, call()))).to.be.instanceOf(UnavailableError);
      const during = await Promise.all(Array.from({ length: 10 }, (_, i) => proxy.say({ text: `during-${i}` })));
      expect(during.every((r) => r.metadata.served_by === "drain-b")).to.equal(true);
      expect(a.servant.calls).to.equal(callsBefore);

      const results = await Promise.all(inflight);
      expect(results.map((r) => r.text)).to.deep.equal(Array(5).fill("slept 400"));
      await stopping;
      expect(Date.now() - started).to.be.within(250, 4_000);
      expect(a.app.connections()).to.have.length(0);
    });

    it("closes calls still running when the grace period is over: the caller gets UNAVAILABLE, the servant's signal fires", async () => {
      const a = await inProcess("grace", 300);
      const ch = new SgridChannel(makeEndpoint("127.0.0.1", a.port, "sgrid"));
      closers.push(() => ch.close());
      const pending = caught(ch.unary(EchoService.methods.slow, { millis: 20_000, id: "overstay" }, { deadline: Date.now() + 30_000, metadata: {} }));
      await sleep(50);
      const started = Date.now();
      await a.app.stop();
      expect(Date.now() - started).to.be.below(3_500);
      expect(await withTimeout(pending, 3_000, "call past the grace period")).to.be.instanceOf(UnavailableError);
      expect(a.servant.cancelled.has("overstay")).to.equal(true);
    });
  });
});
