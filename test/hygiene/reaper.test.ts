/**
 * A test run that is interrupted or killed leaves nothing running: what it
 * started (detached servants in its folders, children with its mark, its
 * cgroups) is ended when it gets SIGINT/SIGTERM, and, after a SIGKILL, by
 * the next run's sweep (test/helpers/reaper.ts).
 */
import { expect } from "chai";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO_ROOT, outputDir } from "../helpers/paths";
import { reapDeadRuns } from "../helpers/reaper";
import { pidAlive } from "../helpers/pid";
import { pollUntil } from "../helpers/wait";


/** Runs the leaver fixture in a child mocha and resolves with the pids it left, once they run. */
async function startLeaver(): Promise<{ child: ReturnType<typeof spawn>; pids: Record<string, number>; exited: Promise<unknown> }> {
  const file = path.join(outputDir("reaper"), "pids.json");
  const mocha = path.join(REPO_ROOT, "node_modules/mocha/bin/mocha.js");
  const child = spawn(process.execPath, [mocha, path.join(REPO_ROOT, "dist/test/hygiene/leaver.fixture.js")], {
    cwd: REPO_ROOT, env: { ...process.env, SGRID_TEST_RUN: "", LEAVER_PIDS: file }, stdio: "ignore",
  });
  const exited = new Promise((r) => child.on("exit", r));
  const pids = await pollUntil("the leaver's pids", () => (fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, number> : undefined), { timeoutMs: 20_000, everyMs: 50 });
  return { child, pids, exited };
}

describe("test hygiene: a killed run leaves nothing running @slow", function () {
  this.timeout(60_000);

  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    it(`on ${signal}, the run ends the processes and cgroups it started`, async () => {
      const { child, pids, exited } = await startLeaver();
      const left = Object.entries(pids).filter(([k]) => k !== "mocha");
      for (const [what, pid] of left) expect(pidAlive(pid), what).to.equal(true);
      child.kill(signal);
      await exited;
      for (const [what, pid] of left) await pollUntil(`${what} (${pid}) gone`, () => !pidAlive(pid), { timeoutMs: 5000, everyMs: 20 });
      expect(fs.existsSync(`/sys/fs/cgroup/memory/sgrid-test-${pids.mocha}-leaver`), "its cgroup").to.equal(false);
    });
  }

  it("after SIGKILL, the next run's sweep ends what the dead run left", async () => {
    const { child, pids, exited } = await startLeaver();
    child.kill("SIGKILL");
    await exited;
    const left = Object.entries(pids).filter(([k]) => k !== "mocha");
    for (const [what, pid] of left) expect(pidAlive(pid), `${what} survives SIGKILL of its run`).to.equal(true);
    reapDeadRuns();
    for (const [what, pid] of left) await pollUntil(`${what} (${pid}) gone`, () => !pidAlive(pid), { timeoutMs: 5000, everyMs: 20 });
    await pollUntil("the dead run's cgroup removed", () => {
      reapDeadRuns();
      return !fs.existsSync(`/sys/fs/cgroup/memory/sgrid-test-${pids.mocha}-leaver`);
    }, { timeoutMs: 5000, everyMs: 100 });
  });
});
