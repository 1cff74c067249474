/**
 * The framework against the real RegistryServer (SQLite): proxies resolve Obj
 * names through its Query API and follow its changes (a new instance, a
 * drained one, the registry stopped), and config files come from its Config
 * API, merged across levels.
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as path from "node:path";
import { Application, Communicator, type ConfigChange, type DeepPartial, type ServerContext } from "sgridnext";
import type { InstanceRecord } from "../../registry/store";
import type { EchoReply, EchoRequest } from "../gen/demo/echo";
import { EchoProxy } from "../gen/demo/echo.sgrid";
import { EchoImpl } from "../helpers/echo-servant";
import { outputDir } from "../helpers/paths";
import { dialects, uniq } from "../registry/helpers/db";
import { startTestRegistry, type TestRegistry } from "../registry/helpers/registry";
import { waitFor } from "../helpers/wait";


describe("framework with the real registry [sqlite]", function () {
  this.timeout(90_000);
  let reg: TestRegistry;
  const servants: Array<{ app: Application; impl: EchoImpl; port: number; instance?: InstanceRecord }> = [];
  const comms: Communicator[] = [];
  const APP = uniq("Fw");
  const SERVER = "EchoServer";
  const OBJ = `${APP}.${SERVER}.EchoObj`;

  async function startServant(name: string): Promise<(typeof servants)[number]> {
    const impl = new EchoImpl(name);
    const app = new Application({ app: APP, server: SERVER, handleSignals: false, agent: "", registry: "", adapters: { EchoObj: "127.0.0.1:0" } });
    app.addServant("EchoObj", impl);
    await app.start();
    const s = { app, impl, port: app.adapters()[0]!.endpoint.port };
    servants.push(s);
    return s;
  }

  /** Registers a servant as an active instance on its own (online) node. */
  async function register(s: (typeof servants)[number]): Promise<void> {
    const store = reg.server.store;
    const node = uniq("node");
    await store.nodes.upsert({ name: node, address: "127.0.0.1", agentVersion: "test" });
    const inst = await store.instances.create({ application: APP, server: SERVER, node, adapters: [{ obj: "EchoObj", host: "127.0.0.1", port: s.port }], desiredState: "active" });
    s.instance = await store.instances.reportObserved(inst.id, { state: "active", pid: process.pid });
    reg.server.changes.kick();
  }

  async function servedBy(proxy: EchoProxy, n: number): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const by = (await proxy.say({ text: "x" })).metadata.served_by!;
      counts.set(by, (counts.get(by) ?? 0) + 1);
    }
    return counts;
  }

  before(async () => {
    reg = await startTestRegistry(dialects().find((d) => d.name === "sqlite")!);
    await reg.server.store.servers.create({ application: APP, name: SERVER, type: "node" });
    for (const name of ["a", "b", "c"]) await register(await startServant(name));
  });

  afterEach(() => {
    for (const c of comms.splice(0)) c.close();
  });

  after(async () => {
    for (const s of servants) await s.app.stop(200);
    await reg?.cleanup();
  });

  function communicator(cacheDir?: string): Communicator {
    const c = new Communicator({ registry: reg.target, env: {}, ...(cacheDir ? { cacheDir } : {}) });
    comms.push(c);
    return c;
  }

  it("resolves an Obj name through the registry, sends a new instance traffic once it is active, and none to a drained one", async () => {
    const proxy = communicator().stringToProxy(EchoProxy, OBJ);
    await waitFor("three endpoints", async () => (await servedBy(proxy, 6)).size === 3);

    const d = await startServant("d");
    await register(d);
    await waitFor("the new instance to get a call", async () => (await servedBy(proxy, 4)).has("d"));

    await reg.server.store.instances.setDrained(servants[0]!.instance!.id, true);
    reg.server.changes.kick();
    await waitFor("the drained endpoint to leave the list", () => !proxy.$invoker.currentEndpoints().some((e) => e.port === servants[0]!.port));
    const before = servants[0]!.impl.calls;
    const counts = await servedBy(proxy, 30);
    expect(counts.has("a")).to.equal(false);
    expect(servants[0]!.impl.calls).to.equal(before);
    await reg.server.store.instances.setDrained(servants[0]!.instance!.id, false);
    reg.server.changes.kick();
    await waitFor("the undrained endpoint back", async () => (await servedBy(proxy, 8)).has("a"));
  });

  it("loads a config file merged across levels, and sees a new version on reload", async () => {
    const store = reg.server.store;
    await store.configs.put({ level: "application", application: APP }, "app.json", { content: JSON.stringify({ greeting: "hello", limits: { rps: 10 } }), author: "test" });
    await store.configs.put({ level: "server", application: APP, server: SERVER }, "app.json", { content: JSON.stringify({ limits: { rps: 20 } }), author: "test" });
    const confDir = outputDir("registry-real-conf");
    const app = new Application({ app: APP, server: SERVER, handleSignals: false, agent: "", adapters: { EchoObj: "127.0.0.1:0" }, env: { SGRID_REGISTRY: reg.target, SGRID_NODE: "n1", SGRID_CONF_DIR: confDir } });
    app.addServant("EchoObj", new EchoImpl("cfg"));
    try {
      const cfg = await app.config.load<{ greeting: string; limits: { rps: number } }>("app.json");
      expect(cfg.value).to.deep.equal({ greeting: "hello", limits: { rps: 20 } });
      expect(cfg.source).to.equal("registry");
      expect(cfg.version).to.be.a("string").and.not.equal("");
      expect(fs.existsSync(path.join(confDir, "app.json"))).to.equal(true);

      const changes: ConfigChange[] = [];
      app.config.on("change", (c) => changes.push(c));
      await store.configs.put({ level: "server", application: APP, server: SERVER }, "app.json", { content: JSON.stringify({ limits: { rps: 30 } }), author: "test" });
      const r = await app.runCommand("sgrid.loadconfig", "app.json");
      expect(r.ok, r.error).to.equal(true);
      expect(changes).to.have.length(1);
      expect((changes[0]!.current.value as { limits: { rps: number } }).limits.rps).to.equal(30);
      expect(changes[0]!.current.version).to.not.equal(changes[0]!.previous!.version);
    } finally {
      await app.stop(100);
    }
  });

  it("a proxy first made inside a servant's call keeps following the registry after that call's deadline", async () => {
    // The registry watch it opens starts inside the incoming call (its context carries the call's deadline); it must not end with it.
    const front = new Application({ app: APP, server: "Front", handleSignals: false, agent: "", registry: reg.target, adapters: { EchoObj: "127.0.0.1:0" } });
    let lazy: EchoProxy | undefined;
    class Front extends EchoImpl {
      override async say(request: EchoRequest, ctx: ServerContext): Promise<DeepPartial<EchoReply>> {
        lazy ??= front.communicator.stringToProxy(EchoProxy, OBJ);
        return lazy.say(request, { signal: ctx.signal });
      }
    }
    front.addServant("EchoObj", new Front("front"));
    await front.start();
    try {
      const caller = communicator().stringToProxy(EchoProxy, `127.0.0.1:${front.adapters()[0]!.endpoint.port}`);
      await caller.say({ text: "x" }, { timeoutMs: 300 });
      await new Promise((r) => setTimeout(r, 1000)); // past the first call's deadline
      const e = await startServant("e");
      await register(e);
      await waitFor("the lazy proxy to see the new instance", () => lazy!.$invoker.currentEndpoints().some((ep) => ep.port === e.port), 10_000);
      expect(lazy!.$invoker.source.describe()).to.match(/watching/);
      await reg.server.store.instances.setDrained(e.instance!.id, true); // the tests below count the others
      reg.server.changes.kick();
    } finally {
      await front.stop(100);
    }
  });

  it("keeps calling while the registry is stopped, and a new communicator starts from the disk cache", async () => {
    const cacheDir = outputDir("registry-real-cache");
    const comm = communicator(cacheDir);
    const proxy = comm.stringToProxy(EchoProxy, OBJ);
    await waitFor("every active endpoint", async () => (await servedBy(proxy, 8)).size === 4);
    await comm.registry()!.flush();
    await reg.server.stop();
    const counts = await servedBy(proxy, 40);
    expect([...counts.values()].reduce((a, b) => a + b, 0)).to.equal(40);
    const fresh = communicator(cacheDir).stringToProxy(EchoProxy, OBJ);
    expect((await servedBy(fresh, 8)).size).to.equal(4);
    expect(fresh.$invoker.source.describe()).to.match(/cache/);
  });

  it("a process started while its registry is down and nothing is cached makes its first call once the registry is back, within the call's deadline", async () => {
    // The registry is stopped (the test before); it comes back on the same port, over the same database.
    const port = Number(reg.target.split(":")[1]);
    const proxy = communicator().stringToProxy(EchoProxy, OBJ);
    const call = proxy.say({ text: "first" }, { timeoutMs: 20_000 }).then((r) => r, (e: unknown) => e);
    await waitFor("the proxy to have found the registry unreachable", () => /unreachable/.test(proxy.$invoker.source.describe()));
    const back = await startTestRegistry(dialects().find((d) => d.name === "sqlite")!, { listen: `127.0.0.1:${port}`, dataDir: reg.dataDir }, reg.db);
    try {
      const reply = await call;
      expect(reply, String(reply)).to.have.property("text", "first");
    } finally {
      await back.cleanup();
    }
  });
});
