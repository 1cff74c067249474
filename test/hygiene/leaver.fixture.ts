/**
 * Not a test of its own: a mocha file that test/hygiene/reaper.test.ts runs
 * in a child mocha. It leaves behind what real tests start (a detached
 * process with a clean environment in a run folder, as a servant; a detached
 * child that inherited the environment, as an agent; a process in a test
 * cgroup), writes their pids to $LEAVER_PIDS, then waits to be killed.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { outputDir } from "../helpers/paths";

describe("leaver (fixture)", function () {
  this.timeout(0);
  it("starts processes and waits to be killed", async () => {
    const dir = outputDir("leaver");
    const servantLike = spawn("sleep", ["300"], { cwd: dir, env: { PATH: process.env.PATH ?? "/usr/bin:/bin" }, detached: true, stdio: "ignore" });
    const agentLike = spawn("sleep", ["300"], { detached: true, stdio: "ignore" });
    const pids: Record<string, number> = { servantLike: servantLike.pid!, agentLike: agentLike.pid! };
    const memory = "/sys/fs/cgroup/memory";
    if (process.getuid?.() === 0 && fs.existsSync(path.join(memory, "cgroup.procs"))) {
      const group = path.join(memory, `sgrid-test-${process.pid}-leaver`, "instance");
      fs.mkdirSync(group, { recursive: true });
      const inGroup = spawn("sleep", ["300"], { env: { PATH: process.env.PATH ?? "/usr/bin:/bin" }, detached: true, stdio: "ignore" });
      fs.writeFileSync(path.join(group, "cgroup.procs"), String(inGroup.pid));
      pids.inCgroup = inGroup.pid!;
    }
    for (const c of [servantLike, agentLike]) c.unref();
    fs.writeFileSync(process.env.LEAVER_PIDS!, JSON.stringify({ mocha: process.pid, ...pids }));
    await new Promise(() => undefined);
  });
});
