/**
 * A bench's scratch folder, gone when the bench is: `test-output/bench-<name>-<pid>-<time>`.
 *
 * Removed when the bench process exits, also after SIGINT, SIGTERM or SIGHUP
 * (bench/run.ts installs the test runs' reaper, test/helpers/reaper.ts, whose
 * signal handlers end what the bench started and then exit). A folder left by a
 * bench killed with SIGKILL is named like a test run's folder, so the next test
 * or bench run sweeps it with whatever still runs inside (a servant an agent
 * started there). The bench's own `finally` may remove it sooner.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO_ROOT } from "../test/helpers/paths";

export function benchScratchDir(name: string): string {
  const dir = path.join(REPO_ROOT, "test-output", `bench-${name}-${process.pid}-${Date.now().toString(36)}`);
  fs.mkdirSync(dir, { recursive: true });
  process.once("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}
