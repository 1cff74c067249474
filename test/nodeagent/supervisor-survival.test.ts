/**
 * Services outlive the agent: `kill -9` of an agent process supervising
 * five servants leaves all five running; a new agent on the same state dir
 * re-adopts all five without starting a duplicate (counted in /proc), and
 * restarts one that is killed afterwards, noticing the exit within 1 s.
 * The agent runs as its own process (helpers/agent-driver.ts).
 */
import { expect } from "chai";
import { spawn, type ChildProcess } from "node:child_process";
import * as path from "node:path";
import * as readline from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import * as fs from "node:fs";
import { isPidLive, NodeSupervisor, InstanceNotFoundError, type DesiredSpec, type ObservedState } from "../../nodeagent";
import {
  fixture, killProcessesWith, liveProcessesWith, servantsWith, makeTempDir, removeTempDir, removeV1Groups, testGroupName, v1Mounts, waitFor,
} from "./helpers/agent-test-env";

interface DriverLine { type: string; observed?: ObservedState[]; [k: string]: unknown }

class Driver {
  readonly lines: DriverLine[] = [];
  readonly proc: ChildProcess;
  stderr = "";

  constructor(config: unknown) {
    this.proc = spawn(process.execPath, [path.join(__dirname, "helpers", "agent-driver.js"), JSON.stringify(config)], {
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, SGRID_LOG_LEVEL: "warn" },
    });
    readline.createInterface({ input: this.proc.stdout! }).on("line", (l) => {
      try {
        this.lines.push(JSON.parse(l) as DriverLine);
      } catch {
        // not ours
      }
    });
    this.proc.stderr!.on("data", (d: Buffer) => { this.stderr += d.toString(); });
  }

  line(type: string, timeoutMs = 10_000): Promise<DriverLine> {
    return waitFor(`driver line "${type}" (stderr: ${this.stderr.slice(-500)})`, () => this.lines.find((l) => l.type === type), timeoutMs);
  }

  states(): ObservedState[] {
    return this.lines.filter((l) => l.type === "state") as unknown as ObservedState[];
  }

  send(cmd: string): void {
    this.proc.stdin!.write(`${cmd}\n`);
  }

  async kill9(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const gone = new Promise((r) => this.proc.once("exit", r));
    this.proc.kill("SIGKILL");
    await gone;
  }
}

describe("nodeagent/supervisor survives kill -9 of the agent", function () {
  this.timeout(60_000);
  const group = testGroupName("-survive");
  const marker = `sgrid-survival-marker-${process.pid}`;
  let tmp: string;
  const drivers: Driver[] = [];

  before(function () {
    if (!v1Mounts()) this.skip();
    tmp = makeTempDir();
  });
  after(async () => {
    for (const d of drivers) await d.kill9();
    killProcessesWith(marker);
    await removeV1Groups(group);
    removeTempDir(tmp);
  });

  function desired(): Record<string, DesiredSpec> {
    const out: Record<string, DesiredSpec> = {};
    for (let i = 1; i <= 5; i++) {
      out[`Demo.Svc${i}.node1`] = {
        state: "active",
        version: "1",
        launch: { command: "/bin/sh", args: [fixture("servant.sh"), marker], stdoutPath: path.join(tmp, `svc${i}.log`) },
        limits: { memoryBytes: 64 * 1024 * 1024, pids: 32 },
      };
    }
    return out;
  }

  it("keeps five servants running, re-adopts them all without duplicates, and restarts one killed afterwards", async () => {
    const stateDir = path.join(tmp, "state");
    const first = new Driver({ stateDir, groupName: group, desired: desired() });
    drivers.push(first);
    const applied = await first.line("applied");
    const before = new Map(applied.observed!.map((o) => [o.instanceId, o.pid!]));
    expect([...before.values()].filter((p) => p !== null)).to.have.length(5);
    expect(applied.observed!.every((o) => o.state === "active")).to.equal(true);
    expect(servantsWith(marker).sort()).to.deep.equal([...before.values()].sort());

    await first.kill9();
    await sleep(300);
    for (const pid of before.values()) expect(isPidLive(pid), `servant ${pid} survived the agent`).to.equal(true);
    expect(servantsWith(marker)).to.have.length(5);

    const second = new Driver({ stateDir, groupName: group, pollIntervalMs: 200 });
    drivers.push(second);
    const started = await second.line("started");
    const after = new Map(started.observed!.map((o) => [o.instanceId, o]));
    expect(after.size).to.equal(5);
    for (const [id, pid] of before) {
      expect(after.get(id), id).to.include({ state: "active", pid, adopted: true });
    }
    await sleep(500); // give a buggy agent time to start duplicates
    expect(servantsWith(marker).sort()).to.deep.equal([...before.values()].sort());
    expect(second.states().some((s) => s.state === "activating")).to.equal(false);

    // A servant killed now is noticed (within 1 s, by polling /proc) and restarted.
    const [victimId, victimPid] = [...before.entries()][2]!;
    const from = second.lines.length;
    const killedAt = Date.now();
    process.kill(victimPid, "SIGKILL");
    const noticed = await waitFor("the exit to be noticed", () => second.lines.slice(from).find((l) => l.type === "state" && l.instanceId === victimId && l.state === "backoff"), 5000) as unknown as ObservedState;
    expect(noticed.since - killedAt).to.be.below(1000);
    expect(noticed.lastExitReason).to.equal("exited (code unknown: adopted process)");
    const back = await waitFor("the restart", () => second.lines.slice(from).find((l) => l.type === "state" && l.instanceId === victimId && l.state === "active"), 5000) as unknown as ObservedState;
    expect(back.pid).to.not.equal(victimPid);
    expect(back.restarts).to.equal(1);
    expect(servantsWith(marker)).to.have.length(5);

    // A clean stop through the agent leaves nothing behind.
    second.send("stop-all");
    await second.line("stopped", 15_000);
    await waitFor("every servant gone", () => liveProcessesWith(marker).length === 0, 5000);
  });
});

describe("nodeagent/supervisor NodeSupervisor across agent restarts (in process)", function () {
  this.timeout(30_000);
  const group = testGroupName("-node");
  const marker = `sgrid-node-marker-${process.pid}`;
  let tmp: string;
  const nodes: NodeSupervisor[] = [];

  before(function () {
    if (!v1Mounts()) this.skip();
    tmp = makeTempDir();
  });
  afterEach(async () => {
    for (const n of nodes.splice(0)) await n.shutdown();
    killProcessesWith(marker);
  });
  after(async () => {
    await removeV1Groups(group);
    removeTempDir(tmp);
  });

  async function node(stateDir: string): Promise<NodeSupervisor> {
    const n = new NodeSupervisor({
      stateDir,
      cgroups: { groupName: group, v2Mount: null },
      process: { pollIntervalMs: 100 },
      supervisor: { restart: { initialDelayMs: 30, maxDelayMs: 200, jitter: 0, maxRestarts: 2 }, stop: { graceMs: 300 } },
    });
    nodes.push(n);
    await n.start();
    return n;
  }

  function servant(id: string, extra: Partial<DesiredSpec> = {}): DesiredSpec {
    return { state: "active", version: "1", launch: { command: "/bin/sh", args: [fixture("servant.sh"), marker], stdoutPath: path.join(tmp, `${id}.log`) }, ...extra };
  }

  it("adopts a process found in the instance's cgroup when the state file lost its handle (agent died between spawn and save)", async () => {
    const stateDir = path.join(tmp, "orphan");
    const a = await node(stateDir);
    await a.setDesired("Orphan.One.n1", servant("orphan"));
    const pid = a.get("Orphan.One.n1")!.observed().pid!;
    await a.shutdown();
    const file = path.join(stateDir, "agent-state.json");
    const state = JSON.parse(fs.readFileSync(file, "utf8"));
    delete state.instances["Orphan.One.n1"].handle;
    fs.writeFileSync(file, JSON.stringify(state));

    const b = await node(stateDir);
    expect(b.get("Orphan.One.n1")!.observed()).to.include({ state: "active", pid, adopted: true });
    expect(servantsWith(marker)).to.deep.equal([pid]);
  });

  it("restarts a servant that died while no agent was running, saying so", async () => {
    const stateDir = path.join(tmp, "died");
    const a = await node(stateDir);
    await a.setDesired("Died.One.n1", servant("died"));
    const pid = a.get("Died.One.n1")!.observed().pid!;
    await a.shutdown();
    process.kill(pid, "SIGKILL");
    await waitFor("the servant to die", () => !isPidLive(pid));

    const b = await node(stateDir);
    const sup = b.get("Died.One.n1")!;
    await waitFor("restarted", () => sup.observed().state === "active" && sup.observed().pid !== pid, 3000);
    expect(sup.observed()).to.include({ restarts: 1, lastExitReason: "exited while the agent was not running" });
    expect(servantsWith(marker)).to.have.length(1);
  });

  it("keeps a FAILED instance failed across an agent restart, and apply() removes instances no longer desired", async () => {
    const stateDir = path.join(tmp, "failed");
    const a = await node(stateDir);
    const crash: DesiredSpec = { state: "active", version: "1", launch: { command: "/bin/sh", args: [fixture("crash.sh")], stdoutPath: path.join(tmp, "crash.log") } };
    await a.apply({ "Crash.One.n1": crash, "Keep.One.n1": servant("keep") });
    await waitFor("FAILED", () => a.get("Crash.One.n1")!.observed().state === "failed", 5000);
    await a.shutdown();

    const b = await node(stateDir);
    const failed = b.get("Crash.One.n1")!.observed();
    expect(failed.state).to.equal("failed");
    expect(failed.failedReason).to.match(/^crash loop: 2 restarts within 600 s; last: exited with code 3$/);
    const keepPid = b.get("Keep.One.n1")!.observed().pid!;

    await b.apply({ "Crash.One.n1": crash });
    expect(b.get("Keep.One.n1")).to.equal(undefined);
    expect(isPidLive(keepPid)).to.equal(false);
    expect(Object.keys(JSON.parse(fs.readFileSync(path.join(stateDir, "agent-state.json"), "utf8")).instances)).to.deep.equal(["Crash.One.n1"]);
    await expectRejected(b.restart("No.Such.n1"), InstanceNotFoundError);
  });
});

async function expectRejected(p: Promise<unknown>, cls: new (...a: any[]) => Error): Promise<void> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(cls);
    return;
  }
  expect.fail("expected a rejection");
}
