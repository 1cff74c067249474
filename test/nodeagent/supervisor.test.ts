/**
 * The instance supervisor with real servants in real v1 cgroups: start,
 * stop, restart, new versions, crash loops ending in FAILED, OOM kills,
 * CPU quota, a fork bomb held at the pids limit, keepalive and health
 * checks. Plus the RestartTracker's decisions on a fake clock.
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  InstanceSupervisor, ProcessWrangler, RestartTracker, detectCgroups, InvalidDesiredSpecError,
  type CgroupBackend, type DesiredSpec, type ObservedState, type SupervisorOptions,
} from "../../nodeagent";
import {
  expectGone, fixture, makeTempDir, recordStates, removeTempDir, removeV1Groups, testGroupName, v1Mounts, waitFor, waitForState,
} from "./helpers/agent-test-env";

describe("nodeagent/supervisor RestartTracker", () => {
  it("doubles the delay from 1 s to the 60 s cap by default", () => {
    const t = new RestartTracker({ jitter: 0, maxRestarts: 100 });
    const delays = Array.from({ length: 9 }, () => t.onFailure(0).delayMs);
    expect(delays).to.deep.equal([1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]);
  });

  it("spreads delays by the jitter, never above the cap", () => {
    expect(new RestartTracker({ jitter: 0.2 }, () => 0).onFailure(0).delayMs).to.equal(800);
    expect(new RestartTracker({ jitter: 0.2 }, () => 0.999999).onFailure(0).delayMs).to.equal(1200);
    const capped = new RestartTracker({ jitter: 0.2, initialDelayMs: 60_000 }, () => 0.999999);
    expect(capped.onFailure(0).delayMs).to.equal(60_000);
  });

  it("fails after maxRestarts within the window, counting only failures inside the window", () => {
    let now = 0;
    const t = new RestartTracker({ jitter: 0, maxRestarts: 3, windowMs: 10_000, initialDelayMs: 100 }, Math.random, () => now);
    for (let i = 0; i < 3; i++) {
      expect(t.onFailure(10).action).to.equal("restart");
      now += 1000;
    }
    const d = t.onFailure(10);
    expect(d.action).to.equal("fail");
    expect(d.reason).to.equal("crash loop: 3 restarts within 10 s");
    now += 9_500; // the first failures slide out of the window
    expect(t.onFailure(10).action).to.equal("restart");
  });

  it("resets the delay and the window after a stable run", () => {
    const t = new RestartTracker({ jitter: 0, stableAfterMs: 30_000 });
    t.onFailure(0);
    t.onFailure(0);
    expect(t.onFailure(0).delayMs).to.equal(4000);
    expect(t.onFailure(31_000)).to.include({ action: "restart", delayMs: 1000, attempt: 1 });
  });

  it("refuses a policy that cannot work", () => {
    expect(() => new RestartTracker({ multiplier: 0.5 })).to.throw(/multiplier/);
    expect(() => new RestartTracker({ initialDelayMs: 10, maxDelayMs: 5 })).to.throw(/maxDelayMs/);
  });
});

describe("nodeagent/supervisor InstanceSupervisor (real servants, v1 cgroups)", function () {
  const group = testGroupName("-sup");
  let cgroups: CgroupBackend;
  let wrangler: ProcessWrangler;
  let tmp: string;
  const sups: InstanceSupervisor[] = [];

  const fast: SupervisorOptions = {
    restart: { initialDelayMs: 50, multiplier: 2, maxDelayMs: 1000, jitter: 0, maxRestarts: 5, windowMs: 60_000 },
    stop: { graceMs: 500 },
  };

  before(async function () {
    if (!v1Mounts()) this.skip();
    cgroups = await detectCgroups({ groupName: group, v2Mount: null });
    wrangler = new ProcessWrangler({ cgroups, pollIntervalMs: 100 });
    tmp = makeTempDir();
  });
  afterEach(async () => {
    for (const s of sups.splice(0)) {
      const spec = s.desiredSpec;
      if (spec) await s.setDesired({ ...spec, state: "inactive" });
      s.detach();
    }
  });
  after(async () => {
    wrangler?.close();
    await removeV1Groups(group);
    removeTempDir(tmp);
  });

  function supervisor(id: string, options: SupervisorOptions = fast): { sup: InstanceSupervisor; seen: ObservedState[] } {
    const sup = new InstanceSupervisor(id, { wrangler, options });
    sups.push(sup);
    return { sup, seen: recordStates(sup) };
  }

  function spec(id: string, command: string, args: string[], extra: Partial<DesiredSpec> = {}): DesiredSpec {
    return { state: "active", version: "1.0.0", launch: { command, args, stdoutPath: path.join(tmp, `${id}.log`) }, ...extra };
  }

  const logOf = (id: string) => (fs.existsSync(path.join(tmp, `${id}.log`)) ? fs.readFileSync(path.join(tmp, `${id}.log`), "utf8") : "");

  it("starts, restarts on request, and stops: process in its group, grandchildren gone, group removed", async () => {
    const { sup, seen } = supervisor("life.one");
    await sup.setDesired(spec("life.one", "/bin/sh", [fixture("family.sh")]));
    let o = sup.observed();
    expect(o).to.include({ state: "active", restarts: 0, version: "1.0.0", adopted: false });
    const first = o.pid!;
    expect(await cgroups.contains("life.one", first)).to.equal(true);
    expect(seen.map((s) => s.state)).to.deep.equal(["activating", "active"]);

    // The registry resends the same desired state on every reconnect: nothing happens.
    await sup.setDesired(spec("life.one", "/bin/sh", [fixture("family.sh")]));
    expect(sup.observed().pid).to.equal(first);

    const family = await waitFor("the family forked", async () => {
      const p = await cgroups.procs("life.one");
      return p.length >= 5 ? p : undefined;
    });
    await sup.restart("operator asked");
    o = sup.observed();
    expect(o.state).to.equal("active");
    expect(o.pid).to.not.equal(first);
    expect(o.restarts).to.equal(0); // a deliberate restart is not a failure
    expect(o.lastExitReason).to.equal("stopped: operator asked");
    for (const pid of family) expectGone(pid);

    const second = o.pid!;
    await sup.setDesired({ ...spec("life.one", "/bin/sh", [fixture("family.sh")]), state: "inactive" });
    expect(sup.observed()).to.include({ state: "inactive", pid: null });
    expectGone(second);
    expect(fs.existsSync(path.join(v1Mounts()!.memory, group, "life.one"))).to.equal(false);
  });

  it("restarts for a new version, and applies new limits in place without a restart", async () => {
    const { sup } = supervisor("ver.one");
    const v1 = spec("ver.one", "/bin/sh", [fixture("servant.sh"), "marker-ver"], { limits: { pids: 50 } });
    await sup.setDesired(v1);
    const pid1 = sup.observed().pid!;
    await sup.setDesired({ ...v1, limits: { pids: 40, memoryBytes: 64 * 1024 * 1024 } });
    expect(sup.observed().pid).to.equal(pid1);
    expect(fs.readFileSync(path.join(v1Mounts()!.pids, group, "ver.one", "pids.max"), "utf8").trim()).to.equal("40");
    await sup.setDesired({ ...v1, version: "1.0.1" });
    const o = sup.observed();
    expect(o).to.include({ state: "active", version: "1.0.1", restarts: 0 });
    expect(o.pid).to.not.equal(pid1);
    expect(o.lastExitReason).to.equal("stopped: new version 1.0.1");
    expectGone(pid1);
  });

  it("restarts a crashing servant with growing delays, then marks it FAILED with its reason until someone acts", async () => {
    const { sup, seen } = supervisor("crash.one", { ...fast, restart: { initialDelayMs: 40, multiplier: 2, maxDelayMs: 1000, jitter: 0, maxRestarts: 3, windowMs: 60_000 } });
    const s = spec("crash.one", "/bin/sh", [fixture("crash.sh")]);
    await sup.setDesired(s);
    const failed = await waitForState(seen, "FAILED", (o) => o.state === "failed", 10_000);
    const backoffs = seen.filter((o) => o.state === "backoff");
    expect(backoffs.map((o) => o.retryInMs)).to.deep.equal([40, 80, 160]);
    expect(backoffs.every((o) => o.lastExitReason === "exited with code 3")).to.equal(true);
    // Each restart really waited its delay: the gap before each new start grows.
    const starts = seen.filter((o) => o.state === "activating").map((o) => o.since);
    expect(starts).to.have.length(4);
    for (let i = 1; i < starts.length; i++) expect(starts[i]! - starts[i - 1]!).to.be.at.least(backoffs[i - 1]!.retryInMs!);
    expect(failed.failedReason).to.equal("crash loop: 3 restarts within 60 s; last: exited with code 3");
    expect(failed.restarts).to.equal(3);
    expect(failed.pid).to.equal(null);

    // Re-sending the same desired state does not revive it.
    const count = seen.length;
    await sup.setDesired(s);
    await sleep(200);
    expect(sup.observed().state).to.equal("failed");
    expect(seen.slice(count).some((o) => o.state === "activating")).to.equal(false);

    // Someone acts: a restart gives it another full chance.
    await sup.restart();
    await waitForState(seen, "a new start", (o) => o.state === "activating", 2000, count);
  });

  it("recognises an OOM kill, reports it as such, and restarts the servant", async () => {
    const { sup, seen } = supervisor("oom.one");
    await sup.setDesired(spec("oom.one", process.execPath, [fixture("hog-memory.js")], { limits: { memoryBytes: 128 * 1024 * 1024 } }));
    const firstPid = sup.observed().pid;
    const oom = await waitForState(seen, "an OOM kill", (o) => o.state === "backoff", 15_000);
    expect(oom.lastExitReason).to.equal("oom killed");
    expect(await cgroups.oomKills("oom.one")).to.be.greaterThan(0);
    const again = await waitForState(seen, "the restart", (o) => o.state === "active" && o.pid !== firstPid, 5000);
    expect(again.restarts).to.equal(1);
  });

  it("keeps a CPU-bound servant within its CPU quota (cgroup usage over a window)", async () => {
    const { sup } = supervisor("cpu.one");
    await sup.setDesired(spec("cpu.one", process.execPath, [fixture("busy.js")], { limits: { cpuCores: 0.5 } }));
    await waitFor("busy", () => logOf("cpu.one").includes("busy"));
    await sleep(200);
    const t0 = process.hrtime.bigint();
    const u0 = (await sup.usage()).cpuUsageNanos;
    await sleep(1500);
    const u1 = (await sup.usage()).cpuUsageNanos;
    const wallSec = Number(process.hrtime.bigint() - t0) / 1e9;
    const cores = (u1 - u0) / 1e9 / wallSec;
    expect(cores, `used ${cores.toFixed(3)} cores`).to.be.at.most(0.5 * 1.1 + 0.05);
    // Only that it ran: on a loaded machine a busy loop may get less than its quota, and the quota is the upper bound above.
    expect(cores, "the servant was running").to.be.above(0.05);
  });

  it("holds a fork bomb at the pids limit and stops it completely", async () => {
    const { sup } = supervisor("bomb.one");
    await sup.setDesired(spec("bomb.one", process.execPath, [fixture("forkbomb.js"), "200"], { limits: { pids: 24 } }));
    const line = await waitFor("the fork bomb's report", () => /forked (\d+) of 200, refused (\d+)/.exec(logOf("bomb.one")), 10_000);
    expect(Number(line[2])).to.be.greaterThan(0); // the kernel refused forks
    const usage = await sup.usage();
    expect(usage.pids).to.be.at.most(24);
    // pids.events counts the refused forks (the agent's pids_limit event).
    expect(usage.pidsLimitHits).to.be.greaterThan(0);
    expect(sup.observed().state).to.equal("active");
    const pids = await cgroups.procs("bomb.one");
    expect(pids.length).to.be.greaterThan(5);
    await sup.setDesired({ ...sup.desiredSpec!, state: "inactive" });
    for (const pid of pids) expectGone(pid);
    expect(fs.existsSync(path.join(v1Mounts()!.pids, group, "bomb.one"))).to.equal(false);
  });

  it("restarts a servant whose keepalives stop, and leaves one that keeps sending them", async () => {
    const { sup, seen } = supervisor("ka.one");
    await sup.setDesired(spec("ka.one", "/bin/sh", [fixture("servant.sh"), "marker-ka"], { keepalive: { timeoutMs: 300 } }));
    const pid = sup.observed().pid;
    for (let i = 0; i < 8; i++) {
      await sleep(100);
      sup.keepalive();
    }
    expect(sup.observed()).to.include({ state: "active", pid });
    const restarted = await waitForState(seen, "a keepalive restart", (o) => o.state === "backoff", 3000);
    expect(restarted.lastExitReason).to.equal("keepalive timeout: none received for 300 ms");
    expect(restarted.restarts).to.equal(1);
    await waitForState(seen, "active again", (o) => o.state === "active" && o.pid !== pid, 3000);
  });

  it("restarts a servant after failureThreshold failed health checks", async () => {
    let healthy = true;
    const probes: string[] = [];
    const { sup, seen } = supervisor("health.one", {
      ...fast,
      health: { initialDelayMs: 50, intervalMs: 50, timeoutMs: 200, failureThreshold: 2 },
      healthCheckFactory: (id, probe) => {
        probes.push(`${id}:${String(probe.kind)}`);
        return async () => (healthy ? true : { ok: false, detail: "HTTP 503" });
      },
    });
    await sup.setDesired(spec("health.one", "/bin/sh", [fixture("servant.sh"), "marker-health"], { health: { probe: { kind: "test" } } }));
    const pid = sup.observed().pid;
    await waitForState(seen, "healthy", (o) => o.healthy === true, 2000);
    expect(probes).to.deep.equal(["health.one:test"]);
    healthy = false;
    const restarted = await waitForState(seen, "a health restart", (o) => o.state === "backoff", 3000);
    expect(restarted.lastExitReason).to.equal("health check failed 2 times in a row (HTTP 503)");
    healthy = true;
    await waitForState(seen, "active and healthy again", (o) => o.state === "active" && o.pid !== pid, 3000);
  });

  it("refuses a bad desired spec at once", () => {
    const { sup } = supervisor("bad.one");
    expect(() => sup.setDesired({ ...spec("bad.one", "/bin/true", []), state: "running" as never })).to.throw(InvalidDesiredSpecError, /state/);
    expect(() => sup.setDesired({ ...spec("bad.one", "/bin/true", []), limits: { cpuCores: -1 } })).to.throw(InvalidDesiredSpecError, /cpuCores/);
  });
});
