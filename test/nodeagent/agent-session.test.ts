/**
 * The NodeAgent against a registry stand-in (the generated
 * NodeSessionServant on a real port), with real processes and real
 * cgroups: install from a downloaded patch, run, report, restart after a
 * kill, refuse bad packages while the running version keeps serving,
 * resume a cut download, reconnect after the registry comes back, remove
 * instances no longer placed.
 */
import { expect } from "chai";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { NodeAgent, isPidLive } from "../../nodeagent";
import { freePort } from "../helpers/processes";
import { desiredInstance } from "./helpers/agent-fake-registry";
import { AgentHarness, fastAgentOptions } from "./helpers/agent-harness";
import { binaryPackage, escapingPackage, httpGet, linkOutPackage } from "./helpers/agent-packages";
import { writePackage } from "../fixtures/packages/tar-builder";
import { v1Mounts, waitFor } from "./helpers/agent-test-env";

describe("nodeagent/agent: NodeAgent and the registry session", function () {
  this.timeout(90_000);
  const h = new AgentHarness();
  let port: number;
  const ID = 101;

  function instance(patchId: number | undefined, extra: Record<string, unknown> = {}) {
    const p = patchId === undefined ? undefined : h.registry.patches.get(patchId)!;
    return desiredInstance({
      instanceId: ID, application: "Demo", server: "BinServer", type: "binary",
      adapters: [{ obj: "HttpObj", host: "127.0.0.1", port, protocol: "grpc", weight: 100 }],
      env: { NODE_BIN: process.execPath },
      launch: { args: [h.marker], jvmOptions: [], nodeOptions: [], entry: "", runAsUser: "", stopSignal: "", stopGraceMs: 0, keepaliveTimeoutMs: 0 },
      patch: p && { id: p.id, version: p.version, sha256: p.sha256!, size: p.data.length },
      ...extra,
    });
  }

  before(async () => {
    port = await freePort();
    await h.startRegistry();
    h.registry.addPatch({ id: 1, version: 1, data: await binaryPackage(h.pkgDir, "Demo", "BinServer", "1") });
  });
  after(() => h.teardown());

  it("installs the patch, runs the servant, and reports hello, observed state and heartbeats with usage", async () => {
    h.registry.setInstances([instance(1)]);
    const agent = await h.startAgent();
    const active = await h.registry.waitObserved("instance active at version 1", (o) => o.instanceId === ID && o.state === "active" && o.version === 1);
    expect(active.pid).to.be.greaterThan(0);
    expect(active.startedAt).to.be.greaterThan(0);
    if (v1Mounts()) {
      expect(agent.supervisor.cgroups.name, "real cgroups on this machine").to.equal("v1");
      const procs = fs.readFileSync(path.join(v1Mounts()!.memory, h.group, String(ID), "cgroup.procs"), "utf8");
      expect(procs.split("\n")).to.include(String(active.pid));
    }
    const body = await waitFor("servant answers HTTP", () => httpGet(port), 15_000);
    expect(body).to.equal(`Demo.BinServer v1 instance ${ID} pid ${active.pid}`);

    const hello = h.registry.hellos[0]!;
    expect(hello.node).to.equal("test-node");
    expect(hello.address).to.equal("127.0.0.1");
    expect(hello.agentVersion).to.match(/^\d+\.\d+\.\d+/);
    expect(JSON.parse(hello.hostInfoJson).cpuCount).to.be.greaterThan(0);
    expect(h.registry.batches[0]!.full, "full observed state right after hello").to.equal(true);

    const hb = await waitFor("a heartbeat with this instance's usage", () => h.registry.heartbeats.find((b) => b.usage.some((u) => u.instanceId === ID && u.memoryBytes > 0)));
    expect(hb.load1).to.be.at.least(0);
    expect(JSON.parse(hb.factsJson).memory.totalBytes).to.be.greaterThan(0);

    // Installed where ARCHITECTURE.md ("Node layout") says, current switched, package cached by sha256.
    const serverDir = path.join(h.dataDir, "servers", "Demo.BinServer");
    expect(fs.readlinkSync(path.join(serverDir, "current"))).to.equal(path.join("releases", "1"));
    expect(await agent.cache.has(h.registry.patches.get(1)!.sha256!)).to.equal(true);
  });

  it("sends a HostSample with every heartbeat, and its facts JSON only about every facts interval the registry names", async () => {
    if (!h.agent) await h.startAgent(); // run alone (--grep)
    const heartbeatsSince = async (ms: number) => {
      const from = h.registry.heartbeats.length;
      await new Promise((r) => setTimeout(r, ms));
      return h.registry.heartbeats.slice(from);
    };
    // A registry that names no facts interval (older ones): facts with every heartbeat.
    for (const b of await heartbeatsSince(1000)) {
      expect(JSON.parse(b.factsJson).memory.totalBytes).to.be.greaterThan(0);
      expect(b.sample?.memoryTotalBytes).to.equal(JSON.parse(b.factsJson).memory.totalBytes);
    }
    h.registry.factsIntervalMs = 1200; // heartbeats every 300 ms: facts with about one in four
    h.registry.setInstances(h.registry.instances);
    await heartbeatsSince(400); // the heartbeat in flight when the desired state changed
    const paced = await heartbeatsSince(4000);
    const withFacts = paced.filter((b) => b.factsJson !== "");
    expect(paced.length).to.be.greaterThan(4);
    expect(withFacts.length, `${withFacts.length} of ${paced.length} heartbeats with facts`).to.be.within(1, Math.floor(paced.length / 2));
    for (const b of withFacts) expect(JSON.parse(b.factsJson).cpuCount).to.be.greaterThan(0);
    for (const b of paced) {
      expect(b.sample!.cpus).to.be.greaterThan(0);
      expect(b.sample!.memoryTotalBytes).to.be.greaterThan(0);
      expect(b.sample!.memoryAvailableBytes).to.be.within(1, b.sample!.memoryTotalBytes);
      expect(b.sample!.diskTotalBytes).to.be.greaterThan(0);
    }
    h.registry.factsIntervalMs = 0;
    h.registry.setInstances(h.registry.instances);
    await heartbeatsSince(400);
    for (const b of await heartbeatsSince(1000)) expect(b.factsJson).to.not.equal("");
  });

  it("restarts a killed servant and reports the crash", async () => {
    const before = h.registry.latest(ID)!;
    const from = h.registry.observed.length;
    process.kill(before.pid, "SIGKILL");
    const crash = await h.registry.waitObserved("crash event", (o) => o.instanceId === ID && o.event === "crash", 20_000, from);
    expect(crash.lastExitReason).to.equal("killed by SIGKILL");
    const back = await h.registry.waitObserved("active again", (o) => o.instanceId === ID && o.state === "active" && o.pid !== before.pid, 20_000, from);
    expect(back.restarts).to.equal(before.restarts + 1);
    expect(await waitFor("new servant answers", () => httpGet(port), 15_000)).to.contain(`pid ${back.pid}`);
  });

  for (const [name, make, code] of [
    ["a path-escaping entry", () => escapingPackage(h.pkgDir, "Demo", "BinServer"), "PACKAGE_UNSAFE"],
    ["a link out of the release", () => linkOutPackage(h.pkgDir, "Demo", "BinServer"), "PACKAGE_UNSAFE"],
  ] as const) {
    it(`refuses a package with ${name}; the running version keeps serving`, async () => {
      const running = h.registry.latest(ID)!;
      const patchId = 10 + h.registry.patches.size;
      h.registry.addPatch({ id: patchId, version: patchId, data: make() });
      const from = h.registry.observed.length;
      h.registry.setInstances([instance(patchId)]);
      const refused = await h.registry.waitObserved("install refused", (o) => o.instanceId === ID && o.event === "install_failed", 20_000, from);
      expect(refused.lastExitReason).to.contain(`version ${patchId} refused, not installed: ${code}`);
      expect(refused.state).to.equal("active");
      expect(refused.version).to.equal(running.version);
      expect(refused.pid).to.equal(running.pid);
      expect(isPidLive(running.pid)).to.equal(true);
      expect(await httpGet(port)).to.contain(`v${running.version} instance ${ID} pid ${running.pid}`);
      expect(fs.existsSync(path.join(h.dataDir, "servers", "Demo.BinServer", "releases", String(patchId))), "nothing unpacked").to.equal(false);
    });
  }

  it("refuses a package whose sha256 does not match, and then runs a good new version", async () => {
    const running = h.registry.latest(ID)!;
    const good = await binaryPackage(h.pkgDir, "Demo", "BinServer", "30");
    h.registry.addPatch({ id: 30, version: 30, data: good, sha256: crypto.createHash("sha256").update("something else").digest("hex") });
    let from = h.registry.observed.length;
    h.registry.setInstances([instance(30)]);
    const refused = await h.registry.waitObserved("checksum refused", (o) => o.instanceId === ID && o.event === "install_failed", 20_000, from);
    expect(refused.lastExitReason).to.contain("PACKAGE_CHECKSUM_MISMATCH");
    expect(refused.pid).to.equal(running.pid);
    expect(await httpGet(port)).to.contain(`pid ${running.pid}`);

    h.registry.addPatch({ id: 31, version: 31, data: await binaryPackage(h.pkgDir, "Demo", "BinServer", "31") });
    from = h.registry.observed.length;
    h.registry.setInstances([instance(31)]);
    const upgraded = await h.registry.waitObserved("version 31 active", (o) => o.instanceId === ID && o.state === "active" && o.version === 31, 20_000, from);
    expect(upgraded.lastExitReason).to.not.contain("not installed");
    expect(upgraded.pid).to.not.equal(running.pid);
    expect(isPidLive(running.pid)).to.equal(false);
    expect(await waitFor("v31 answers", async () => (await httpGet(port))?.includes("v31") ? true : undefined, 15_000)).to.equal(true);
  });

  it("resumes a download that was cut short", async () => {
    const big = await writePackage(h.pkgDir, "big.tgz", {
      "sgrid.json": JSON.stringify({ app: "Demo", server: "BinServer", type: "binary", entry: "bin/start.sh" }),
      "bin/start.sh": { content: "#!/bin/sh\nexec \"$NODE_BIN\" \"$(dirname \"$0\")/../server.js\" \"$@\"\n", mode: 0o755 },
      "server.js": fs.readFileSync(path.join(h.dataDir, "servers", "Demo.BinServer", "releases", "31", "server.js")),
      "padding.bin": crypto.randomBytes(200 * 1024),
    });
    h.registry.addPatch({ id: 40, version: 40, data: fs.readFileSync(big) });
    h.registry.cutNextDownloadAfter = 32 * 1024;
    const downloadsBefore = h.registry.downloads.length;
    const from = h.registry.observed.length;
    h.registry.setInstances([instance(40)]);
    await h.registry.waitObserved("version 40 active", (o) => o.instanceId === ID && o.state === "active" && o.version === 40, 30_000, from);
    const reqs = h.registry.downloads.slice(downloadsBefore).filter((r) => r.patchId === 40);
    expect(reqs.length).to.be.at.least(2);
    expect(reqs[0]!.offset).to.equal(0);
    expect(reqs[1]!.offset, "second request resumes where the first stopped").to.be.greaterThan(0);
  });

  it("gives up on a download that stalls (no data for the idle timeout) and resumes it", async () => {
    const big = await writePackage(h.pkgDir, "stall.tgz", {
      "sgrid.json": JSON.stringify({ app: "Demo", server: "BinServer", type: "binary", entry: "bin/start.sh" }),
      "bin/start.sh": { content: "#!/bin/sh\nexec \"$NODE_BIN\" \"$(dirname \"$0\")/../server.js\" \"$@\"\n", mode: 0o755 },
      "server.js": fs.readFileSync(path.join(h.dataDir, "servers", "Demo.BinServer", "releases", "31", "server.js")),
      "padding.bin": crypto.randomBytes(200 * 1024),
    });
    h.registry.addPatch({ id: 41, version: 41, data: fs.readFileSync(big) });
    h.registry.stallNextDownloadAfter = 32 * 1024;
    const downloadsBefore = h.registry.downloads.length;
    const from = h.registry.observed.length;
    h.registry.setInstances([instance(41)]);
    await h.registry.waitObserved("version 41 active", (o) => o.instanceId === ID && o.state === "active" && o.version === 41, 30_000, from);
    const reqs = h.registry.downloads.slice(downloadsBefore).filter((r) => r.patchId === 41);
    expect(reqs.length, "the stalled download was abandoned and asked for again").to.be.at.least(2);
    expect(reqs[1]!.offset, "the second request resumes where the stalled one stopped").to.be.greaterThan(0);
  });

  it("keeps supervising while the registry is away, and reconnects with the full state when it is back", async () => {
    const agent = h.agent!;
    const hellos = h.registry.hellos.length;
    const running = agent.supervisor.get(String(ID))!.observed();
    await h.registry.stop();
    await waitFor("session lost", () => !agent.session.connected, 10_000);
    process.kill(running.pid!, "SIGKILL");
    const restarted = await waitFor("restarted without a registry", () => {
      const o = agent.supervisor.get(String(ID))!.observed();
      return o.state === "active" && o.pid !== running.pid ? o : undefined;
    }, 20_000);
    const batches = h.registry.batches.length;
    await h.registry.start();
    await waitFor("agent says hello again", () => h.registry.hellos.length > hellos, 20_000);
    const full = await waitFor("a full observed batch", () => h.registry.batches.slice(batches).find((b) => b.full), 10_000);
    const mine = full.instances.find((o) => o.instanceId === ID)!;
    expect(mine.pid).to.equal(restarted.pid);
    expect(mine.state).to.equal("active");
    await waitFor("session established again", () => agent.session.connected, 10_000);
  });

  it("a restarted agent reports the servant it re-adopts as it was (active, the same pid) from its first message, under the same agent id", async () => {
    const before = h.agent!;
    await waitFor("session established", () => before.session.connected, 10_000);
    const running = before.supervisor.get(String(ID))!.observed();
    expect(running.state).to.equal("active");
    const agentId = h.registry.hellos[h.registry.hellos.length - 1]!.agentId;
    expect(agentId).to.match(/^[0-9a-f]{32}$/);
    await before.shutdown();
    const hellos = h.registry.hellos.length;
    const batches = h.registry.batches.length;
    await h.startAgent();
    await waitFor("the new agent's hello", () => h.registry.hellos.length > hellos, 20_000);
    expect(h.registry.hellos[hellos]!.agentId, "an agent keeps its identity across restarts").to.equal(agentId);
    const full = await waitFor("its full observed batch", () => h.registry.batches.slice(batches).find((b) => b.full), 10_000);
    const mine = full.instances.find((o) => o.instanceId === ID)!;
    expect({ state: mine.state, pid: mine.pid }, "re-adopted and known ready: never reported activating").to.deep.equal({ state: "active", pid: running.pid });
    expect(h.registry.batches.slice(batches).flatMap((b) => b.instances).filter((o) => o.instanceId === ID).map((o) => o.state)).to.not.include("activating");
  });

  it("stops and removes an instance that is no longer placed on the node", async () => {
    const agent = h.agent!;
    const pid = agent.supervisor.get(String(ID))!.observed().pid!;
    h.registry.setInstances([]);
    await waitFor("instance removed", () => agent.supervisor.get(String(ID)) === undefined, 20_000);
    await waitFor("process gone", () => !isPidLive(pid), 10_000);
    expect(await httpGet(port, 500)).to.equal(undefined);
  });

  it("never establishes a session with a wrong cluster token", async () => {
    const other = new NodeAgent(fastAgentOptions(h.registry.address, path.join(h.tmp, "other"), h.group, { token: "wrong", name: "intruder", agentListen: "127.0.0.1:0" }));
    const hellos = h.registry.hellos.length;
    await other.start();
    const refusals: string[] = [];
    other.session.on("disconnected", (reason) => refusals.push(reason));
    try {
      await waitFor("two refused attempts", () => refusals.length >= 2, 10_000);
      expect(refusals[0]).to.match(/token|UNAUTHENTICATED/i);
      expect(other.session.connected).to.equal(false);
      expect(other.session.sessions).to.equal(0);
      expect(h.registry.hellos.slice(hellos).some((x) => x.node === "intruder")).to.equal(false);
    } finally {
      await other.shutdown();
    }
  });
});
