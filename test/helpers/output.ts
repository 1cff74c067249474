/**
 * Run folders (helpers/paths.ts outputDir) live as long as they can help
 * someone debug: a folder is removed once what made it has passed, and kept,
 * with its path added to the failure's message, when that failed.
 *
 * What made a folder is what mocha was running when outputDir was called:
 * - a test, or a beforeEach / afterEach hook for it: the folder is the
 *   test's, removed when the test's suite ends unless the test or one of
 *   those hooks failed;
 * - a before / after hook: the folder is the hook's suite's, removed when
 *   the suite ends unless something in it (a test, a hook, a nested suite)
 *   failed after the folder was made;
 * - nothing (a describe body or a module being loaded; a bench or a script,
 *   which have no mocha runner), or outputDir was told the folder is shared
 *   by later tests: the process's, removed when the process exits with code
 *   0, unless something failed after it was made (a bench says so with
 *   keepPendingOutput).
 * Kept folders, and those of a killed run, stay until the next run's sweep
 * (helpers/reaper.ts), which removes the folders of runs whose process is
 * gone.
 * SGRID_TEST_KEEP_OUTPUT=1 keeps every folder, and the sweep leaves them too.
 *
 * Mocha gives a module loaded with --require no handle on the runner (root
 * hooks see tests, but neither the hooks of suites nor their failures), so
 * {@link watchMochaRuns} wraps Runner#run to listen to each run's events.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type Mocha from "mocha";

interface Folder {
  dir: string;
  /** The test or suite that made it; neither: the process. */
  test?: Mocha.Test;
  suite?: Mocha.Suite;
  /** Set by a failure that concerns it: the folder then stays. */
  kept: boolean;
}

const folders: Folder[] = [];
let runner: Mocha.Runner | undefined;
let exitHandler = false;

/** SGRID_TEST_KEEP_OUTPUT=1: no run folder is removed, neither by its run nor by a later run's sweep. */
export function keepOutput(): boolean {
  return process.env.SGRID_TEST_KEEP_OUTPUT === "1";
}

/** Removes a run folder, also what an agent made read-only in it (nodeagent/install/tree.ts). Never throws. */
export function removeOutputFolder(dir: string): void {
  try {
    fs.rmSync(dir, { recursive: true, force: true });
    return;
  } catch {
    // a read-only release directory, without root: given write permission back below
  }
  spawnSync("chmod", ["-R", "u+w", dir], { stdio: "ignore" });
  try {
    fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  } catch {
    // still busy: the next run's sweep removes it
  }
}

/** The path to show a person: relative to the working directory (the repository root under mocha). */
function shown(dir: string): string {
  const rel = path.relative(process.cwd(), dir);
  return rel.startsWith("..") ? dir : rel;
}

const EACH_HOOK = /^"(?:before|after) each" hook/;

/** "test" or "hook" (Runnable#type, which mocha's typings leave out). */
function kind(r: Mocha.Runnable): string | undefined {
  return (r as { type?: string }).type;
}

/** Registers a folder just made by outputDir, owned by what mocha is running now or by the process (see the file comment). */
export function trackOutput(dir: string, owner: "current" | "process"): void {
  const r = owner === "current" ? runner?.currentRunnable : undefined;
  const folder: Folder = { dir, kept: false };
  if (r && kind(r) === "test") folder.test = r as Mocha.Test;
  else if (r) {
    const hook = r as Mocha.Hook;
    // Mocha names hooks '"before each" hook: <name>' and so on; an each hook runs for ctx.currentTest.
    if (EACH_HOOK.test(hook.originalTitle ?? hook.title) && hook.ctx?.currentTest) folder.test = hook.ctx.currentTest;
    else folder.suite = hook.parent;
  }
  folders.push(folder);
  if (!exitHandler) {
    exitHandler = true;
    process.on("exit", (code) => {
      // What is left: the process's folders, or those of an interrupted run (kept: exit code 130...).
      if (code === 0) decide((f) => !f.kept);
      const left = folders.splice(0).map((f) => shown(f.dir));
      if (left.length > 0) process.stderr.write(`test output kept (exit ${code}): ${left.join(", ")}\n`);
    });
  }
}

/** Keeps every folder made so far, e.g. when a bench fails (its process still exits 0). */
export function keepPendingOutput(): void {
  for (const f of folders) f.kept = true;
}

/** True if the failure of `r` concerns folder `f`. */
function concerns(f: Folder, r: Mocha.Runnable): boolean {
  if (f.test) return r === f.test || (kind(r) === "hook" && EACH_HOOK.test((r as Mocha.Hook).originalTitle ?? r.title) && r.ctx?.currentTest === f.test);
  if (f.suite) {
    for (let s = r.parent; s; s = s.parent) if (s === f.suite) return true;
    return false;
  }
  return true;
}

/** Removes the folders `which` selects that no failure kept, and forgets all the folders it selects. */
function decide(which: (f: Folder) => boolean): void {
  for (let i = folders.length - 1; i >= 0; i--) {
    const f = folders[i]!;
    if (!which(f)) continue;
    folders.splice(i, 1);
    if (!f.kept && !keepOutput()) removeOutputFolder(f.dir);
  }
}

/** Adds the kept folders to the failure's message (and its stack, which reporters print after the message). */
function tell(err: unknown, dirs: string[]): void {
  if (typeof err !== "object" || err === null) return;
  const e = err as { message?: unknown; stack?: unknown };
  if (typeof e.message !== "string") return;
  const before = e.message;
  const after = `${before}\n  test output kept: ${dirs.join(", ")}`;
  try {
    e.message = after;
    if (typeof e.stack === "string") e.stack = e.stack.replace(before, () => after);
  } catch {
    // a frozen error: the folders are still kept
  }
}

function watch(r: Mocha.Runner): void {
  runner = r;
  r.on("fail", (runnable: Mocha.Runnable, err: unknown) => {
    const mine = folders.filter((f) => concerns(f, runnable));
    for (const f of mine) f.kept = true;
    if (mine.length > 0) tell(err, mine.map((f) => shown(f.dir)));
  });
  r.on("suite end", (suite: Mocha.Suite) => decide((f) => f.suite === suite || f.test?.parent === suite));
  // The process's folders wait for its exit: a parallel worker runs the next file with the same process.
  r.on("end", () => decide((f) => f.test !== undefined || f.suite !== undefined));
}

/** Makes every mocha run in this process decide its run folders (see the file comment). Call once, from test/setup.ts. */
export function watchMochaRuns(): void {
  // Required here, not imported: benches use outputDir too, and have no mocha to load.
  const { Runner } = require("mocha") as typeof Mocha;
  const run = Runner.prototype.run;
  Runner.prototype.run = function (this: Mocha.Runner, ...args: Parameters<typeof run>) {
    watch(this);
    return run.apply(this, args);
  };
}
