/**
 * Failover with real servant processes found by Obj name: one of three is
 * killed under a steady stream of calls, the registry goes away, a new client
 * process starts from the disk cache; and deadline propagation through a
 * servant that calls another.
 */
import { expect } from "chai";
import { spawn } from "node:child_process";
import * as path from "node:path";
import { Application, Communicator, DeadlineExceededError, type DeepPartial, type ServerContext } from "sgridnext";
import { EchoProxy } from "../gen/demo/echo.sgrid";
import type { EchoReply, EchoRequest } from "../gen/demo/echo";
import { EchoImpl } from "../helpers/echo-servant";
import { outputDir } from "../helpers/paths";
import { freePort, startEchoServer, type Spawned } from "../helpers/processes";
import { StandInRegistry } from "./registry-standin";
import { waitFor } from "../helpers/wait";

const OBJ = "Test.EchoServer.EchoObj";


/** Calls the proxy from `concurrency` loops until stopped; counts successes, failures and who served. */
class CallStream {
  ok = 0;
  readonly failures: string[] = [];
  readonly servedBy = new Map<string, number>();
  private stopped = false;
  private readonly loops: Array<Promise<void>>;

  constructor(private readonly proxy: EchoProxy, concurrency = 4) {
    this.loops = Array.from({ length: concurrency }, () => this.loop());
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      try {
        const r = await this.proxy.say({ text: "tick" }, { timeoutMs: 2000 });
        this.ok++;
        this.servedBy.set(r.metadata.served_by!, (this.servedBy.get(r.metadata.served_by!) ?? 0) + 1);
      } catch (err) {
        this.failures.push(`${(err as Error).name}: ${(err as Error).message}`);
      }
    }
  }

  count(name: string): number {
    return this.servedBy.get(name) ?? 0;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }
}

function runClient(env: Record<string, string>): Promise<string> {
  const main = path.join(__dirname, "registry-client-main.js");
  const child = spawn(process.execPath, [main], { env: { ...process.env, SGRID_LOG_LEVEL: "silent", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => { out += d; });
  return new Promise((resolve) => child.on("exit", () => resolve(out.trim())));
}

describe("framework failover over servant processes found by name", function () {
  this.timeout(90_000);
  let registry: StandInRegistry;
  const ports: number[] = [];
  const procs: Spawned[] = [];
  const comms: Communicator[] = [];

  async function spawnEcho(i: number): Promise<Spawned> {
    const p = await startEchoServer({ SGRID_ADAPTERS: JSON.stringify({ [OBJ]: `127.0.0.1:${ports[i]}` }), TEST_NAME: `e${i}`, SGRID_AGENT: "", SGRID_REGISTRY: "" });
    procs[i] = p;
    return p;
  }

  function allActive(): void {
    registry.query.set(OBJ, ports.map((port) => ({ port })));
  }

  before(async () => {
    registry = new StandInRegistry();
    await registry.start();
    for (let i = 0; i < 3; i++) ports.push(await freePort());
    await Promise.all([0, 1, 2].map((i) => spawnEcho(i)));
  });

  beforeEach(() => allActive());

  afterEach(() => {
    for (const c of comms.splice(0)) c.close();
  });

  after(async () => {
    for (const p of procs) if (p && p.child.exitCode === null) { p.child.kill("SIGKILL"); await p.exited; }
    await registry.stop();
  });

  it("keeps a steady stream of calls at zero failures while one instance is killed, and sends it traffic again once it is back", async () => {
    // The registry is not told: the worst case, where only the proxy's own failover protects callers.
    const comm = new Communicator({ registry: registry.address, env: {} });
    comms.push(comm);
    const stream = new CallStream(comm.stringToProxy(EchoProxy, OBJ));
    try {
      await waitFor("calls on every instance", () => ["e0", "e1", "e2"].every((n) => stream.count(n) > 20));
      procs[1]!.child.kill("SIGKILL");
      await procs[1]!.exited;
      const okAtKill = stream.ok;
      await waitFor("100 more calls with one instance dead", () => stream.ok > okAtKill + 100);
      await spawnEcho(1);
      const e1Before = stream.count("e1");
      await waitFor("the restarted instance to get calls again", () => stream.count("e1") > e1Before, 30_000);
    } finally {
      await stream.stop();
    }
    expect(stream.failures).to.deep.equal([]);
  });

  it("follows the registry at once when it marks an instance inactive and active again", async () => {
    const comm = new Communicator({ registry: registry.address, env: {} });
    comms.push(comm);
    const proxy = comm.stringToProxy(EchoProxy, OBJ);
    const stream = new CallStream(proxy);
    try {
      await waitFor("calls on every instance", () => ["e0", "e1", "e2"].every((n) => stream.count(n) > 20));
      registry.query.set(OBJ, [ports[0]!, ports[2]!].map((port) => ({ port })));
      await waitFor("the list without e1", () => proxy.$invoker.currentEndpoints().length === 2);
      procs[1]!.child.kill("SIGKILL");
      await procs[1]!.exited;
      await spawnEcho(1);
      const e1Before = stream.count("e1");
      allActive();
      await waitFor("e1 back in traffic", () => stream.count("e1") > e1Before + 20, 10_000);
    } finally {
      await stream.stop();
    }
    expect(stream.failures).to.deep.equal([]);
  });

  it("keeps calling while the registry is stopped, and a client process started meanwhile finds its peers from the disk cache", async () => {
    const dataDir = outputDir("registry-failover-data");
    const env = { SGRID_REGISTRY: registry.address, SGRID_DATA_DIR: dataDir, TEST_CALLS: "6" };
    const first = await runClient(env);
    expect(first).to.match(/^RESULT /);

    const comm = new Communicator({ registry: registry.address, env: {} });
    comms.push(comm);
    const stream = new CallStream(comm.stringToProxy(EchoProxy, OBJ));
    try {
      await waitFor("calls flowing", () => stream.ok > 30);
      await registry.stop();
      const okAtStop = stream.ok;
      await waitFor("200 calls with the registry down", () => stream.ok > okAtStop + 200);

      const second = await runClient(env);
      expect(second).to.match(/^RESULT /);
      const counts = JSON.parse(/RESULT (\{.*\})/.exec(second)![1]!) as Record<string, number>;
      expect(Object.keys(counts).sort()).to.deep.equal(["e0", "e1", "e2"]);
      expect(second).to.match(/SOURCE .*cache/);
    } finally {
      await stream.stop();
      await registry.start();
    }
    expect(stream.failures).to.deep.equal([]);
  });

  it("a client process with neither registry nor cache fails with NO_ENDPOINT naming the Obj", async () => {
    const out = await runClient({ SGRID_REGISTRY: "127.0.0.1:1", SGRID_DATA_DIR: outputDir("registry-failover-empty") });
    expect(out).to.match(/^ERROR NoEndpointError: .*Test\.EchoServer\.EchoObj/);
  });
});

describe("framework deadline propagation", function () {
  this.timeout(30_000);
  let back: Application;
  let front: Application;
  let backImpl: EchoImpl;
  let frontDeadline: number | undefined;
  const comm = new Communicator({ registry: "", env: {} });

  before(async () => {
    backImpl = new EchoImpl("back");
    back = new Application({ app: "Test", server: "Back", handleSignals: false, agent: "", registry: "", adapters: { EchoObj: "127.0.0.1:0" } });
    back.addServant("EchoObj", backImpl);
    await back.start();
    const backPort = back.adapters()[0]!.endpoint.port;

    front = new Application({ app: "Test", server: "Front", handleSignals: false, agent: "", registry: "", adapters: { EchoObj: "127.0.0.1:0" } });
    const downstream = front.communicator.stringToProxy(EchoProxy, `127.0.0.1:${backPort}`);
    class Front extends EchoImpl {
      override async say(request: EchoRequest, ctx: ServerContext): Promise<DeepPartial<EchoReply>> {
        frontDeadline = ctx.deadline;
        return downstream.say(request);
      }
      override async lookup(request: EchoRequest): Promise<DeepPartial<EchoReply>> {
        // A slow downstream call inside the incoming call: it must end at the caller's deadline.
        return downstream.slow({ millis: 5000, id: request.text });
      }
    }
    front.addServant("EchoObj", new Front("front"));
    await front.start();
  });

  after(async () => {
    comm.close();
    await front.stop(200);
    await back.stop(200);
  });

  it("gives an outgoing call made while serving the incoming call's deadline, not the proxy's 3 s default", async () => {
    const proxy = comm.stringToProxy(EchoProxy, `127.0.0.1:${front.adapters()[0]!.endpoint.port}`);
    const sentAt = Date.now();
    await proxy.say({ text: "hi" }, { timeoutMs: 1000 });
    expect(frontDeadline).to.be.a("number");
    expect(backImpl.lastDeadline).to.be.a("number");
    // Both servants see the caller's deadline (sent as a relative timeout, so allow clock slack), far below now + 3 s.
    expect(backImpl.lastDeadline!).to.be.at.most(frontDeadline! + 50);
    expect(backImpl.lastDeadline!).to.be.below(sentAt + 2000);
  });

  it("ends a slow downstream call at the caller's deadline with DEADLINE_EXCEEDED", async () => {
    const proxy = comm.stringToProxy(EchoProxy, `127.0.0.1:${front.adapters()[0]!.endpoint.port}`);
    const err = await proxy.lookup({ text: "slow-1" }, { timeoutMs: 300 }).then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(DeadlineExceededError);
    await waitFor("the back servant to see the cancellation", () => backImpl.cancelled.has("slow-1"));
  });
});
