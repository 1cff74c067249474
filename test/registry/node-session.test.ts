/**
 * The registry's side of the node session, over real gRPC against a real
 * store (SQLite always, MySQL when SGRID_TEST_MYSQL_URL is set): hello and
 * desired state, pushes on change, heartbeats and offline marking, observed
 * reports and their events, admin commands, session replacement, package
 * downloads.
 */
import crypto from "node:crypto";
import { Readable } from "node:stream";
import { expect } from "chai";
import {
  Communicator, DeadlineExceededError, FailedPreconditionError, InvalidArgumentError, NotFoundError, UnauthenticatedError, UnavailableError,
} from "sgridnext";
import { NodeSessionProxy } from "sgridnext/gen/sgrid/registry/v1/node.sgrid";
import { CommandFailedError, NodeNameInUseError, PATCH_CHUNK_BYTES } from "../../registry/node";
import { type DialectCase, forEachDialect } from "./helpers/db";
import { CLUSTER_TOKEN, FakeAgent, type NodeRegistry, startNodeRegistry, waitFor } from "./helpers/node-harness";

let seq = 0;
function uniq(prefix: string): string {
  return `${prefix}${process.pid}x${++seq}`;
}

async function rejects(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected a rejection");
}

forEachDialect("registry node session", (d: DialectCase) => {
  let reg: NodeRegistry;
  let fast: NodeRegistry;
  let mainUrl = "";
  let fastUrl = "";
  const drops: Array<() => Promise<void>> = [];
  const agents: FakeAgent[] = [];
  const comm = new Communicator();

  before(async function () {
    this.timeout(120_000);
    const db = await d.create();
    drops.push(() => db.drop());
    reg = await startNodeRegistry(db.url, { processId: "reg-main" });
    mainUrl = db.url;
    // Short liveness times for the heartbeat/offline cases, on a database of their own
    // (its sweeper would otherwise mark the main registry's quiet test nodes offline).
    const db2 = await d.create();
    drops.push(() => db2.drop());
    fastUrl = db2.url;
    fast = await startNodeRegistry(db2.url, { processId: "reg-fast", heartbeatIntervalMs: 100, heartbeatTimeoutMs: 800 });
  });
  afterEach(async () => {
    await Promise.all(agents.splice(0).map((a) => a.close()));
  });
  after(async () => {
    comm.close();
    await reg?.close();
    await fast?.close();
    for (const drop of drops) await drop();
  });

  function agent(r: NodeRegistry, node: string, opts?: ConstructorParameters<typeof FakeAgent>[2]): FakeAgent {
    const a = new FakeAgent(r.address, node, opts);
    agents.push(a);
    return a;
  }

  /** A server with a patch, placed on `node` (which must exist) with everything set. */
  async function place(node: string, opts: { app?: string; type?: "node" | "java" | "binary"; port?: number; on?: NodeRegistry } = {}) {
    const app = opts.app ?? uniq("App");
    const { store } = opts.on ?? reg;
    await store.servers.create({ application: app, name: "Hello", type: opts.type ?? "java" });
    const patch = await store.patches.create({ application: app, server: "Hello", sha256: "a".repeat(64), size: 1234, uploader: "t", storageKey: "a".repeat(64) });
    const inst = await store.instances.create({
      application: app, server: "Hello", node,
      adapters: [{ obj: "GreeterObj", host: "0.0.0.0", port: opts.port ?? 20000 + (seq % 10000) }],
      env: { B_VAR: "2", A_VAR: "1" },
      limits: { memoryBytes: 256 << 20, cpuCores: 0.5, pids: 64 },
      healthCheck: { kind: "tcp", intervalMs: 1000, failureThreshold: 3 },
      launch: { args: ["--port", "x"], jvmOptions: ["-Xmx128m"], stopSignal: "SIGINT", stopGraceMs: 2000, keepaliveTimeoutMs: 30000 },
      desiredState: "active",
      desiredPatchId: patch.id,
    });
    return { app, patch, inst };
  }

  it("answers hello with the node's full desired state, records the node online and logs node.online", async () => {
    const node = uniq("n-");
    await reg.store.nodes.upsert({ name: node, address: "127.0.0.1", agentVersion: "old" });
    const { app, patch, inst } = await place(node);
    await reg.store.nodes.setOnline(node, false);
    const a = agent(reg, node);
    const desired = await waitFor("the first desired state", () => a.lastDesired());
    expect(desired.registry).to.equal("127.0.0.1:9500");
    expect(desired.heartbeatIntervalMs).to.equal(5000);
    expect(desired.instances).to.have.length(1);
    const d0 = desired.instances[0]!;
    expect(d0).to.deep.include({ instanceId: inst.id, application: app, server: "Hello", type: "java", state: "active" });
    expect(d0.adapters).to.deep.equal([{ obj: "GreeterObj", host: "0.0.0.0", port: inst.adapters[0]!.port, protocol: "grpc", weight: 100 }]);
    expect(Object.entries(d0.env)).to.deep.equal([["A_VAR", "1"], ["B_VAR", "2"]]);
    expect(d0.limits).to.deep.equal({ memoryBytes: 256 << 20, cpuCores: 0.5, pids: 64 });
    expect(d0.healthCheck).to.deep.include({ kind: "tcp", intervalMs: 1000, failureThreshold: 3, port: 0 });
    expect(d0.launch).to.deep.include({ args: ["--port", "x"], jvmOptions: ["-Xmx128m"], stopSignal: "SIGINT", stopGraceMs: 2000, keepaliveTimeoutMs: 30000, entry: "" });
    expect(d0.patch).to.deep.equal({ id: patch.id, version: 1, sha256: "a".repeat(64), size: 1234 });
    const rec = await reg.store.nodes.get(node);
    expect(rec).to.include({ online: true, agentVersion: "test", address: "127.0.0.1" });
    expect(rec.hostInfo).to.deep.equal({ cpuCount: 2 });
    // Logged just after the desired state is queued (the agent need not wait for the event).
    const events = await waitFor("the node.online event", async () => {
      const e = await reg.store.events.list({ kind: "node.online", target: node });
      return e.length > 0 ? e : undefined;
    });
    expect(events).to.have.length(1);
    expect(events[0]!.actor).to.equal(`node:${node}`);
    expect(JSON.stringify(events[0])).to.not.contain(CLUSTER_TOKEN);
    expect(reg.hub.localNodes()).to.include(node);
  });

  it("sends a new desired state when the node's instances change, and nothing for another node's change", async () => {
    const node = uniq("n-");
    const other = uniq("o-");
    await reg.store.nodes.upsert({ name: node, address: "127.0.0.1", agentVersion: "1" });
    await reg.store.nodes.upsert({ name: other, address: "127.0.0.1", agentVersion: "1" });
    const { inst } = await place(node);
    const a = agent(reg, node);
    await waitFor("the first desired state", () => a.lastDesired());
    await reg.store.instances.setDesired(inst.id, { state: "inactive" });
    const next = await waitFor("the changed desired state", () => a.lastDesired()?.instances[0]?.state === "inactive" && a.lastDesired());
    expect(next.instances[0]!.instanceId).to.equal(inst.id);
    const count = a.desiredStates().length;
    // Another node's placement and an observed report change nothing for this node.
    await place(other);
    await reg.store.instances.reportObserved(inst.id, { state: "inactive" });
    // A later change of this node is the next thing it receives: nothing was sent in between.
    await reg.store.instances.updateSpec(inst.id, { env: { C_VAR: "3" } });
    await waitFor("the env change", () => a.lastDesired()?.instances[0]?.env.C_VAR === "3");
    expect(a.desiredStates().length).to.equal(count + 1);
    // Undeploy: the instance leaves the list.
    await reg.store.instances.remove(inst.id);
    await waitFor("the undeploy", () => a.lastDesired()?.instances.length === 0);
  });

  it("refuses a session whose first message is not hello (INVALID_ARGUMENT) and creates no node", async () => {
    const node = uniq("bad-");
    const a = agent(reg, node, { first: { kind: { $case: "heartbeat", value: { load1: 1, factsJson: "", usage: [], sample: undefined } } } });
    await a.done;
    expect(a.outcome).to.be.instanceOf(InvalidArgumentError);
    expect(a.outcome!.message).to.contain("first message").and.contain("hello");
    expect(await reg.store.nodes.find(node)).to.equal(undefined);
    const b = agent(reg, node, { first: { kind: { $case: "hello", value: { node: "a/b", address: "", agentVersion: "", hostInfoJson: "", agentId: "", tags: [] } } } });
    await b.done;
    expect(b.outcome).to.be.instanceOf(InvalidArgumentError);
    expect(b.outcome!.message).to.contain("node name").and.contain("a/b");
    const c = agent(reg, node, { first: { kind: { $case: "hello", value: { node, address: "", agentVersion: "", hostInfoJson: "[1,2]", agentId: "", tags: [] } } } });
    await c.done;
    expect(c.outcome).to.be.instanceOf(InvalidArgumentError);
    expect(c.outcome!.message).to.contain("host info");
    expect(await reg.store.nodes.find(node)).to.equal(undefined);
  });

  it("refuses a wrong or missing cluster token (UNAUTHENTICATED) for sessions and downloads", async () => {
    const node = uniq("tok-");
    const a = agent(reg, node, { token: "wrong" });
    await a.done;
    expect(a.outcome).to.be.instanceOf(UnauthenticatedError);
    expect(await reg.store.nodes.find(node)).to.equal(undefined);
    const proxy = comm.stringToProxy(NodeSessionProxy, reg.address);
    const err = await rejects((async () => {
      for await (const _ of proxy.downloadPatch({ patchId: 1, offset: 0 })) void _;
    })());
    expect(err).to.be.instanceOf(UnauthenticatedError);
  });

  it("keeps a heartbeating node online past the timeout, with samples and usage", async () => {
    const node = uniq("hb-");
    await fast.store.nodes.upsert({ name: node, address: "127.0.0.1", agentVersion: "1" });
    const { inst } = await place(node, { on: fast });
    const a = agent(fast, node);
    await waitFor("the first desired state", () => a.lastDesired());
    const timer = setInterval(() => a.heartbeat([{ instanceId: inst.id, memoryBytes: 4096, cpuCoresUsed: 0.25 }]), 50);
    try {
      const before = fast.hub.stats.heartbeatsRecorded;
      // Three timeouts' worth of heartbeats.
      await waitFor("heartbeats over 3 timeouts", () => fast.hub.stats.heartbeatsRecorded - before >= 48);
      expect((await fast.store.nodes.get(node)).online).to.equal(true);
      expect(await fast.store.events.list({ kind: "node.offline", target: node })).to.deep.equal([]);
    } finally {
      clearInterval(timer);
    }
    const samples = fast.hub.samples(node);
    expect(samples.length).to.be.greaterThan(10);
    expect(samples.at(-1)).to.include({ load1: 0.5, cpu: 0.25, memoryTotalBytes: 1000, memoryUsedBytes: 600 });
    expect(fast.hub.usage(inst.id)).to.include({ memoryBytes: 4096, cpuCoresUsed: 0.25 });
    expect(reg.hub.samples(node)).to.deep.equal([]); // held by the other process
  });

  it("keeps a node's liveness visible to another registry on the database: its heartbeat time fresh within the timeout, never marked offline there", async function () {
    this.timeout(60_000);
    const other = await startNodeRegistry(fastUrl, { processId: "reg-fast-2", heartbeatIntervalMs: 100, heartbeatTimeoutMs: 800 });
    try {
      const node = uniq("live-");
      await fast.store.nodes.upsert({ name: node, address: "127.0.0.1", agentVersion: "1" });
      const a = agent(fast, node);
      await waitFor("the first desired state", () => a.lastDesired());
      const timer = setInterval(() => a.heartbeat(), 50);
      try {
        const before = fast.hub.stats.heartbeatsRecorded;
        let oldest = Number.POSITIVE_INFINITY;
        // Three timeouts' worth of heartbeats, the other registry reading the node meanwhile.
        await waitFor("heartbeats over 3 timeouts", async () => {
          const seen = await other.store.nodes.get(node);
          oldest = Math.min(oldest, seen.online ? Date.now() - (seen.lastHeartbeatAt ?? 0) : Number.NEGATIVE_INFINITY);
          return fast.hub.stats.heartbeatsRecorded - before >= 48;
        });
        expect(oldest, "how stale the other registry saw the heartbeat time (ms; -Infinity: offline)").to.be.within(0, 800);
        expect(other.hub.localNodes()).to.not.include(node);
        expect(await other.store.events.list({ kind: "node.offline", target: node })).to.deep.equal([]);
      } finally {
        clearInterval(timer);
      }
    } finally {
      await other.close();
    }
  });

  it("marks a silent node offline (event node.offline) and its endpoints inactive; a heartbeat brings it back", async () => {
    const node = uniq("off-");
    await fast.store.nodes.upsert({ name: node, address: "127.0.0.1", agentVersion: "1" });
    const { app, inst } = await place(node, { on: fast });
    await fast.store.instances.reportObserved(inst.id, { state: "active" });
    const a = agent(fast, node);
    await waitFor("the first desired state", () => a.lastDesired());
    const obj = `${app}.Hello.GreeterObj`;
    expect((await fast.store.endpoints.find(obj))[0]!.active).to.equal(true);
    // Silence: no heartbeats.
    await waitFor("node offline", async () => !(await fast.store.nodes.get(node)).online, 20_000);
    const ep = (await fast.store.endpoints.find(obj))[0]!;
    expect(ep).to.include({ active: false, nodeOnline: false });
    // The sweeper appends the event just after the offline mark commits.
    const events = await waitFor("the node.offline event", async () => {
      const e = await fast.store.events.list({ kind: "node.offline", target: node });
      return e.length > 0 ? e : undefined;
    });
    expect(events).to.have.length(1);
    expect(events[0]!.message).to.contain(node);
    // The silent session was closed too (a half-open connection must not keep the node).
    await waitFor("the silent session to end", () => a.outcome !== undefined);
    expect(a.outcome).to.be.instanceOf(DeadlineExceededError);
    expect(fast.hub.localNodes()).to.not.include(node);
    // The agent comes back.
    const b = agent(fast, node);
    await waitFor("online again", async () => (await fast.store.nodes.get(node)).online && b.lastDesired());
    expect((await fast.store.endpoints.find(obj))[0]!.active).to.equal(true);
  });

  it("records observed batches (version -> patch id) and logs crash and OOM events without secrets", async () => {
    const node = uniq("obs-");
    await reg.store.nodes.upsert({ name: node, address: "127.0.0.1", agentVersion: "1" });
    const { app, patch, inst } = await place(node);
    const a = agent(reg, node);
    await waitFor("the first desired state", () => a.lastDesired());
    a.send({ kind: { $case: "observed", value: { full: true, instances: [{ instanceId: inst.id, state: "active", pid: 4242, version: 1, restarts: 2, lastExitReason: "", event: "", startedAt: 1700000000000, portsInUse: [], eventDetail: "" }] } } });
    const rec = await waitFor("the observed state", async () => { const r = await reg.store.instances.get(inst.id); return r.observedState === "active" && r; });
    expect(rec).to.include({ pid: 4242, observedPatchId: patch.id, restarts: 2 });
    expect(reg.hub.usage(inst.id)).to.include({ startedAt: 1700000000000 });
    a.send({ kind: { $case: "observed", value: { full: false, instances: [
      { instanceId: inst.id, state: "activating", pid: 0, version: 1, restarts: 3, lastExitReason: "killed by the OOM killer (memory limit 268435456 bytes)", event: "oom", startedAt: 0, portsInUse: [], eventDetail: "" },
    ] } } });
    const ev = await waitFor("the oom event", async () => (await reg.store.events.list({ kind: "instance.oom" })).find((e) => e.target === `${app}.Hello@${node}`));
    expect(ev.message).to.contain("OOM").and.contain(String(inst.id));
    expect(ev.data).to.include({ instanceId: inst.id, restarts: 3 });
    // Env values and launch args never reach the event log.
    expect(JSON.stringify(ev)).to.not.contain("A_VAR").and.not.contain("--port");
    expect((await reg.store.instances.get(inst.id))).to.include({ observedState: "activating", pid: null, restarts: 3 });
    // A resource-limit event is logged with its own detail, not the exit reason.
    a.send({ kind: { $case: "observed", value: { full: false, instances: [
      { instanceId: inst.id, state: "activating", pid: 0, version: 1, restarts: 3, lastExitReason: "killed by the OOM killer (memory limit 268435456 bytes)", event: "pids_limit", startedAt: 0, portsInUse: [], eventDetail: "the pids limit refused 12 forks" },
    ] } } });
    const pidsEv = await waitFor("the pids_limit event", async () => (await reg.store.events.list({ kind: "instance.pids_limit" })).find((e) => e.target === `${app}.Hello@${node}`));
    expect(pidsEv.message).to.contain("the pids limit refused 12 forks").and.not.contain("OOM");
    // A report about another node's instance is ignored.
    const other = uniq("x-");
    await reg.store.nodes.upsert({ name: other, address: "127.0.0.1", agentVersion: "1" });
    const foreign = await place(other);
    a.send({ kind: { $case: "observed", value: { full: false, instances: [{ instanceId: foreign.inst.id, state: "failed", pid: 1, version: 0, restarts: 0, lastExitReason: "", event: "crash", startedAt: 0, portsInUse: [], eventDetail: "" }] } } });
    a.send({ kind: { $case: "observed", value: { full: false, instances: [{ instanceId: inst.id, state: "failed", pid: 0, version: 1, restarts: 9, lastExitReason: "exit code 1", event: "failed", startedAt: 0, portsInUse: [], eventDetail: "" }] } } });
    await waitFor("the later report", async () => (await reg.store.instances.get(inst.id)).observedState === "failed");
    expect((await reg.store.instances.get(foreign.inst.id)).observedState).to.equal("inactive");
    expect((await reg.store.events.list({ kind: "instance.crash", target: `${foreign.app}.Hello@${other}` }))).to.deep.equal([]);
  });

  it("writes nothing for a reconnect's unchanged full observed batch", async () => {
    const node = uniq("re-");
    await reg.store.nodes.upsert({ name: node, address: "127.0.0.1", agentVersion: "1" });
    const { inst } = await place(node);
    const report = { kind: { $case: "observed" as const, value: { full: true, instances: [{ instanceId: inst.id, state: "active", pid: 77, version: 1, restarts: 0, lastExitReason: "", event: "", startedAt: 0, portsInUse: [], eventDetail: "" }] } } };
    const a = agent(reg, node);
    await waitFor("the first desired state", () => a.lastDesired());
    a.send(report);
    const first = await waitFor("the observed state", async () => { const r = await reg.store.instances.get(inst.id); return r.pid === 77 && r; });
    await a.close();
    const b = agent(reg, node);
    await waitFor("the second session", () => b.lastDesired());
    const before = reg.hub.stats.observedReports;
    b.send(report);
    b.send({ kind: { $case: "observed", value: { full: false, instances: [{ ...report.kind.value.instances[0]!, pid: 78 }] } } });
    await waitFor("the changed pid", async () => (await reg.store.instances.get(inst.id)).pid === 78);
    // Only the changed report was written.
    expect(reg.hub.stats.observedReports - before).to.equal(1);
    expect((await reg.store.instances.get(inst.id)).observedAt).to.be.at.least(first.observedAt!);
  });

  it("relays an admin command to the instance's agent and returns its reply; a failure comes back typed", async () => {
    const node = uniq("cmd-");
    await reg.store.nodes.upsert({ name: node, address: "127.0.0.1", agentVersion: "1" });
    const { inst } = await place(node);
    const a = agent(reg, node);
    await waitFor("the first desired state", () => a.lastDesired());
    a.onCommand = (cmd) => cmd.command === "sgrid.loadconfig"
      ? { ok: true, output: `reloaded ${cmd.args} for ${cmd.instanceId} within ${cmd.timeoutMs}` }
      : { ok: false, error: `unknown command ${cmd.command}` };
    expect(await reg.hub.sendCommand(inst.id, "sgrid.loadconfig", "app.conf", 3000)).to.equal(`reloaded app.conf for ${inst.id} within 3000`);
    const err = await rejects(reg.hub.sendCommand(inst.id, "custom.nope", "", 3000));
    expect(err).to.be.instanceOf(CommandFailedError);
    expect(err.message).to.contain("custom.nope").and.contain("unknown command custom.nope").and.contain(String(inst.id));
    // No answer at all: DEADLINE_EXCEEDED.
    a.onCommand = () => undefined;
    const late = await rejects(reg.hub.sendCommand(inst.id, "sgrid.viewstatus", "", 300));
    expect(late).to.be.instanceOf(DeadlineExceededError);
    expect(late.message).to.contain(node);
    // Bad input and unknown instances.
    expect(await rejects(reg.hub.sendCommand(inst.id, "", "", 1000))).to.be.instanceOf(InvalidArgumentError);
    expect(await rejects(reg.hub.sendCommand(inst.id, "x", "", 0))).to.be.instanceOf(InvalidArgumentError);
    expect(await rejects(reg.hub.sendCommand(99_999_999, "x", "", 1000))).to.be.instanceOf(NotFoundError);
  });

  it("answers a command to an instance on an offline node with UNAVAILABLE naming the node", async () => {
    const node = uniq("gone-");
    await reg.store.nodes.upsert({ name: node, address: "127.0.0.1", agentVersion: "1" });
    const { inst } = await place(node);
    await reg.store.nodes.setOnline(node, false);
    const err = await rejects(reg.hub.sendCommand(inst.id, "sgrid.viewstatus", "", 2000));
    expect(err).to.be.instanceOf(UnavailableError);
    expect(err.message).to.contain(`"${node}"`).and.contain("offline");
  });

  it("replaces an older session of the same node; the old one ends FAILED_PRECONDITION", async () => {
    const node = uniq("dup-");
    const a = agent(reg, node);
    await waitFor("the first session's desired state", () => a.lastDesired());
    const b = agent(reg, node);
    await waitFor("the second session's desired state", () => b.lastDesired());
    await waitFor("the first session to end", () => a.outcome !== undefined);
    expect(a.outcome).to.be.instanceOf(FailedPreconditionError);
    expect(a.outcome!.message).to.contain("replaced");
    expect(b.outcome).to.equal(undefined);
    expect(reg.hub.localNodes().filter((n) => n === node)).to.have.length(1);
    // Commands go to the new session.
    const { inst } = await place(node);
    await waitFor("the placement", () => b.lastDesired()?.instances.length === 1);
    expect(await reg.hub.sendCommand(inst.id, "ping", "1", 3000)).to.equal("echo ping 1");
  });

  it("refuses a second agent (another agent id) under a node name in session, naming the node; the first keeps its session", async () => {
    const node = uniq("twin-");
    const first = agent(reg, node, { agentId: "agent-one" });
    await waitFor("the first session's desired state", () => first.lastDesired());
    const before = await reg.store.nodes.get(node);
    const second = agent(reg, node, { agentId: "agent-two" });
    await second.done;
    expect(second.outcome).to.be.instanceOf(NodeNameInUseError);
    expect((second.outcome as NodeNameInUseError).code).to.equal("NODE_NAME_IN_USE");
    expect(second.outcome!.message).to.contain(`node name "${node}" is in use`).and.contain("the first keeps its session");
    expect(second.lastDesired(), "the refused agent gets no desired state").to.equal(undefined);
    expect(first.outcome).to.equal(undefined);
    expect((await reg.store.nodes.get(node)).agentId).to.equal(before.agentId).and.equal("agent-one");
    const { inst } = await place(node);
    await waitFor("the placement reaches the first agent", () => first.lastDesired()?.instances.length === 1);
    expect(await reg.hub.sendCommand(inst.id, "ping", "1", 3000)).to.equal("echo ping 1");

    // Through another registry process on the same database: refused as well (the node's row says who is in session).
    const other = await startNodeRegistry(mainUrl, { processId: "reg-other" });
    try {
      const third = agent(other, node, { agentId: "agent-three" });
      await third.done;
      expect(third.outcome).to.be.instanceOf(NodeNameInUseError);
      expect(third.outcome!.message).to.contain("through another registry process");
      // The same agent (its id) may always take its session over, here or there.
      const again = agent(other, node, { agentId: "agent-one" });
      await waitFor("the first agent's new session", () => again.lastDesired());
    } finally {
      await other.close();
    }
  });

  it("streams a package in PATCH_CHUNK_BYTES chunks with size and sha256 first, resumes from an offset, NOT_FOUND for an unknown patch", async () => {
    const app = uniq("Pkg");
    await reg.store.servers.create({ application: app, name: "Hello", type: "binary" });
    const C = PATCH_CHUNK_BYTES;
    // Three whole chunks and a part of one, read from the storage in 1 MiB rows.
    const size = 3 * C + 200_000;
    const bytes = crypto.randomBytes(size);
    const sha256 = crypto.createHash("sha256").update(bytes).digest("hex");
    const { key } = await reg.storage.put(Readable.from([bytes]), { sha256, size: bytes.length, maxBytes: 1 << 30 });
    const patch = await reg.store.patches.create({ application: app, server: "Hello", sha256, size: bytes.length, uploader: "t", storageKey: key });
    const proxy = comm.stringToProxy(NodeSessionProxy, reg.address);
    const md = { metadata: { authorization: `Bearer ${CLUSTER_TOKEN}` } };
    const chunks = [];
    for await (const c of proxy.downloadPatch({ patchId: patch.id, offset: 0 }, md)) chunks.push(c);
    expect(chunks.map((c) => c.data.length)).to.deep.equal([C, C, C, 200_000]);
    expect(chunks.map((c) => c.offset)).to.deep.equal([0, C, 2 * C, 3 * C]);
    expect(chunks[0]).to.include({ size: bytes.length, sha256 });
    expect(Buffer.concat(chunks.map((c) => c.data)).equals(bytes)).to.equal(true);
    const tail = [];
    for await (const c of proxy.downloadPatch({ patchId: patch.id, offset: C + 150_000 }, md)) tail.push(c);
    expect(tail[0]).to.include({ offset: C + 150_000, size: bytes.length, sha256 });
    expect(Buffer.concat(tail.map((c) => c.data)).equals(bytes.subarray(C + 150_000))).to.equal(true);
    const end = [];
    for await (const c of proxy.downloadPatch({ patchId: patch.id, offset: bytes.length }, md)) end.push(c);
    expect(end).to.have.length(1);
    expect(end[0]).to.include({ offset: bytes.length, size: bytes.length });
    expect(end[0]!.data.length).to.equal(0);
    const missing = await rejects((async () => {
      for await (const _ of proxy.downloadPatch({ patchId: 99_999_999, offset: 0 }, md)) void _;
    })());
    expect(missing).to.be.instanceOf(NotFoundError);
    expect(missing.message).to.contain("99999999");
    const past = await rejects((async () => {
      for await (const _ of proxy.downloadPatch({ patchId: patch.id, offset: bytes.length + 1 }, md)) void _;
    })());
    expect(past).to.be.instanceOf(InvalidArgumentError);
  });
});
