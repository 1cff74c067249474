/**
 * Shared helpers for the node agent's process-core tests: fixtures, a
 * per-run cgroup folder (so parallel runs never share groups), temp dirs,
 * polling, process counting, and teardown that leaves nothing behind.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { expect } from "chai";
import { trackOutput } from "../../helpers/output";
import { waitFor as sharedWaitFor } from "../../helpers/wait";
import { isPidLive, listPids, readProcStat } from "../../../nodeagent/process";
import type { InstanceSupervisor, NodeSupervisor, ObservedState } from "../../../nodeagent";

/** Absolute path of a fixture under test/fixtures/agent (works from dist/ and from the sources). */
export function fixture(name: string): string {
  for (const up of ["../../../../test/fixtures/agent", "../../fixtures/agent"]) {
    const p = path.resolve(__dirname, up, name);
    if (fs.existsSync(p)) return p;
  }
  throw new Error(`fixture ${name} not found`);
}

/** A cgroup folder name unique to this test process ("sgrid-test-<pid>"), never the production "sgrid". */
export function testGroupName(suffix = ""): string {
  return `sgrid-test-${process.pid}${suffix}`;
}

/** The v1 controller mounts this machine offers, when the suite can use real cgroups (root + writable v1). */
export function v1Mounts(): { memory: string; cpu: string; cpuacct?: string; pids: string } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const base = "/sys/fs/cgroup";
  const mounts = { memory: `${base}/memory`, cpu: `${base}/cpu`, cpuacct: `${base}/cpuacct`, pids: `${base}/pids` };
  for (const m of [mounts.memory, mounts.cpu, mounts.pids]) {
    try {
      fs.accessSync(path.join(m, "cgroup.procs"), fs.constants.W_OK);
    } catch {
      return undefined;
    }
  }
  return mounts;
}

/** Kills every process in every group under `<mount>/<groupName>` in each v1 hierarchy, then removes the groups. */
export async function removeV1Groups(groupName: string): Promise<void> {
  const mounts = v1Mounts();
  if (!mounts) return;
  for (const mount of new Set(Object.values(mounts))) {
    const root = path.join(mount, groupName);
    if (!fs.existsSync(root)) continue;
    for (const child of fs.readdirSync(root, { withFileTypes: true })) {
      if (!child.isDirectory()) continue;
      const dir = path.join(root, child.name);
      for (let i = 0; i < 100; i++) {
        const pids = fs.readFileSync(path.join(dir, "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number);
        if (pids.length === 0) break;
        for (const pid of pids) try { process.kill(pid, "SIGKILL"); } catch { /* gone */ }
        await sleep(20);
      }
      try { fs.rmdirSync(dir); } catch { /* reported by the test that left it */ }
    }
    try { fs.rmdirSync(root); } catch { /* idem */ }
  }
}

/**
 * A fresh temp dir; remove it with removeTempDir. It is also tracked like a run folder (helpers/output.ts): one made
 * while a suite is only being loaded (a describe body, a harness made there) is removed once the process passes, even
 * when --grep left the suite out and its after hook, which removes it otherwise, never ran.
 */
export function makeTempDir(prefix = "sgrid-agent-"): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  trackOutput(dir, "current");
  return dir;
}

export function removeTempDir(dir: string | undefined): void {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
}

/** The shared wait (helpers/wait.ts), with the shorter default the in-process agent tests use. */
export function waitFor<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 5000, intervalMs = 25): Promise<NonNullable<T>> {
  return sharedWaitFor(what, fn as () => Promise<T | undefined>, timeoutMs, intervalMs);
}

/** Live (non-zombie) processes whose command line contains `marker`. */
export function liveProcessesWith(marker: string): number[] {
  const out: number[] = [];
  for (const pid of listPids()) {
    if (pid === process.pid) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
      if (cmd.split("\0").includes(marker) && isPidLive(pid)) out.push(pid);
    } catch {
      // gone
    }
  }
  return out;
}

/**
 * Servant main processes carrying `marker`: live session leaders (every
 * servant is launched into its own session). A servant's own fork children
 * briefly share its command line between fork and exec, so they are not
 * counted; a duplicate servant would be another session leader and is.
 */
export function servantsWith(marker: string): number[] {
  return liveProcessesWith(marker).filter((pid) => readProcStat(pid)?.session === pid);
}

/** SIGKILLs every live process whose command line contains `marker` (teardown). */
export function killProcessesWith(marker: string): void {
  for (const pid of liveProcessesWith(marker)) try { process.kill(pid, "SIGKILL"); } catch { /* gone */ }
}

/** Records every observed state an emitter reports. */
export function recordStates(emitter: InstanceSupervisor | NodeSupervisor): ObservedState[] {
  const seen: ObservedState[] = [];
  emitter.on("state", (s: ObservedState) => seen.push(s));
  return seen;
}

/** Waits until a state matching `pred` has been recorded (counting from index `from`). */
export function waitForState(seen: ObservedState[], what: string, pred: (s: ObservedState) => boolean, timeoutMs = 5000, from = 0): Promise<ObservedState> {
  return waitFor(what, () => seen.slice(from).find(pred), timeoutMs);
}

/** Asserts that `pid` is gone (no /proc entry, or a zombie nobody reaped). */
export function expectGone(pid: number): void {
  const stat = readProcStat(pid);
  expect(stat === null || stat.state === "Z", `pid ${pid} should be gone but is ${stat?.state}`).to.equal(true);
}
