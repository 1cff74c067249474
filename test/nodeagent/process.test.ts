/**
 * The process wrangler with real processes in real v1 cgroups: launch,
 * identity and adoption, exit reasons, graceful stop that leaves nothing in
 * the group, run-as, and the trampoline's refusal to run a program outside
 * its group. Plus /proc parsing and the systemd unit.
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  ProcessWrangler, NoCgroupBackend, detectCgroups, readProcStat, printSystemdUnit,
  InvalidLaunchSpecError, LaunchError, type CgroupBackend, type ProcessHandle,
} from "../../nodeagent";
import { parseProcStat, ENTER_CGROUP_FAILED } from "../../nodeagent/process";
import {
  expectGone, fixture, makeTempDir, removeTempDir, removeV1Groups, testGroupName, v1Mounts, waitFor,
} from "./helpers/agent-test-env";

const read = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "");

describe("nodeagent/process wrangler (real processes, v1 cgroups)", function () {
  const group = testGroupName("-proc");
  let cgroups: CgroupBackend;
  let wrangler: ProcessWrangler;
  let tmp: string;
  const started: ProcessHandle[] = [];

  before(async function () {
    if (!v1Mounts()) this.skip();
    cgroups = await detectCgroups({ groupName: group, v2Mount: null });
    wrangler = new ProcessWrangler({ cgroups, pollIntervalMs: 100 });
    tmp = makeTempDir();
  });
  afterEach(async () => {
    for (const h of started.splice(0)) if (wrangler.isRunning(h)) await wrangler.stop(h, { graceMs: 100 });
  });
  after(async () => {
    wrangler?.close();
    await removeV1Groups(group);
    removeTempDir(tmp);
  });

  async function launch(id: string, args: string[], extra: Partial<Parameters<ProcessWrangler["launch"]>[0]> = {}): Promise<ProcessHandle> {
    const h = await wrangler.launch({ instanceId: id, command: "/bin/sh", args, stdoutPath: path.join(tmp, `${id}.log`), ...extra });
    started.push(h);
    return h;
  }

  it("returns a handle naming the process for ever: pid, start time from /proc/<pid>/stat, boot id, cgroup", async () => {
    const h = await launch("id.one", [fixture("servant.sh"), "marker-id-one"]);
    expect(h.startTime).to.equal(readProcStat(h.pid)!.startTime);
    expect(h.bootId).to.equal(fs.readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim());
    expect(h.cgroup).to.match(new RegExp(`^v1:.*/${group}/id\\.one$`));
    const stat = readProcStat(h.pid)!;
    expect(stat.session).to.equal(h.pid); // its own session (setsid)
    expect(stat.ppid).to.equal(process.pid);
  });

  it("appends stdout and stderr to the log files across launches (O_APPEND, never pipes)", async () => {
    const out = path.join(tmp, "append.out");
    const err = path.join(tmp, "append.err");
    for (const word of ["first", "second"]) {
      const h = await wrangler.launch({ instanceId: "append.one", command: "/bin/sh", args: ["-c", `echo ${word}; echo ${word}-err >&2`], stdoutPath: out, stderrPath: err });
      const info = await wrangler.wait(h);
      expect(info.reason).to.equal("exited with code 0");
    }
    expect(read(out)).to.equal("first\nsecond\n");
    expect(read(err)).to.equal("first-err\nsecond-err\n");
  });

  it("reports exit reasons: exit code, killing signal", async () => {
    const crash = await launch("reason.crash", [fixture("crash.sh")]);
    expect((await wrangler.wait(crash)).reason).to.equal("exited with code 3");
    const h = await launch("reason.kill", [fixture("servant.sh"), "marker-reason"]);
    process.kill(h.pid, "SIGKILL");
    const info = await wrangler.wait(h);
    expect(info).to.include({ code: null, signal: "SIGKILL", oomKilled: false, codeUnknown: false, reason: "killed by SIGKILL" });
  });

  it("adopts only the same process: same start time, same boot, still in the instance's group", async () => {
    const h = await launch("adopt.one", [fixture("servant.sh"), "marker-adopt"]);
    const other = new ProcessWrangler({ cgroups, pollIntervalMs: 100 });
    try {
      expect(await other.adopt({ ...h, startTime: h.startTime + 1 })).to.equal(false);
      expect(await other.adopt({ ...h, bootId: "00000000-0000-0000-0000-000000000000" })).to.equal(false);
      expect(await other.adopt({ ...h, instanceId: "adopt.elsewhere" })).to.equal(false);
      expect(await other.adopt({ ...h, pid: process.pid, startTime: readProcStat(process.pid)!.startTime })).to.equal(false);
      expect(await other.adopt(h)).to.equal(true);

      // An adopted process is not our child: its exit is noticed by polling /proc, within 1 s.
      const exited = other.wait(h);
      const killedAt = Date.now();
      process.kill(h.pid, "SIGKILL");
      const info = await exited;
      expect(info.codeUnknown).to.equal(true);
      expect(info.reason).to.equal("exited (code unknown: adopted process)");
      expect(info.at - killedAt).to.be.below(1000);
    } finally {
      other.close();
    }
  });

  it("finds the session leader of an unrecorded process in the group", async () => {
    const h = await launch("leader.one", [fixture("family.sh")]);
    await waitFor("family ready", () => read(path.join(tmp, "leader.one.log")).includes("ready"));
    const found = await wrangler.findLeader("leader.one");
    expect(found?.pid).to.equal(h.pid); // the setsid'd grandchild is younger and loses
    expect(found?.startTime).to.equal(h.startTime);
    expect(await wrangler.findLeader("leader.none")).to.equal(undefined);
  });

  it("stop kills grandchildren too, including one in its own session: nothing is left in the cgroup", async () => {
    const h = await launch("stop.family", [fixture("family.sh")]);
    await waitFor("family ready", () => read(path.join(tmp, "stop.family.log")).includes("ready"));
    // Wait for all five, one of them out of the session (only the cgroup still holds it).
    const pids = await waitFor("5 processes in the group, one in another session", async () => {
      const p = await cgroups.procs("stop.family");
      const sessions = new Set(p.map((pid) => readProcStat(pid)?.session));
      return p.length >= 5 && sessions.size > 1 ? p : undefined;
    });
    const info = await wrangler.stop(h, { graceMs: 300 });
    expect(info.reason).to.equal("killed by SIGTERM");
    expect(await cgroups.procs("stop.family")).to.deep.equal([]);
    for (const pid of pids) expectGone(pid);
  });

  it("stop escalates to SIGKILL after the grace period when SIGTERM is ignored", async () => {
    const h = await launch("stop.stubborn", [fixture("stubborn.sh")]);
    await waitFor("stubborn ready", () => read(path.join(tmp, "stop.stubborn.log")).includes("ready"));
    const info = await wrangler.stop(h, { graceMs: 300 });
    expect(info.signal).to.equal("SIGKILL");
    expect(await cgroups.procs("stop.stubborn")).to.deep.equal([]);
  });

  it("runs as another user after entering the cgroup as root (setpriv)", async function () {
    if (!fs.existsSync("/usr/bin/setpriv") && !fs.existsSync("/bin/setpriv")) this.skip();
    const h = await launch("runas.one", ["-c", "id -u; id -g; cat /proc/self/cgroup"], { uid: 65534, gid: 65534 });
    const info = await wrangler.wait(h);
    expect(info.reason).to.equal("exited with code 0");
    const lines = read(path.join(tmp, "runas.one.log")).split("\n");
    expect(lines.slice(0, 2)).to.deep.equal(["65534", "65534"]);
    expect(lines.join("\n")).to.include(`:memory:/${group}/runas.one`);
  });

  it("never runs the program when the cgroup cannot be entered (trampoline exits 125)", async () => {
    class Unwritable extends NoCgroupBackend {
      override procsFiles(): string[] {
        return [path.join(tmp, "no-such-dir", "cgroup.procs")];
      }
    }
    const w = new ProcessWrangler({ cgroups: new Unwritable() });
    const log = path.join(tmp, "unwritable.log");
    const h = await w.launch({ instanceId: "unwritable.one", command: "/bin/sh", args: ["-c", "echo PROGRAM-RAN"], stdoutPath: log });
    const info = await w.wait(h);
    expect(info.code).to.equal(ENTER_CGROUP_FAILED);
    expect(read(log)).to.include("sgrid: cannot enter cgroup");
    expect(read(log)).to.not.include("PROGRAM-RAN");
  });

  it("refuses bad launch specs with a clear error, and a missing working directory", async () => {
    const base = { instanceId: "bad.one", command: "/bin/true", stdoutPath: path.join(tmp, "bad.log") };
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ stdoutPath: "relative.log" }, /stdoutPath.*absolute/],
      [{ args: ["ok", "nul\0byte"] }, /args.*NUL/],
      [{ env: { "BAD-NAME": "x" } }, /env/],
      [{ uid: 1000 }, /uid and gid/],
      [{ instanceId: "../escape" }, /instanceId/],
      [{ command: "" }, /command/],
    ];
    for (const [patch, re] of cases) {
      try {
        await wrangler.launch({ ...base, ...patch } as never);
        expect.fail(`accepted ${JSON.stringify(patch)}`);
      } catch (err) {
        expect(err, JSON.stringify(patch)).to.be.instanceOf(InvalidLaunchSpecError);
        expect((err as Error).message).to.match(re);
      }
    }
    try {
      await wrangler.launch({ ...base, cwd: path.join(tmp, "missing") });
      expect.fail("accepted a missing cwd");
    } catch (err) {
      expect(err).to.be.instanceOf(LaunchError);
      expect((err as Error).message).to.include("does not exist");
    }
  });
});

describe("nodeagent/process helpers", () => {
  it("parses /proc/<pid>/stat even when the command name holds spaces and parentheses", () => {
    const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
    fields[0] = "S";
    fields[1] = "1"; // ppid
    fields[3] = "4242"; // session
    fields[19] = "987654"; // start time (field 22)
    const stat = parseProcStat(`4242 (my (evil) prog) ${fields.join(" ")}`)!;
    expect(stat).to.include({ pid: 4242, comm: "my (evil) prog", state: "S", ppid: 1, session: 4242, startTime: 987654 });
    expect(parseProcStat("garbage")).to.equal(null);
    expect(readProcStat(process.pid)!.pid).to.equal(process.pid);
    expect(readProcStat(2 ** 22 + 12345)).to.equal(null);
  });

  it("prints a systemd unit whose stop leaves servants running (KillMode=process, no Delegate)", () => {
    const unit = printSystemdUnit({ execPath: "/opt/sgrid/bin/sgrid", args: ["--registry", "reg.example:9000", "--name", "node 1"] });
    expect(unit).to.match(/^KillMode=process$/m);
    expect(unit).to.not.match(/^Delegate=/m);
    expect(unit).to.include("ExecStart=/opt/sgrid/bin/sgrid node --data-dir /var/lib/sgrid --registry reg.example:9000 --name \"node 1\"");
    expect(unit).to.match(/^EnvironmentFile=-\/etc\/sgrid\/node\.env$/m);
    expect(unit).to.match(/^Restart=always$/m);
    expect(unit).to.include("[Install]");
    expect(() => printSystemdUnit({ args: ["a\nExecStartPre=/bin/evil"] })).to.throw(TypeError);
    expect(() => printSystemdUnit({ execPath: "sgrid" })).to.throw(TypeError);
    expect(printSystemdUnit({ args: ["--x", "50%$HOME"] })).to.include("--x \"50%%$$HOME\"");
  });
});
