/**
 * Nothing a test run starts outlives it, even when mocha is killed.
 *
 * A run is one mocha process; everything it leaves is recognisable by that
 * process's pid:
 * - processes with `SGRID_TEST_RUN=<pid>` in their environment (test/setup.ts
 *   sets it, so every registry, agent, CLI and child the run spawns inherits it);
 * - processes whose working directory is a run folder (`test-output/<name>-<pid>-...`,
 *   see helpers/paths.ts outputDir): servants started by agents, which get a
 *   clean environment, run in their release folder there;
 * - cgroup folders `sgrid-test-<pid>...`, `sgrid-e2e-<pid>-...` and `sgrid-bench-<pid>...` in every
 *   mounted hierarchy (v1 controllers or the v2 root), with what runs inside;
 * - network namespaces `sge2e-<pid>-<i>` (helpers/netns.ts) and what runs inside.
 *
 * {@link reapRun} kills and removes all of it for one pid, synchronously (so
 * it can run from an `exit` handler); {@link reapDeadRuns} does it for every
 * run whose mocha process is gone (a run killed with SIGKILL is cleaned by
 * the next run), and also removes those runs' folders: the run itself
 * removes a folder once its test passed and keeps the ones of failed or
 * interrupted tests for people to look at (helpers/output.ts), until the
 * next run. Neither ever throws.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { keepOutput, removeOutputFolder } from "./output";
import { REPO_ROOT } from "./paths";
import { pidAlive } from "./pid";

const RUN_ENV = "SGRID_TEST_RUN";
const CGROUP_BASE = "/sys/fs/cgroup";
const CGROUP_NAME = /^sgrid-(?:test|e2e|bench)-(\d+)(?:\b|-|$)/;
const NETNS_NAME = /^sge2e-(\d+)-\d+$/;
const OUTPUT_NAME = /^.+-(\d+)-[0-9a-z]+$/;


function kill(pid: number): void {
  if (pid === process.pid || pid <= 1) return;
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // gone already
  }
}

/** Every other process's pid, with the run it belongs to (by environment) and its working directory. */
function processes(): Array<{ pid: number; run?: number; cwd?: string }> {
  const out: Array<{ pid: number; run?: number; cwd?: string }> = [];
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    let run: number | undefined;
    let cwd: string | undefined;
    try {
      const env = fs.readFileSync(`/proc/${pid}/environ`, "utf8");
      const m = new RegExp(`(?:^|\\0)${RUN_ENV}=(\\d+)(?:\\0|$)`).exec(env);
      if (m) run = Number(m[1]);
    } catch {
      // not ours to read, or gone
    }
    try {
      cwd = fs.readlinkSync(`/proc/${pid}/cwd`);
    } catch {
      // idem
    }
    out.push({ pid, run, cwd });
  }
  return out;
}

/** The run folders of `pid` under test-output/. */
function runFolders(pid: number): string[] {
  const base = path.join(REPO_ROOT, "test-output");
  let names: string[];
  try {
    names = fs.readdirSync(base);
  } catch {
    return [];
  }
  return names.filter((n) => OUTPUT_NAME.exec(n)?.[1] === String(pid)).map((n) => path.join(base, n));
}

function cgroupRoots(): string[] {
  if (fs.existsSync(path.join(CGROUP_BASE, "cgroup.controllers"))) return [CGROUP_BASE];
  try {
    return fs.readdirSync(CGROUP_BASE).map((d) => path.join(CGROUP_BASE, d)).filter((d) => fs.existsSync(path.join(d, "cgroup.procs")));
  } catch {
    return [];
  }
}

/** Kills what runs in `dir` and below, then removes the folders, deepest first. */
function removeCgroupTree(dir: string): void {
  let subs: string[] = [];
  try {
    subs = fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => path.join(dir, e.name));
  } catch {
    return;
  }
  for (const sub of subs) removeCgroupTree(sub);
  try {
    for (const pid of fs.readFileSync(path.join(dir, "cgroup.procs"), "utf8").split("\n").filter(Boolean)) kill(Number(pid));
  } catch {
    // no procs file
  }
  try {
    fs.rmdirSync(dir);
  } catch {
    // still busy (a process dying): the next sweep removes it
  }
}

function netnsNames(): string[] {
  const r = spawnSync("ip", ["netns", "list"], { encoding: "utf8" });
  if (r.status !== 0) return [];
  return r.stdout.split("\n").map((l) => l.split(" ")[0] ?? "").filter(Boolean);
}

function removeNetns(name: string): void {
  const pids = spawnSync("ip", ["netns", "pids", name], { encoding: "utf8" });
  for (const p of (pids.stdout ?? "").split(/\s+/).filter(Boolean)) kill(Number(p));
  spawnSync("ip", ["netns", "del", name], { stdio: "ignore" });
}

/** Which runs a sweep applies to. */
type RunFilter = (run: number) => boolean;

function reap(which: RunFilter, removeFolders: boolean): void {
  try {
    const folders = new Set<string>();
    const runsSeen = new Set<number>();
    for (const p of processes()) if (p.run !== undefined) runsSeen.add(p.run);
    const base = path.join(REPO_ROOT, "test-output");
    for (const n of fs.existsSync(base) ? fs.readdirSync(base) : []) {
      const m = OUTPUT_NAME.exec(n);
      if (m) runsSeen.add(Number(m[1]));
    }
    for (const run of runsSeen) if (which(run)) for (const f of runFolders(run)) folders.add(f);
    for (const p of processes()) {
      const byEnv = p.run !== undefined && which(p.run);
      const byCwd = p.cwd !== undefined && [...folders].some((f) => p.cwd === f || p.cwd!.startsWith(`${f}/`));
      if (byEnv || byCwd) kill(p.pid);
    }
    for (const root of cgroupRoots()) {
      let names: string[] = [];
      try {
        names = fs.readdirSync(root);
      } catch {
        continue;
      }
      for (const n of names) {
        const m = CGROUP_NAME.exec(n);
        if (m && which(Number(m[1]))) removeCgroupTree(path.join(root, n));
      }
    }
    for (const n of netnsNames()) {
      const m = NETNS_NAME.exec(n);
      if (m && which(Number(m[1]))) removeNetns(n);
    }
    // Last, once nothing runs in them any more.
    if (removeFolders && !keepOutput()) for (const f of folders) removeOutputFolder(f);
  } catch {
    // a sweep never fails a run
  }
}

/** Kills and removes everything run `pid` left (see the file comment). Synchronous; never throws. */
export function reapRun(pid: number): void {
  reap((run) => run === pid, false);
}

/** {@link reapRun} for every run whose mocha process no longer exists, and removes their folders too. Never throws. */
export function reapDeadRuns(): void {
  reap((run) => run !== process.pid && !pidAlive(run), true);
}

/**
 * Marks this process as a run (children inherit the mark), sweeps what dead
 * runs left, and reaps this run on exit and on SIGINT / SIGTERM / SIGHUP.
 */
export function installReaper(): void {
  if (process.env[RUN_ENV] === String(process.pid)) return; // installed already
  process.env[RUN_ENV] = String(process.pid);
  reapDeadRuns();
  process.on("exit", () => reapRun(process.pid));
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      process.stderr.write(`\ntest run ${process.pid}: ${signal}, ending what it started\n`);
      reapRun(process.pid);
      process.exit(128 + (signal === "SIGINT" ? 2 : signal === "SIGTERM" ? 15 : 1));
    });
  }
}
