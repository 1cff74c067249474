/**
 * The node agent against the real RegistryServer (SQLite): instances
 * placed in the store with a patch uploaded to the registry's package
 * storage are downloaded, installed and run by the agent; the registry
 * records them observed active and FindObject answers their endpoints by
 * Obj name (a binary servant and a java one); admin commands go from the
 * registry through the agent; the agent reconnects after the registry
 * restarts and reports what happened while it was away.
 */
import { expect } from "chai";
import { spawn, type ChildProcess } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { Readable } from "node:stream";
import { Communicator } from "sgridnext";
import { QueryProxy } from "sgridnext/gen/sgrid/registry/v1/query.sgrid";
import { AdminProxy } from "sgridnext/gen/sgrid/registry/v1/admin.sgrid";
import { RegistryServer } from "../../registry/server";
import { NodeAgent } from "../../nodeagent";
import { portFree } from "../../nodeagent/agent/port-guard";
import { PLACEMENT_DEFAULTS } from "../../registry/admin/placement";
import { freePort } from "../helpers/processes";
import { fastAgentOptions } from "./helpers/agent-harness";
import { binaryPackage, escapingPackage, httpGet } from "./helpers/agent-packages";
import { haveJdk, javaPackage } from "./helpers/agent-java";
import { killProcessesWith, makeTempDir, removeTempDir, removeV1Groups, testGroupName, waitFor } from "./helpers/agent-test-env";

const TOKEN = "agent-registry-token";

describe("nodeagent/agent: against the real registry", function () {
  this.timeout(120_000);
  const tmp = makeTempDir("sgrid-agent-reg-");
  const group = testGroupName("-agentreg");
  const marker = `sgrid-agentreg-${process.pid}`;
  const regData = path.join(tmp, "registry");
  const dbUrl = `sqlite:${path.join(tmp, "registry.db")}`;
  let registry: RegistryServer;
  let regPort: number;
  let agent: NodeAgent;
  const comm = new Communicator();
  let binId: number;
  let binPort: number;
  let javaId: number | undefined;
  let javaPort: number;

  async function startRegistry(port: number): Promise<RegistryServer> {
    const r = new RegistryServer({
      db: dbUrl, listen: `127.0.0.1:${port}`, advertise: `127.0.0.1:${port}`, dataDir: regData, clusterToken: TOKEN,
      adminPassword: "test-admin-pw", heartbeatIntervalMs: 500, heartbeatTimeoutMs: 600_000, shutdownGraceMs: 500,
    });
    await r.start();
    return r;
  }

  async function upload(app: string, server: string, data: Buffer): Promise<number> {
    const sha256 = crypto.createHash("sha256").update(data).digest("hex");
    const { key } = await registry.context.storage.put(Readable.from([data]), { sha256, size: data.length, maxBytes: 1 << 30 });
    const patch = await registry.store.patches.create({ application: app, server, sha256, size: data.length, uploader: "test", storageKey: key });
    return patch.id;
  }

  function query(): QueryProxy {
    return comm.stringToProxy(QueryProxy, `127.0.0.1:${regPort}`);
  }

  async function activeEndpoints(obj: string): Promise<number[]> {
    const r = await query().findObject({ obj });
    return r.active.map((e) => e.port);
  }

  before(async () => {
    regPort = await freePort();
    registry = await startRegistry(regPort);
    const store = registry.store;
    await store.nodes.upsert({ name: "reg-node", address: "127.0.0.1", agentVersion: "0" });

    await store.servers.create({ application: "Demo", name: "BinServer", type: "binary" });
    const binPatch = await upload("Demo", "BinServer", await binaryPackage(tmp, "Demo", "BinServer", "x"));
    binPort = await freePort();
    binId = (await store.instances.create({
      application: "Demo", server: "BinServer", node: "reg-node",
      adapters: [{ obj: "HttpObj", host: "127.0.0.1", port: binPort }],
      env: { NODE_BIN: process.execPath }, launch: { args: [marker] },
      desiredState: "active", desiredPatchId: binPatch,
    })).id;

    if (haveJdk()) {
      await store.servers.create({ application: "Demo", name: "JavaServer", type: "java" });
      const javaPatch = await upload("Demo", "JavaServer", await javaPackage(tmp, "Demo", "JavaServer", "x"));
      javaPort = await freePort();
      javaId = (await store.instances.create({
        application: "Demo", server: "JavaServer", node: "reg-node",
        adapters: [{ obj: "HelloObj", host: "127.0.0.1", port: javaPort }],
        launch: { args: [marker], jvmOptions: ["-Xmx64m", "-XX:+UseSerialGC"] },
        desiredState: "active", desiredPatchId: javaPatch,
      })).id;
    }

    agent = new NodeAgent(fastAgentOptions(`127.0.0.1:${regPort}`, path.join(tmp, "node"), group, { name: "reg-node", token: TOKEN }));
    await agent.start();
  });

  after(async () => {
    comm.close();
    await agent?.supervisor.stopAll().catch(() => undefined);
    await agent?.shutdown().catch(() => undefined);
    await registry?.stop().catch(() => undefined);
    killProcessesWith(marker);
    await removeV1Groups(group);
    removeTempDir(tmp);
  });

  it("installs and runs the placed binary servant; the registry sees it active and FindObject finds it by Obj name", async () => {
    const inst = await waitFor("registry records the instance active", async () => {
      const i = await registry.store.instances.get(binId);
      return i.observedState === "active" && i.pid ? i : undefined;
    }, 30_000);
    expect(await waitFor("servant answers", () => httpGet(binPort), 15_000)).to.equal(`Demo.BinServer v1 instance ${binId} pid ${inst.pid}`);
    expect(await waitFor("FindObject lists the endpoint as active", async () => ((await activeEndpoints("Demo.BinServer.HttpObj")).includes(binPort) ? true : undefined), 15_000)).to.equal(true);
    const node = await registry.store.nodes.get("reg-node");
    expect(node.online).to.equal(true);
    expect(node.agentVersion).to.match(/^\d+\.\d+\.\d+/);
  });

  it("runs the placed java servant, discoverable by Obj name", async function () {
    if (javaId === undefined) this.skip();
    const inst = await waitFor("java instance active", async () => {
      const i = await registry.store.instances.get(javaId!);
      return i.observedState === "active" && i.pid ? i : undefined;
    }, 60_000);
    expect(await waitFor("the JVM answers", () => httpGet(javaPort), 60_000)).to.equal(`java Demo.JavaServer v1 pid ${inst.pid}`);
    expect(await waitFor("FindObject lists the java endpoint", async () => ((await activeEndpoints("Demo.JavaServer.HelloObj")).includes(javaPort) ? true : undefined), 15_000)).to.equal(true);
  });

  it("a publish of a package the agent refuses fails its item with the agent's reason, without waiting for the batch timeout", async () => {
    const before = await registry.store.instances.get(binId);
    const bad = await upload("Demo", "BinServer", escapingPackage(tmp, "Demo", "BinServer"));
    const badVersion = (await registry.store.patches.get(bad)).version;
    const admin = comm.stringToProxy(AdminProxy, `127.0.0.1:${regPort}`);
    const { token } = await admin.login({ user: "admin", password: "test-admin-pw" });
    const auth = { metadata: { authorization: `Bearer ${token}` } };
    // A batch timeout far longer than the wait below: only the early verdict can finish the task in time.
    const task = await admin.createTask({ kind: "publish", instanceIds: [binId], version: badVersion, batchSize: 1, stopOnFailure: true, batchTimeoutS: 600 }, auth);
    const done = await waitFor("the publish task to end", async () => {
      const t = await admin.getTask({ id: task.id }, auth);
      return ["success", "failed", "partial"].includes(t.status) ? t : undefined;
    }, 60_000);
    expect(done.status).to.equal("failed");
    expect(done.items[0]!.reason).to.contain(`version ${badVersion} refused, not installed: PACKAGE_UNSAFE`);
    const after = await registry.store.instances.get(binId);
    expect(after.pid, "the running version keeps running").to.equal(before.pid);
    expect(await httpGet(binPort)).to.contain(`pid ${before.pid}`);
    const events = await registry.store.events.list({ kind: "instance.install_failed" });
    expect(events.some((e) => e.message.includes("refused"))).to.equal(true);
    // Back to the good version for the tests that follow.
    await registry.store.instances.setDesired(binId, { patchId: before.desiredPatchId });
  });

  it("answers an admin command sent through the registry (agent.tail_log)", async () => {
    const out = await registry.context.sessions.sendCommand(binId, "agent.tail_log", "20", 5000);
    expect(out).to.contain(`listening Demo.BinServer v1 instance ${binId}`);
  });

  /** Another program holding `port` on 127.0.0.1 (a child process); resolves once it listens. */
  async function occupy(port: number): Promise<ChildProcess> {
    const child = spawn(process.execPath, ["-e", `require("net").createServer().listen(${port}, "127.0.0.1", () => console.log("ready"))`, marker], { stdio: ["ignore", "pipe", "inherit"] });
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on("data", (d: Buffer) => d.toString().includes("ready") && resolve());
      child.once("exit", (code) => reject(new Error(`the port holder exited (${code})`)));
    });
    return child;
  }

  async function eventsFor(target: string, kind: string) {
    return (await registry.store.events.list({ kind })).filter((e) => e.target === target);
  }

  it("a servant held at its CPU quota: the registry logs one instance.cpu_throttled event saying how often (rate-limited)", async () => {
    await registry.store.servers.create({ application: "Demo", name: "SlowServer", type: "binary" });
    const patch = await upload("Demo", "SlowServer", await binaryPackage(tmp, "Demo", "SlowServer", "x"));
    const port = await freePort();
    // 2 ms of CPU per 100 ms: starting node alone takes many periods.
    const id = (await registry.store.instances.create({
      application: "Demo", server: "SlowServer", node: "reg-node", adapters: [{ obj: "HttpObj", host: "127.0.0.1", port }],
      env: { NODE_BIN: process.execPath }, launch: { args: [marker] }, limits: { cpuCores: 0.02 },
      desiredState: "active", desiredPatchId: patch,
    })).id;
    const target = `Demo.SlowServer@reg-node`;
    const ev = await waitFor("the cpu_throttled event", async () => (await eventsFor(target, "instance.cpu_throttled"))[0], 60_000);
    expect(ev.message).to.match(/the CPU quota throttled it in \d+ periods? of 100 ms/).and.contain(`instance ${id}`);
    expect(ev.data).to.include({ instanceId: id });
    // The servant keeps being throttled while it runs, but within the 5-minute gap there is no second event.
    await waitFor("a few more heartbeats", async () => (await registry.store.instances.get(id)).observedState === "active" || undefined, 60_000);
    expect(await eventsFor(target, "instance.cpu_throttled")).to.have.length(1);
    await registry.store.instances.remove(id);
  });

  it("a port of the registry's range taken on the node by another program: a clear reason, then a moved port that works, no crash loop", async () => {
    let taken = PLACEMENT_DEFAULTS.portRange[0] + 500;
    while (!(await portFree("127.0.0.1", taken))) taken++;
    const holder = await occupy(taken);
    try {
      await registry.store.servers.create({ application: "Demo", name: "PortServer", type: "binary" });
      const patch = await upload("Demo", "PortServer", await binaryPackage(tmp, "Demo", "PortServer", "x"));
      const id = (await registry.store.instances.create({
        application: "Demo", server: "PortServer", node: "reg-node", adapters: [{ obj: "HttpObj", host: "127.0.0.1", port: taken }],
        env: { NODE_BIN: process.execPath }, launch: { args: [marker] }, desiredState: "active", desiredPatchId: patch,
      })).id;
      const [reported] = await waitFor("the agent's report of the taken port", async () => {
        const e = await eventsFor("Demo.PortServer@reg-node", "instance.port_in_use");
        return e.length > 0 ? e : undefined;
      }, 30_000);
      expect(reported!.message).to.include(`port ${taken} (HttpObj) on 127.0.0.1 is in use by another program on this node: not started`);
      const moved = await waitFor("the instance active on another port", async () => {
        const i = await registry.store.instances.get(id);
        return i.observedState === "active" && i.adapters[0]!.port !== taken ? i : undefined;
      }, 30_000);
      const port = moved.adapters[0]!.port;
      expect(await waitFor("the servant answers on the moved port", () => httpGet(port), 15_000)).to.include("Demo.PortServer v1");
      expect(moved.restarts, "never started into the taken port").to.equal(0);
      const [move] = await eventsFor("Demo.PortServer@reg-node", "instance.port_moved");
      expect(move!.message).to.include(`port(s) ${taken} taken by another program on node "reg-node": moved HttpObj from port ${taken} to ${port}`);
      expect(await activeEndpoints("Demo.PortServer.HttpObj")).to.deep.equal([port]);
    } finally {
      holder.kill("SIGKILL");
    }
  });

  it("a port a person chose outside the range, taken on the node: the instance waits for it (reason shown, nothing spawned), and starts once it is free", async () => {
    const port = await freePort();
    const holder = await occupy(port);
    let freed = false;
    try {
      await registry.store.servers.create({ application: "Demo", name: "FixedServer", type: "binary" });
      const patch = await upload("Demo", "FixedServer", await binaryPackage(tmp, "Demo", "FixedServer", "x"));
      const id = (await registry.store.instances.create({
        application: "Demo", server: "FixedServer", node: "reg-node", adapters: [{ obj: "HttpObj", host: "127.0.0.1", port }],
        env: { NODE_BIN: process.execPath }, launch: { args: [marker] }, desiredState: "active", desiredPatchId: patch,
      })).id;
      const held = await waitFor("the reason on the instance", async () => {
        const i = await registry.store.instances.get(id);
        return i.lastExitReason?.includes(`port ${port} (HttpObj) on 127.0.0.1 is in use by another program`) ? i : undefined;
      }, 30_000);
      expect(held.observedState).to.not.equal("active");
      expect(held.pid).to.equal(null);
      expect(held.adapters[0]!.port, "a port a person chose is not moved").to.equal(port);
      holder.kill("SIGKILL");
      freed = true;
      const up = await waitFor("the instance active once the port is free", async () => {
        const i = await registry.store.instances.get(id);
        return i.observedState === "active" && i.pid ? i : undefined;
      }, 30_000);
      expect(up.restarts).to.equal(0);
      expect(await waitFor("the servant answers", () => httpGet(port), 15_000)).to.include("Demo.FixedServer v1");
    } finally {
      if (!freed) holder.kill("SIGKILL");
    }
  });

  it("reconnects after the registry restarts and reports what changed while it was away", async () => {
    const before = await registry.store.instances.get(binId);
    await registry.stop();
    await waitFor("agent notices", () => !agent.session.connected, 15_000);
    process.kill(before.pid!, "SIGKILL");
    const restarted = await waitFor("agent restarts the servant on its own", () => {
      const o = agent.supervisor.get(String(binId))!.observed();
      return o.state === "active" && o.pid !== before.pid ? o : undefined;
    }, 20_000);
    registry = await startRegistry(regPort);
    await waitFor("session re-established", () => agent.session.connected, 20_000);
    const after = await waitFor("registry learns the new pid", async () => {
      const i = await registry.store.instances.get(binId);
      return i.pid === restarted.pid && i.observedState === "active" ? i : undefined;
    }, 20_000);
    expect(after.restarts).to.be.at.least(1);
    expect(await waitFor("still discoverable", async () => ((await activeEndpoints("Demo.BinServer.HttpObj")).includes(binPort) ? true : undefined), 15_000)).to.equal(true);
    expect(fs.existsSync(path.join(tmp, "node", "state", "desired.json"))).to.equal(true);
  });
});
