/**
 * File-level helpers shared by the v1 and v2 backends: reading and writing
 * cgroupfs interface files, parsing their formats, draining a group, and
 * removing a group directory.
 *
 * Writes go through `writeFile` with the default flags: on cgroupfs the file
 * always exists and truncation is ignored; on a plain directory tree (the
 * v2-shaped tree tests build in a temp dir) the same call creates the file,
 * which is what lets the v2 file logic be tested without v2 controllers.
 */
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CgroupBusyError, CgroupError } from "../errors";
import { isPidLive } from "../process/proc-stat";

/** statfs magic numbers of the two cgroup filesystems. */
const CGROUP_SUPER_MAGIC = 0x27e0eb;
const CGROUP2_SUPER_MAGIC = 0x63677270;

/** Writes one value to an interface file; rejects with CgroupError naming the file and the kernel's answer. */
export async function writeValue(file: string, value: string): Promise<void> {
  try {
    await fsp.writeFile(file, value);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new CgroupError(`cannot write "${value}" to ${file}: ${e.code ?? e.message}`, { file, value, errno: e.code });
  }
}

/** Like writeValue, but a missing or refused optional file (e.g. memory.swap.max without swap accounting) is ignored. */
export async function writeOptional(file: string, value: string): Promise<boolean> {
  try {
    await fsp.writeFile(file, value);
    return true;
  } catch {
    return false;
  }
}

/** Text of an interface file, or undefined when it does not exist. */
export async function readText(file: string): Promise<string | undefined> {
  try {
    // Read at once: a cgroupfs file is made by the kernel on read, never waits on a disk, and
    // fs.promises.readFile's open, fstat, reads and close through the thread pool cost ~7x the
    // CPU of the read itself (~130 us vs ~18 us for memory.stat); a heartbeat reads six per instance.
    return fs.readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new CgroupError(`cannot read ${file}: ${(err as Error).message}`, { file });
  }
}

/** A single-number file ("max" and missing files read as undefined). */
export async function readNumber(file: string): Promise<number | undefined> {
  const text = (await readText(file))?.trim();
  if (text === undefined || text === "" || text === "max") return undefined;
  const n = Number(text);
  return Number.isFinite(n) ? n : undefined;
}

/** Parses "key value" lines (memory.stat, memory.events, cpu.stat, memory.oom_control). */
export function parseKeyed(text: string | undefined): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of (text ?? "").split("\n")) {
    const [key, value] = line.trim().split(/\s+/);
    if (key && value !== undefined && Number.isFinite(Number(value))) out.set(key, Number(value));
  }
  return out;
}

/** Pids listed in a cgroup.procs file ([] when the file does not exist). */
export async function readProcs(file: string): Promise<number[]> {
  const text = await readText(file);
  const out: number[] = [];
  for (const line of (text ?? "").split("\n")) {
    const n = Number(line.trim());
    if (line.trim() !== "" && Number.isInteger(n) && n > 0) out.push(n);
  }
  return out;
}

/** Signals each pid once; pids that are gone are skipped silently. */
export function signalAll(pids: Iterable<number>, signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // ESRCH (gone) or EPERM (not ours any more): nothing to do.
    }
  }
}

/**
 * Kills every live process `listProcs` returns, again and again, until none
 * is left. Each pass kills what the previous pass missed (a child forked in
 * between), and the pids limit bounds how many there can be, so a fork bomb
 * is outrun. Zombies count as gone: they have exited, and a real cgroupfs
 * does not list them anyway.
 */
export async function drain(listProcs: () => Promise<number[]>, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let pass = 0; ; pass++) {
    const live = (await listProcs()).filter(isPidLive);
    if (live.length === 0) return;
    if (Date.now() > deadline) {
      throw new CgroupBusyError(`${live.length} process(es) still in ${what} after SIGKILL for ${timeoutMs} ms`, { pids: live.slice(0, 20), group: what });
    }
    signalAll(live, "SIGKILL");
    await sleep(pass < 5 ? 10 : 50);
  }
}

/** True when `dir` is on a cgroup filesystem (v1 or v2); false for a plain directory tree. */
export function isCgroupFs(dir: string): boolean {
  try {
    const type = fs.statfsSync(dir).type;
    return type === CGROUP_SUPER_MAGIC || type === CGROUP2_SUPER_MAGIC;
  } catch {
    return false;
  }
}

/**
 * Removes a group directory. On cgroupfs that is a plain rmdir (the
 * interface files vanish with it). On a plain directory tree (a test tree)
 * the files written into it are removed too. A missing directory is fine.
 */
export async function removeGroupDir(dir: string): Promise<void> {
  try {
    await fsp.rmdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return;
    if (code === "ENOTEMPTY" && !isCgroupFs(path.dirname(dir))) {
      await fsp.rm(dir, { recursive: true, force: true });
      return;
    }
    throw new CgroupError(`cannot remove cgroup ${dir}: ${code ?? (err as Error).message}`, { dir, errno: code });
  }
}

/** Creates a directory (and parents); on cgroupfs mkdir is what creates a group. */
export async function ensureDir(dir: string): Promise<void> {
  try {
    await fsp.mkdir(dir, { recursive: true });
  } catch (err) {
    throw new CgroupError(`cannot create cgroup ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { dir });
  }
}

/** True when the current user may create entries in `dir` (the cheap half of the detection probe). */
export function writable(dir: string): boolean {
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}
