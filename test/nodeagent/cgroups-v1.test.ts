/**
 * cgroup v1 for real (this machine's memory, cpu, cpuacct and pids
 * hierarchies are writable), and the `none` backend. Groups live under a
 * per-run folder (sgrid-test-<pid>) and are removed in after hooks.
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as path from "node:path";
import { CgroupV1Backend, NoCgroupBackend, detectCgroups, ProcessWrangler, type CgroupBackend } from "../../nodeagent";
import { USAGE_SCAN_MS } from "../../nodeagent/cgroups/none";
import {
  expectGone, fixture, makeTempDir, removeTempDir, removeV1Groups, testGroupName, v1Mounts, waitFor,
} from "./helpers/agent-test-env";

const read = (...p: string[]) => fs.readFileSync(path.join(...p), "utf8").trim();

describe("nodeagent/cgroups v1 (real cgroupfs)", function () {
  const group = testGroupName("-v1");
  let backend: CgroupBackend;
  let tmp: string;

  before(async function () {
    if (!v1Mounts()) this.skip();
    backend = await detectCgroups({ groupName: group, v2Mount: null });
    tmp = makeTempDir();
  });
  after(async () => {
    await removeV1Groups(group);
    removeTempDir(tmp);
  });

  it("detection picks v1 on this host (the unified mount has no controllers) and creates the sgrid folder outside the agent's group", async () => {
    const detected = await detectCgroups({ groupName: group });
    expect(detected.name).to.equal("v1");
    const m = v1Mounts()!;
    for (const mount of [m.memory, m.cpu, m.pids]) expect(fs.existsSync(path.join(mount, group))).to.equal(true);
    // Our own memory group is wherever the test runner lives; the sgrid folder is a top-level sibling.
    const own = fs.readFileSync("/proc/self/cgroup", "utf8").split("\n").find((l) => /:memory:/.test(l))!.split(":")[2]!;
    expect(own.startsWith(`/${group}`)).to.equal(false);
  });

  it("initialize writes the memory (with memsw), cfs quota and pids limits, and changes them in place", async () => {
    const m = v1Mounts()!;
    await backend.initialize("lim.one", { memoryBytes: 96 * 1024 * 1024, cpuCores: 0.25, pids: 12 });
    const mem = path.join(m.memory, group, "lim.one");
    expect(Number(read(mem, "memory.limit_in_bytes"))).to.equal(96 * 1024 * 1024);
    if (fs.existsSync(path.join(mem, "memory.memsw.limit_in_bytes"))) expect(Number(read(mem, "memory.memsw.limit_in_bytes"))).to.equal(96 * 1024 * 1024);
    expect(read(m.cpu, group, "lim.one", "cpu.cfs_period_us")).to.equal("100000");
    expect(read(m.cpu, group, "lim.one", "cpu.cfs_quota_us")).to.equal("25000");
    expect(read(m.pids, group, "lim.one", "pids.max")).to.equal("12");

    await backend.initialize("lim.one", { memoryBytes: 32 * 1024 * 1024 });
    expect(Number(read(mem, "memory.limit_in_bytes"))).to.equal(32 * 1024 * 1024);
    expect(read(m.cpu, group, "lim.one", "cpu.cfs_quota_us")).to.equal("-1");
    expect(read(m.pids, group, "lim.one", "pids.max")).to.equal("max");

    await backend.cleanup("lim.one");
    for (const mount of [m.memory, m.cpu, m.pids]) expect(fs.existsSync(path.join(mount, group, "lim.one"))).to.equal(false);
    await backend.cleanup("lim.one"); // idempotent
  });

  it("a launched program is in every hierarchy's group from its first instruction, with args and env verbatim and stdin closed", async () => {
    const wrangler = new ProcessWrangler({ cgroups: backend });
    const log = path.join(tmp, "show-env.log");
    const tricky = ["two words", "$HOME", "`id`", "; rm -rf /", "*"];
    const handle = await wrangler.launch({
      instanceId: "env.one", command: "/bin/sh", args: [fixture("show-env.sh"), ...tricky],
      env: { GREETING: "hello world" }, stdoutPath: log, limits: { pids: 16 },
    });
    try {
      await waitFor("show-env output", () => fs.existsSync(log) && read(log).includes("stdin:eof"));
      const text = read(log);
      // The very first thing the program printed: its own cgroups, already ours.
      for (const c of ["memory", "cpu", "pids"]) expect(text).to.include(`:${c}:/${group}/env.one`);
      for (const a of tricky) expect(text).to.include(`arg:${a}`);
      expect(text).to.include("env:GREETING=hello world");
      expect(text).to.include("env:SGRID_TOKEN=unset"); // nothing of the agent's environment leaks in
      expect(await backend.contains("env.one", handle.pid)).to.equal(true);
      expect((await backend.usage("env.one")).pids).to.be.greaterThan(0);
    } finally {
      await wrangler.stop(handle, { graceMs: 200 });
      await backend.cleanup("env.one");
    }
  });
});

describe("nodeagent/cgroups none (no cgroupfs)", () => {
  let tmp: string;
  before(() => { tmp = makeTempDir(); });
  after(() => removeTempDir(tmp));

  it("runs a servant without limits, finds its session's processes, and stop kills children too", async () => {
    const none = new NoCgroupBackend();
    expect(none.enforcesLimits).to.equal(false);
    const wrangler = new ProcessWrangler({ cgroups: none });
    const log = path.join(tmp, "family.log");
    const handle = await wrangler.launch({ instanceId: "none.one", command: "/bin/sh", args: [fixture("stubborn.sh")], stdoutPath: log, limits: { memoryBytes: 1 << 20 } });
    await waitFor("stubborn ready", () => fs.existsSync(log) && read(log).includes("ready"));
    const pids = await none.procs("none.one");
    expect(pids).to.include(handle.pid);
    const usage = await none.usage("none.one");
    expect(usage.memoryBytes).to.be.greaterThan(0);
    expect(usage.pids).to.equal(pids.length);
    expect(await none.oomKills("none.one")).to.equal(0);
    const info = await wrangler.stop(handle, { graceMs: 200 });
    expect(info.signal).to.equal("SIGKILL"); // it ignored SIGTERM
    for (const pid of pids) expectGone(pid);
    expect(await none.procs("none.one")).to.deep.equal([]);
    await none.cleanup("none.one");
  });

  it("reports each instance's own session in one heartbeat's usage calls, and a stopped one as empty on the next", async () => {
    const none = new NoCgroupBackend();
    const wrangler = new ProcessWrangler({ cgroups: none });
    const logs = ["a", "b"].map((n) => path.join(tmp, `usage-${n}.log`));
    const [a, b] = await Promise.all(["none.a", "none.b"].map((id, i) =>
      wrangler.launch({ instanceId: id, command: "/bin/sh", args: [fixture("stubborn.sh")], stdoutPath: logs[i]! })));
    await waitFor("both ready", () => logs.every((l) => fs.existsSync(l) && read(l).includes("ready")));
    const [pa, pb] = [await none.procs("none.a"), await none.procs("none.b")];
    expect(pa.filter((p) => pb.includes(p))).to.deep.equal([]);
    // One heartbeat: the usage of every instance, one after the other.
    const [ua, ub] = [await none.usage("none.a"), await none.usage("none.b")];
    expect(ua.pids).to.equal(pa.length);
    expect(ub.pids).to.equal(pb.length);
    expect(ua.memoryBytes).to.be.greaterThan(0);
    await wrangler.stop(a!, { graceMs: 200 });
    await new Promise((r) => setTimeout(r, USAGE_SCAN_MS));
    expect((await none.usage("none.a")).pids, "the stopped instance, at the next heartbeat").to.equal(0);
    expect((await none.usage("none.b")).pids).to.equal(pb.length);
    await wrangler.stop(b!, { graceMs: 200 });
    await none.cleanup("none.a");
    await none.cleanup("none.b");
  });

  it("explicit prefer: none yields the none backend without probing", async () => {
    expect((await detectCgroups({ prefer: "none" })).name).to.equal("none");
    expect(new CgroupV1Backend({ mounts: { memory: "/m", cpu: "/c", pids: "/p" } }).name).to.equal("v1");
  });
});
