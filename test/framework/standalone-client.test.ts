/**
 * A standalone client (a script that only makes proxies, and neither calls
 * close() nor process.exit()) exits on its own once its work is done, and
 * prints none of the library's info lines unless asked, whether it resolves
 * an Obj through the registry or calls endpoints directly, on both
 * transports. Between calls the registry watch is closed and reopened by the
 * next call; a hosting process (an Application) keeps it open.
 */
import { expect } from "chai";
import { spawn } from "node:child_process";
import * as path from "node:path";
import { Application, Communicator } from "sgridnext";
import { EchoProxy } from "../gen/demo/echo.sgrid";
import { EchoImpl } from "../helpers/echo-servant";
import { waitFor } from "../helpers/wait";
import { StandInRegistry } from "./registry-standin";

const OBJ = "Test.EchoServer.EchoObj";

interface Run { code: number | null; stdout: string; stderr: string }

/** Runs the client script; resolves when it exits by itself (the test's timeout fails a client that never does). */
function runClient(env: Record<string, string>): { exited: Promise<Run>; kill: () => void } {
  const main = path.join(__dirname, "standalone-client-main.js");
  const childEnv: NodeJS.ProcessEnv = { ...process.env, TEST_STREAM: "1", SGRID_REGISTRY: "", ...env };
  delete childEnv.SGRID_LOG_LEVEL;
  if (env.SGRID_LOG_LEVEL) childEnv.SGRID_LOG_LEVEL = env.SGRID_LOG_LEVEL;
  const child = spawn(process.execPath, [main], { env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => { stdout += d; });
  child.stderr.setEncoding("utf8").on("data", (d: string) => { stderr += d; });
  return {
    exited: new Promise((resolve) => child.on("exit", (code) => resolve({ code, stdout: stdout.trim(), stderr: stderr.trim() }))),
    kill: () => child.kill("SIGKILL"),
  };
}

describe("standalone clients @slow", function () {
  this.timeout(60_000);
  let registry: StandInRegistry;
  let app: Application;
  const ports: Record<string, number> = {};
  const running: Array<() => void> = [];

  before(async () => {
    registry = new StandInRegistry();
    await registry.start();
    app = new Application({ app: "Test", server: "EchoServer", handleSignals: false, registry: "", agent: "", adapters: { EchoObj: ["127.0.0.1:0", "sgrid://127.0.0.1:0"] } });
    app.addServant("EchoObj", new EchoImpl());
    await app.start();
    for (const a of app.adapters()) ports[a.endpoint.protocol] = a.endpoint.port;
  });

  afterEach(() => { for (const kill of running.splice(0)) kill(); });

  after(async () => {
    await app.stop(500);
    await registry.stop();
  });

  async function expectExitsQuietly(env: Record<string, string>): Promise<Run> {
    const c = runClient(env);
    running.push(c.kill);
    const run = await c.exited;
    expect(run.stdout).to.equal("RESULT standalone 3");
    expect(run.code).to.equal(0);
    return run;
  }

  for (const protocol of ["grpc", "sgrid"] as const) {
    it(`resolving an Obj through the registry (${protocol} endpoints): exits by itself, with no info logs`, async () => {
      registry.query.set(OBJ, [{ port: ports[protocol]!, protocol }]);
      const run = await expectExitsQuietly({ SGRID_REGISTRY: registry.address, TEST_TARGET: OBJ });
      expect(run.stderr).to.equal("");
    });

    it(`calling ${protocol} endpoints directly: exits by itself`, async () => {
      const target = `${protocol === "sgrid" ? "sgrid://" : ""}127.0.0.1:${ports[protocol]}`;
      const run = await expectExitsQuietly({ TEST_TARGET: target });
      expect(run.stderr).to.equal("");
    });
  }

  it("prints the library's info lines when SGRID_LOG_LEVEL asks for them", async () => {
    registry.query.set(OBJ, [{ port: ports.grpc! }]);
    const run = await expectExitsQuietly({ SGRID_REGISTRY: registry.address, TEST_TARGET: OBJ, SGRID_LOG_LEVEL: "info" });
    expect(run.stderr).to.contain("endpoint list changed");
  });

  it("watches only while calls are in flight (and briefly after), and a new call reopens the watch and sees changes", async () => {
    registry.query.set(OBJ, [{ port: ports.grpc! }]);
    const comm = new Communicator({ registry: registry.address, resolverOptions: { idleWatchMs: 100 } });
    try {
      const proxy = comm.stringToProxy(EchoProxy, OBJ);
      const watchesBefore = registry.query.watchCalls;
      const openBefore = registry.query.openWatches;
      expect((await proxy.say({ text: "a" })).text).to.equal("a");
      expect(registry.query.watchCalls).to.equal(watchesBefore + 1);
      await waitFor("the idle watch to close", () => registry.query.openWatches === openBefore && comm.registry()!.status()[0]!.state === "idle");
      // While idle, the registry moves the Obj to the native endpoint; the next call reopens the watch and follows it.
      registry.query.set(OBJ, [{ port: ports.sgrid!, protocol: "sgrid" }]);
      expect((await proxy.say({ text: "b" })).text).to.equal("b");
      expect(registry.query.watchCalls).to.equal(watchesBefore + 2);
      await waitFor("the proxy to follow the change", () => proxy.$invoker.currentEndpoints().some((e) => e.protocol === "sgrid"));
    } finally {
      comm.close();
    }
  });

  it("keeps the watch open between calls in a hosting process (keepWatching, as an Application's communicator does)", async () => {
    registry.query.set(OBJ, [{ port: ports.grpc! }]);
    const comm = new Communicator({ registry: registry.address, keepWatching: true, resolverOptions: { idleWatchMs: 50 } });
    try {
      const proxy = comm.stringToProxy(EchoProxy, OBJ);
      await waitFor("the watch to open before any call", () => comm.registry()!.status()[0]?.state === "watching");
      await proxy.say({ text: "a" });
      registry.query.set(OBJ, [{ port: ports.sgrid!, protocol: "sgrid" }]);
      await waitFor("the change to arrive with no call in flight", () => proxy.$invoker.currentEndpoints().some((e) => e.protocol === "sgrid"));
      expect(comm.registry()!.status()[0]!.state).to.equal("watching");
    } finally {
      comm.close();
    }
  });
});
