/**
 * Issue 8, Must show 1-6: the four user journeys end to end, real processes
 * throughout.
 *
 * - `sgrid registry` (SQLite), two `sgrid node` agents with different node
 *   names, each in its own network namespace with its own address (see
 *   test/helpers/netns.ts; where namespaces cannot be made the agents run
 *   on loopback addresses 127.0.0.2 / 127.0.0.3 and the test says so), and
 *   `sgrid admin`.
 * - `sgrid create` Demo.HelloServer and Demo.CallerServer (Caller's servant
 *   calls Hello through a generated proxy resolved by Obj name), built and
 *   packaged (test/e2e/helpers/scaffold.ts).
 * - Through the admin HTTP API: upload and publish v1 of both to both nodes;
 *   a call to Caller returns Hello's answer.
 * - Hello reads its greeting from its config at startup; a changed config is
 *   pushed and served without a restart.
 * - v2 of Hello published with batch size 1 while a client calls Caller
 *   continuously: zero failed calls; the rollback to v1 likewise.
 * - `kill -9` of one agent: the services on it keep serving; restarted, it
 *   re-adopts its servants: the same processes, no duplicates.
 *
 * Teardown (namespaces with everything in them, processes, cgroups) runs in
 * `after`, also when a step failed. Steps depend on the ones before: after
 * a failure the rest are skipped, naming the failed one.
 */
import { expect } from "chai";
import * as path from "node:path";
import { CLI, outputDir } from "../helpers/paths";
import { createNetnsLab, type NetnsLab } from "../helpers/netns";
import { AdminHttp, type InstanceView } from "./helpers/admin-http";
import { callerProxy, helloProxy, projectCommunicator, type CallerProxy } from "./helpers/client";
import { killProcessesUnder, Proc, processesUnder, removeCgroupGroup, waitFor } from "./helpers/procs";
import { scaffoldBoth, type Scaffold } from "./helpers/scaffold";

const TOKEN = `e2e-cluster-token-${process.pid}`;
const ADMIN_PASSWORD = `e2e-admin-password-${process.pid}`;
const NODES = ["node-a", "node-b"];
const CONFIG_FILE = "HelloServer.json";

/** Calls Caller continuously (a few loops in parallel) and counts what happens. */
class Load {
  ok = 0;
  failed = 0;
  readonly errors: string[] = [];
  readonly messages = new Set<string>();
  private running = true;
  private readonly loops: Promise<void>[];

  constructor(caller: CallerProxy, concurrency = 3) {
    this.loops = Array.from({ length: concurrency }, async () => {
      while (this.running) {
        try {
          const r = await caller.call({ name: "Ann" }, { timeoutMs: 5000 });
          this.ok++;
          this.messages.add(r.message);
        } catch (err) {
          this.failed++;
          if (this.errors.length < 20) this.errors.push(`${(err as { code?: string }).code ?? ""} ${(err as Error).message}`);
        }
        // Continuous, but leaving the 2-core machine some room for the publish itself.
        await new Promise((r) => setTimeout(r, 10));
      }
    });
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }
}

describe("the four journeys end to end (issue 8, Must show 1-6) @slow", function () {
  this.timeout(20 * 60_000);
  let out: string;
  let lab: NetnsLab;
  let scaffold: Scaffold;
  let registry: Proc | undefined;
  let admin: Proc | undefined;
  const agents: Array<Proc | undefined> = [undefined, undefined];
  let registryAddr = "";
  let api: AdminHttp;
  let comm: ReturnType<typeof projectCommunicator> | undefined;
  let caller: CallerProxy;
  let failedStep: string | undefined;
  /**
   * True while a step's failure would leave the cluster unfit for the next
   * steps; a step sets it false before assertions that only judge what was
   * observed (zero failed calls), so the later journeys still run and report.
   */
  let blocking = true;
  let v2Task = 0;
  const agentDirs: string[] = [];
  const cgroupGroups = NODES.map((_, i) => `sgrid-e2e-${process.pid}-${i}`);

  function startAgent(i: number, tag: string): Proc {
    const args = [CLI, "node", "--registry", registryAddr, "--name", NODES[i]!, "--data-dir", agentDirs[i]!,
      "--address", lab.nodes[i]!.address, "--cgroup-group", cgroupGroups[i]!];
    const [cmd, argv] = lab.wrap(i, process.execPath, args);
    return new Proc(`agent ${NODES[i]} (${tag})`, cmd, argv, {
      cwd: out, env: { SGRID_CLUSTER_TOKEN: TOKEN, SGRID_LOG_LEVEL: "info" }, logFile: path.join(out, `agent-${NODES[i]}.log`),
    });
  }

  async function instances(server: string): Promise<InstanceView[]> {
    return (await api.instances("Demo", server)).sort((a, b) => a.node.localeCompare(b.node));
  }

  function endpointOf(inst: InstanceView): string {
    const a = inst.adapters[0]!;
    const host = a.host || lab.nodes[NODES.indexOf(inst.node)]!.address;
    return `-h ${host} -p ${a.port}`;
  }

  beforeEach(function () {
    blocking = true;
    if (failedStep) {
      console.warn(`skipped: the earlier step "${failedStep}" failed`);
      this.skip();
    }
  });

  afterEach(function () {
    if (this.currentTest?.state === "failed" && blocking) failedStep = this.currentTest.title;
  });

  before(async () => {
    out = outputDir("e2e-journeys");
    scaffold = await scaffoldBoth();
    lab = await createNetnsLab(2);
    if (!lab.available) console.warn(`network namespaces not available (${lab.reason}): the two agents run on loopback addresses ${lab.nodes.map((n) => n.address).join(", ")}`);
    agentDirs.push(...NODES.map((n) => path.join(out, n)));

    registry = new Proc("registry", process.execPath, [CLI, "registry", "--listen", `${lab.hostAddress}:0`, "--data-dir", path.join(out, "registry"),
      "--heartbeat-interval", "1s", "--heartbeat-timeout", "6s"], {
      cwd: out, env: { SGRID_CLUSTER_TOKEN: TOKEN, SGRID_ADMIN_PASSWORD: ADMIN_PASSWORD, SGRID_LOG_LEVEL: "info" }, logFile: path.join(out, "registry.log"),
    });
    registryAddr = (await registry.waitForLine(/sgrid registry serving on (\S+) /))[1]!;
    for (let i = 0; i < NODES.length; i++) agents[i] = startAgent(i, "first");
    admin = new Proc("admin", process.execPath, [CLI, "admin", "--registry", registryAddr, "--listen", "127.0.0.1:0"], {
      cwd: out, env: { SGRID_LOG_LEVEL: "info" }, logFile: path.join(out, "admin.log"),
    });
    const adminUrl = (await admin.waitForLine(/sgrid admin serving on (http:\/\/\S+)/))[1]!;
    for (const a of agents) await a!.waitForLine(/sgrid node: started/);
    api = new AdminHttp(adminUrl);
    await api.login("admin", ADMIN_PASSWORD);
  });

  after(async () => {
    comm?.close();
    await admin?.stop(5000);
    for (const a of agents) a?.signal("SIGKILL");
    await registry?.stop(5000);
    await lab?.destroy();
    if (out) {
      for (const d of agentDirs) killProcessesUnder(d);
    }
    for (const g of cgroupGroups) await removeCgroupGroup(g);
  });

  it("1. a registry, two agents (own namespaces and addresses) and admin are up", async () => {
    const nodes = await waitFor("both nodes online", async () => {
      const list = await api.nodes();
      return NODES.every((n) => list.some((x) => x.name === n && x.online)) ? list : undefined;
    }, 60_000);
    for (let i = 0; i < NODES.length; i++) {
      expect(nodes.find((n) => n.name === NODES[i])!.address, `${NODES[i]}'s address`).to.equal(lab.nodes[i]!.address);
    }
    if (lab.available) expect(new Set(lab.nodes.map((n) => n.ns)).size).to.equal(2);
  });

  it("2-3. v1 of Hello and Caller published to both nodes through the admin API; Caller returns Hello's answer", async () => {
    for (const [server, obj, pkg] of [["HelloServer", "GreeterObj", scaffold.helloV1], ["CallerServer", "CallerObj", scaffold.callerV1]] as const) {
      const deployed = await api.deploy("Demo", server, NODES, [obj]) as { instances: Array<{ id: number }> };
      expect(deployed.instances).to.have.length(2);
      if (server === "HelloServer") {
        // Hello's config exists before it starts: it reads it at startup (step 4 checks a change).
        await api.putServerConfig("Demo", "HelloServer", CONFIG_FILE, JSON.stringify({ greeting: "Bonjour" }), "first greeting");
      }
      const version = await api.upload("Demo", server, pkg.file, pkg.sha256, `${server} v1`);
      expect(version).to.equal(1);
      const task = await api.publish(deployed.instances.map((i) => i.id), version, 0);
      await api.waitTask(task.id);
    }
    for (const server of ["HelloServer", "CallerServer"]) {
      const list = await instances(server);
      expect(list.map((i) => [i.node, i.observedState, i.observedVersion])).to.deep.equal(NODES.map((n) => [n, "active", 1]));
    }
    comm = projectCommunicator(scaffold.caller, registryAddr);
    caller = callerProxy(comm, scaffold.caller);
    const first = await waitFor("Caller to answer", () => caller.call({ name: "Ann" }).catch(() => undefined), 30_000);
    expect(first.message).to.equal("Bonjour, Ann");
    // Both Caller instances answer (round-robin over what the registry returns).
    const seen = new Set<string>();
    await waitFor("answers from both Caller instances", async () => {
      const r = await caller.call({ name: "Ann" });
      expect(r.message).to.equal("Bonjour, Ann");
      seen.add(r.node);
      return seen.size === 2;
    }, 30_000, 50);
    expect([...seen].sort()).to.deep.equal(NODES);
  });

  it("4. Hello returns a pushed config value without a restart", async () => {
    const before = await instances("HelloServer");
    await api.putServerConfig("Demo", "HelloServer", CONFIG_FILE, JSON.stringify({ greeting: "Hola" }), "second greeting");
    await api.pushConfig(CONFIG_FILE, before.map((i) => i.id));
    // Each Hello instance, called at its own endpoint.
    for (const inst of before) {
      const hello = helloProxy(comm!, scaffold.hello, `Demo.HelloServer.GreeterObj@tcp ${endpointOf(inst)}`);
      await waitFor(`Hello on ${inst.node} to say Hola`, async () => (await hello.sayHello({ name: "Ann" })).message === "Hola, Ann", 30_000);
    }
    expect((await caller.call({ name: "Ann" })).message).to.equal("Hola, Ann");
    const after = await instances("HelloServer");
    expect(after.map((i) => [i.node, i.pid, i.restarts]), "same processes, no restart").to.deep.equal(before.map((i) => [i.node, i.pid, i.restarts]));
  });

  it("5. v2 of Hello, batch size 1, under continuous calls to Caller: zero failed calls", async () => {
    const hello = await instances("HelloServer");
    const version = await api.upload("Demo", "HelloServer", scaffold.helloV2.file, scaffold.helloV2.sha256, "HelloServer v2");
    expect(version).to.equal(2);
    const load = new Load(caller);
    try {
      const task = await api.publish(hello.map((i) => i.id), version, 1);
      v2Task = task.id;
      const done = await api.waitTask(task.id);
      expect(new Set(done.items.map((i) => (i as { batch?: number }).batch)).size, "one instance per batch").to.equal(2);
    } finally {
      await load.stop();
    }
    const list = await instances("HelloServer");
    expect(list.map((i) => [i.node, i.observedState, i.observedVersion])).to.deep.equal(NODES.map((n) => [n, "active", 2]));
    expect(list.map((i) => i.pid), "new processes").not.to.deep.equal(hello.map((i) => i.pid));
    blocking = false;
    expect(load.failed, `${load.failed} of ${load.ok + load.failed} calls failed: ${load.errors.join("; ")}`).to.equal(0);
    expect(load.ok).to.be.greaterThan(0);
    expect([...load.messages]).to.deep.equal(["Hola, Ann"]);
  });

  it("5. rollback to v1 under continuous calls: zero failed calls", async () => {
    const load = new Load(caller);
    try {
      const task = await api.rollback(v2Task);
      await api.waitTask(task.id);
    } finally {
      await load.stop();
    }
    const list = await instances("HelloServer");
    expect(list.map((i) => [i.node, i.observedState, i.observedVersion])).to.deep.equal(NODES.map((n) => [n, "active", 1]));
    expect((await caller.call({ name: "Ann" })).message).to.equal("Hola, Ann");
    blocking = false;
    expect(load.failed, `${load.failed} of ${load.ok + load.failed} calls failed: ${load.errors.join("; ")}`).to.equal(0);
    expect(load.ok).to.be.greaterThan(0);
  });

  it("6. kill -9 of an agent: its services keep serving; restarted, it re-adopts them, no duplicates", async () => {
    const i = 1;
    const node = NODES[i]!;
    const onNode = [...await instances("HelloServer"), ...await instances("CallerServer")].filter((x) => x.node === node);
    expect(onNode).to.have.length(2);
    const hello = helloProxy(comm!, scaffold.hello, `Demo.HelloServer.GreeterObj@tcp ${endpointOf(onNode.find((x) => x.server === "HelloServer")!)}`);
    const callerThere = callerProxy(comm!, scaffold.caller, `Demo.CallerServer.CallerObj@tcp ${endpointOf(onNode.find((x) => x.server === "CallerServer")!)}`);
    // Serving before the kill (the rollback's last restart may still be starting up: the agent
    // reports "active" at launch, before the servant listens; see notes/up-e2e.md).
    await waitFor(`Hello and Caller on ${node} to answer`, async () =>
      (await hello.sayHello({ name: "Ann" })).message === "Hola, Ann" && (await callerThere.call({ name: "Ann" })).node === node, 30_000);
    const pidsBefore = processesUnder(agentDirs[i]!);
    expect(pidsBefore, "one process per instance").to.deep.equal(onNode.map((x) => x.pid).sort((a, b) => a - b));

    agents[i]!.signal("SIGKILL");
    await agents[i]!.exited;
    expect(agents[i]!.exitSignal).to.equal("SIGKILL");
    // The servants on that node answer at their own endpoints, with no agent.
    expect((await hello.sayHello({ name: "Ann" })).message).to.equal("Hola, Ann");
    const r = await callerThere.call({ name: "Ann" });
    expect([r.message, r.node]).to.deep.equal(["Hola, Ann", node]);
    // And through the registry, Caller keeps answering.
    expect((await caller.call({ name: "Ann" })).message).to.equal("Hola, Ann");
    expect(processesUnder(agentDirs[i]!)).to.deep.equal(pidsBefore);

    agents[i] = startAgent(i, "restarted");
    await agents[i]!.waitForLine(/sgrid node: started/);
    await waitFor(`${node} online again with its instances active`, async () => {
      const nodes = await api.nodes();
      if (!nodes.some((n) => n.name === node && n.online)) return false;
      const now = [...await instances("HelloServer"), ...await instances("CallerServer")].filter((x) => x.node === node);
      return now.every((x) => x.observedState === "active" && pidsBefore.includes(x.pid));
    }, 60_000);
    expect(agents[i]!.stderr + agents[i]!.stdout).to.match(/servant adopted/);
    expect(processesUnder(agentDirs[i]!), "the same processes, no duplicates").to.deep.equal(pidsBefore);
    const after = [...await instances("HelloServer"), ...await instances("CallerServer")].filter((x) => x.node === node);
    expect(after.map((x) => x.restarts)).to.deep.equal(onNode.map((x) => x.restarts));
    expect((await callerThere.call({ name: "Ann" })).message).to.equal("Hola, Ann");
  });
});
