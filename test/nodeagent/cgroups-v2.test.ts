/**
 * cgroup v2 file logic against a v2-shaped directory tree in a temp dir
 * (this machine's v2 mount has no controllers). The tree holds the files a
 * real unified mount has at its root; everything else is created by the
 * backend exactly as it would write to cgroupfs.
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  CgroupV2Backend, detectCgroups, parseCgroupMounts, ProcessWrangler, resolveCgroupBackend, InvalidInstanceIdError,
} from "../../nodeagent";
import { makeTempDir, removeTempDir, waitFor, expectGone } from "./helpers/agent-test-env";

function makeV2Tree(controllers = "cpuset cpu io memory hugetlb pids rdma misc"): string {
  const mount = makeTempDir("sgrid-v2-");
  fs.writeFileSync(path.join(mount, "cgroup.controllers"), `${controllers}\n`);
  fs.writeFileSync(path.join(mount, "cgroup.subtree_control"), "");
  fs.writeFileSync(path.join(mount, "cgroup.procs"), "");
  return mount;
}

const read = (...p: string[]) => fs.readFileSync(path.join(...p), "utf8").trim();

describe("nodeagent/cgroups v2 (file logic on a v2-shaped tree)", () => {
  let mount: string;
  let backend: CgroupV2Backend;

  beforeEach(() => {
    mount = makeV2Tree();
    backend = new CgroupV2Backend({ mount, groupName: "sgrid" });
  });
  afterEach(() => removeTempDir(mount));

  it("detection picks v2 when the unified hierarchy offers memory, cpu and pids, and prepares the sgrid folder", async () => {
    const chosen = await detectCgroups({ v2Mount: mount, v1Mounts: null, groupName: "sgrid" });
    expect(chosen.name).to.equal("v2");
    expect(read(mount, "cgroup.subtree_control")).to.equal("+memory +cpu +pids");
    expect(read(mount, "sgrid", "cgroup.subtree_control")).to.equal("+memory +cpu +pids");
  });

  it("detection skips a unified hierarchy without controllers (this machine's case) and falls back to none", async () => {
    const empty = makeV2Tree("");
    try {
      const chosen = await detectCgroups({ v2Mount: empty, v1Mounts: null });
      expect(chosen.name).to.equal("none");
      expect(chosen.enforcesLimits).to.equal(false);
      expect(fs.existsSync(path.join(empty, "sgrid"))).to.equal(false);
      await expectRejects(detectCgroups({ prefer: "v2", v2Mount: empty }), /v2.*lacks controller/);
    } finally {
      removeTempDir(empty);
    }
  });

  it("initialize creates the instance group and writes memory.max, swap off, cpu.max and pids.max", async () => {
    await backend.initialize("Demo.Hello.n1", { memoryBytes: 64 * 1024 * 1024, cpuCores: 0.5, pids: 32 });
    const dir = path.join(mount, "sgrid", "Demo.Hello.n1");
    expect(read(dir, "memory.max")).to.equal(String(64 * 1024 * 1024));
    expect(read(dir, "memory.swap.max")).to.equal("0");
    expect(read(dir, "cpu.max")).to.equal("50000 100000");
    expect(read(dir, "pids.max")).to.equal("32");
    expect(backend.procsFiles("Demo.Hello.n1")).to.deep.equal([path.join(dir, "cgroup.procs")]);

    // Limits change in place; a removed limit goes back to "max".
    await backend.initialize("Demo.Hello.n1", { cpuCores: 2 });
    expect(read(dir, "memory.max")).to.equal("max");
    expect(read(dir, "cpu.max")).to.equal("200000 100000");
    expect(read(dir, "pids.max")).to.equal("max");
  });

  it("reads usage (memory without inactive file cache, cpu usage_usec in ns, pids, pids.events max, cpu.stat nr_throttled) and the oom_kill counter", async () => {
    await backend.initialize("u1", {});
    const dir = path.join(mount, "sgrid", "u1");
    fs.writeFileSync(path.join(dir, "memory.current"), "10485760\n");
    fs.writeFileSync(path.join(dir, "memory.stat"), "anon 8000000\nfile 2485760\ninactive_file 2097152\nactive_file 388608\n");
    fs.writeFileSync(path.join(dir, "cpu.stat"), "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\nnr_periods 40\nnr_throttled 9\nthrottled_usec 81000\n");
    fs.writeFileSync(path.join(dir, "pids.current"), "7\n");
    fs.writeFileSync(path.join(dir, "pids.events"), "max 5\n");
    fs.writeFileSync(path.join(dir, "memory.events"), "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\n");
    expect(await backend.usage("u1")).to.deep.equal({ memoryBytes: 10485760 - 2097152, cpuUsageNanos: 1_500_000_000, pids: 7, pidsLimitHits: 5, cpuThrottledPeriods: 9 });
    // A kernel without the counters: 0, not an error.
    fs.rmSync(path.join(dir, "pids.events"));
    fs.writeFileSync(path.join(dir, "cpu.stat"), "usage_usec 1500000\n");
    expect(await backend.usage("u1")).to.include({ pidsLimitHits: 0, cpuThrottledPeriods: 0 });
    expect(await backend.oomKills("u1")).to.equal(2);
    fs.writeFileSync(path.join(dir, "cgroup.procs"), "123\n456\n");
    expect(await backend.procs("u1")).to.deep.equal([123, 456]);
    expect(await backend.contains("u1", 456)).to.equal(true);
    expect(await backend.contains("u1", 789)).to.equal(false);
  });

  it("a real process launched through the trampoline lands in cgroup.procs before it runs, and stop+cleanup remove everything", async () => {
    const wrangler = new ProcessWrangler({ cgroups: backend });
    const log = path.join(mount, "out.log");
    // A program without children: in a plain directory tree, children do not inherit the "group".
    const handle = await wrangler.launch({ instanceId: "real.one", command: "sleep", args: ["300"], stdoutPath: log, limits: { pids: 10 } });
    // Once the program runs (the trampoline exec'd it), its pid is in the group's cgroup.procs.
    await waitFor("the trampoline to exec the program", () => fs.readFileSync(`/proc/${handle.pid}/cmdline`, "utf8").startsWith("sleep"));
    expect(read(mount, "sgrid", "real.one", "cgroup.procs")).to.equal(String(handle.pid));
    expect(await backend.contains("real.one", handle.pid)).to.equal(true);
    expect(handle.cgroup).to.equal(`v2:${path.join(mount, "sgrid", "real.one")}`);
    const info = await wrangler.stop(handle, { graceMs: 200 });
    expect(info.signal).to.equal("SIGTERM");
    expectGone(handle.pid);
    await backend.cleanup("real.one");
    expect(fs.existsSync(path.join(mount, "sgrid", "real.one"))).to.equal(false);
    await backend.cleanup("real.one"); // idempotent
  });

  it("refuses instance ids that are not a single safe path segment", async () => {
    for (const bad of ["..", "a/b", "", ".hidden", "x".repeat(200), "a b"]) {
      await expectRejects(backend.initialize(bad, {}), InvalidInstanceIdError);
    }
  });

  it("parses mountinfo: unified mount, separate and co-mounted v1 controllers, escaped paths", () => {
    const text = [
      "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755",
      "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct",
      "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory",
      "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids",
      "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd",
      "41 31 0:38 / /sys/fs/cgroup/uni\\040fied rw,relatime - cgroup2 cgroup2 rw",
    ].join("\n");
    const mounts = parseCgroupMounts(text);
    expect(mounts.map((m) => m.mountPoint)).to.deep.equal([
      "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/systemd", "/sys/fs/cgroup/uni fied",
    ]);
    expect(mounts[0]!.controllers).to.deep.equal(["cpu", "cpuacct"]);
    expect(mounts[3]!.controllers).to.deep.equal([]);
    expect(mounts[4]!.fstype).to.equal("cgroup2");
  });

  it("resolve() builds registered backends by name and passes instances through", () => {
    const none = resolveCgroupBackend("none");
    expect(none.name).to.equal("none");
    expect(resolveCgroupBackend(backend)).to.equal(backend);
    expect(() => resolveCgroupBackend("v3")).to.throw(TypeError, /v3/);
  });
});

async function expectRejects(p: Promise<unknown>, match: RegExp | (new (...a: any[]) => Error)): Promise<void> {
  try {
    await p;
  } catch (err) {
    if (match instanceof RegExp) expect((err as Error).message).to.match(match);
    else expect(err).to.be.instanceOf(match);
    return;
  }
  expect.fail("expected a rejection");
}
