/**
 * The process wrangler: launches servants into their cgroups, adopts them
 * back after an agent restart, notices their exits and stops them.
 *
 * Launch contract:
 * - Detached in its own session (setsid), stdin /dev/null, stdout and stderr
 *   appended to files the agent opened with O_APPEND and passed as fds:
 *   never pipes, so nothing ties a servant's life to the agent's.
 * - Inside its cgroup before the program runs. The agent spawns a constant
 *   POSIX shell trampoline ({@link ENTER_CGROUP_SCRIPT}) that writes its own
 *   pid (`$$`) into every `cgroup.procs` file it is given as positional
 *   parameters and then `exec`s the program in the same process: the
 *   program, and anything it forks, starts life inside the group. The
 *   program and its arguments are passed as further positional parameters;
 *   the script never interprets them.
 * - Run-as: the trampoline must write cgroup.procs with the agent's
 *   privileges, so dropping to `uid`/`gid` happens after it, by exec'ing
 *   `setpriv --reuid --regid --clear-groups -- program...` (util-linux).
 *
 * Identity: a handle is pid + start time (/proc/<pid>/stat field 22) + boot
 * id + cgroup; adopt() accepts a persisted handle only when all still match,
 * so a reused pid is never mistaken for a servant.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { once } from "node:events";
import { lazySchema } from "../lazy-schema";
import { hasExactly, isInt, isString } from "../plain-checks";
import { Backoff, getLogger, ConfigError } from "sgridnext";
import type { CgroupBackend } from "../cgroups";
import { LaunchError } from "../errors";
import { isLive, readBootId, readProcStat } from "./proc-stat";
import { DEFAULT_PATH, type SpawnSpec, type ProcessHandle, validateSpawnSpec } from "./spawn-spec";
import { type ExitInfo, exitInfo } from "./exit-info";
import { ExitWatcher } from "./exit-watcher";

/**
 * The trampoline. $1 = how many cgroup.procs paths follow; then the paths;
 * then the program and its arguments. Exit 125 when a group cannot be
 * entered (the program never runs outside its group).
 */
export const ENTER_CGROUP_SCRIPT =
  'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || { echo "sgrid: cannot enter cgroup $1" >&2; exit 125; }; shift; n=$((n - 1)); done; exec "$@"';

/** Exit code of the trampoline when it could not enter a cgroup. */
export const ENTER_CGROUP_FAILED = 125;

export interface ProcessWranglerOptions {
  /** The cgroup backend chosen at start. Required. */
  cgroups: CgroupBackend;
  /** Poll interval for adopted processes, ms. Default 200 (an exit is noticed well within 1 s). */
  pollIntervalMs?: number;
  /** POSIX shell used for the trampoline. Default "/bin/sh". */
  shell?: string;
  /** setpriv used for run-as; default: found on the agent's PATH at first use. */
  setpriv?: string;
  /** How long stop() waits for the group to empty after SIGKILL, ms. Default 5000. */
  killTimeoutMs?: number;
}

export const WRANGLER_DEFAULTS = Object.freeze({ pollIntervalMs: 200, shell: "/bin/sh", killTimeoutMs: 5000 });

/** Options the schema below takes as they are. */
function plainlyValid(v: unknown): boolean {
  return hasExactly(v, {
    cgroups: (c) => typeof c === "object" && c !== null && typeof (c as CgroupBackend).initialize === "function",
    pollIntervalMs: (x) => isInt(x, 10, 250),
    shell: (x) => isString(x) && x.startsWith("/"),
    setpriv: (x) => isString(x) && x.startsWith("/"),
    killTimeoutMs: (x) => isInt(x, 1),
  }, ["cgroups"]);
}

/** Checked at the agent's start without zod when plainly valid (exported for test/nodeagent/lazy-options.test.ts). */
export const wranglerOptionsSchema = lazySchema((z) => z.object({
  cgroups: z.custom<CgroupBackend>((v) => typeof v === "object" && v !== null && typeof (v as CgroupBackend).initialize === "function", "cgroups must be a CgroupBackend"),
  pollIntervalMs: z.number().int().min(10).max(250).optional(),
  shell: z.string().startsWith("/").optional(),
  setpriv: z.string().startsWith("/").optional(),
  killTimeoutMs: z.number().int().positive().optional(),
}).strict(), plainlyValid);

export interface StopOptions {
  /** Signal sent first to the main process. Default "SIGTERM". */
  signal?: NodeJS.Signals;
  /** How long to wait for the main process to exit before SIGKILLing the whole group, ms. Default 10000. */
  graceMs?: number;
}

export const STOP_DEFAULTS = Object.freeze({ signal: "SIGTERM" as NodeJS.Signals, graceMs: 10_000 });

/** Resolves with the promise's value, or with undefined after `ms`; the timer is always cleared. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<undefined>((r) => { timer = setTimeout(() => r(undefined), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? DEFAULT_PATH).split(":")) {
    const candidate = path.join(dir || ".", name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  return undefined;
}

export class ProcessWrangler {
  readonly cgroups: CgroupBackend;
  private readonly opts: Readonly<{ pollIntervalMs: number; shell: string; killTimeoutMs: number; setpriv?: string }>;
  private readonly watcher: ExitWatcher;
  private readonly log = getLogger("agent.process");

  constructor(options: ProcessWranglerOptions) {
    const r = wranglerOptionsSchema.safeParse(options);
    if (!r.success) throw new ConfigError(`invalid process wrangler options: ${r.error.issues[0]?.message ?? r.error.message}`);
    const { cgroups, ...rest } = r.data;
    this.cgroups = cgroups;
    this.opts = Object.freeze({ ...WRANGLER_DEFAULTS, ...rest });
    this.watcher = new ExitWatcher(this.opts.pollIntervalMs, (h) => this.cgroups.oomKills(h.instanceId));
  }

  /**
   * Starts a servant inside its group (created, with `spec.limits`, if
   * missing). Resolves with its handle once it runs; its exit is watched
   * from then on (see wait()). Throws InvalidLaunchSpecError at once for a
   * bad spec; rejects with LaunchError or CgroupError when it cannot start.
   */
  async launch(spec: SpawnSpec): Promise<ProcessHandle> {
    const s = validateSpawnSpec(spec);
    if (s.cwd !== undefined && !fs.statSync(s.cwd, { throwIfNoEntry: false })?.isDirectory()) {
      throw new LaunchError(`working directory ${s.cwd} does not exist`, { instanceId: s.instanceId, cwd: s.cwd });
    }
    await this.cgroups.initialize(s.instanceId, s.limits ?? {});
    const oomKillsAtStart = await this.cgroups.oomKills(s.instanceId);
    const procsFiles = this.cgroups.procsFiles(s.instanceId);
    const program = [...this.runAs(s), s.command, ...(s.args ?? [])];
    const argv = ["-c", ENTER_CGROUP_SCRIPT, "sgrid-launch", String(procsFiles.length), ...procsFiles, ...program];
    const env = { ...(s.env ?? {}) };
    env.PATH ??= DEFAULT_PATH;

    const fds: number[] = [];
    let child;
    try {
      const out = this.openLog(s.stdoutPath);
      fds.push(out);
      const err = s.stderrPath === undefined || s.stderrPath === s.stdoutPath ? out : this.openLog(s.stderrPath);
      if (err !== out) fds.push(err);
      child = spawn(this.opts.shell, argv, { detached: true, stdio: ["ignore", out, err], env, cwd: s.cwd ?? "/" });
    } catch (e) {
      throw new LaunchError(`cannot start ${s.instanceId}: ${(e as Error).message}`, { instanceId: s.instanceId });
    } finally {
      for (const fd of fds) fs.closeSync(fd);
    }
    const pid = child.pid;
    if (pid === undefined) {
      const [e] = (await once(child, "error")) as [Error];
      throw new LaunchError(`cannot start ${s.instanceId}: ${e.message}`, { instanceId: s.instanceId });
    }
    child.on("error", (e) => this.log.warn({ instanceId: s.instanceId, pid, err: e.message }, "child process error"));
    // Synchronously, before the loop can reap a child that died at once: a zombie still has its stat entry.
    const stat = readProcStat(pid);
    const handle: ProcessHandle = {
      instanceId: s.instanceId,
      pid,
      startTime: stat?.startTime ?? 0,
      bootId: readBootId(),
      cgroup: this.cgroups.describe(s.instanceId),
      oomKillsAtStart,
      startedAt: Date.now(),
    };
    this.cgroups.track(s.instanceId, pid);
    const exited = this.watcher.watchChild(handle, child);
    child.unref();
    await this.entered(handle, exited);
    this.log.info({ instanceId: s.instanceId, pid, command: s.command }, "servant launched");
    return handle;
  }

  /**
   * Waits until the trampoline has put the new process into its group (a
   * few milliseconds), so that a returned handle always passes contains()
   * and adoption checks. Stops waiting when the process exits first (e.g.
   * the trampoline could not enter the group) or after 2 s.
   */
  private async entered(handle: ProcessHandle, exited: Promise<ExitInfo>): Promise<void> {
    let gone = false;
    void exited.then(() => { gone = true; });
    const deadline = Date.now() + 2000;
    const pause = new Backoff({ initialMs: 1, maxMs: 20, jitter: 0 });
    while (!gone && Date.now() < deadline) {
      if (await this.cgroups.contains(handle.instanceId, handle.pid)) return;
      await new Promise((r) => setTimeout(r, pause.next()));
    }
    if (!gone) this.log.warn({ instanceId: handle.instanceId, pid: handle.pid }, "servant not seen in its cgroup 2 s after launch");
  }

  /**
   * Takes over watching a process started by an earlier agent. True only
   * when the pid still runs the same process (same boot, same start time,
   * still in the instance's group); false otherwise (never throws for a
   * process that is gone).
   */
  async adopt(handle: ProcessHandle): Promise<boolean> {
    if (handle.bootId !== readBootId()) return false;
    const stat = readProcStat(handle.pid);
    if (!isLive(stat) || stat.startTime !== handle.startTime) return false;
    if (!(await this.cgroups.contains(handle.instanceId, handle.pid))) return false;
    this.cgroups.track(handle.instanceId, handle.pid);
    void this.watcher.watchAdopted(handle);
    this.log.info({ instanceId: handle.instanceId, pid: handle.pid }, "servant adopted");
    return true;
  }

  /**
   * A handle for a session leader found in the instance's group without a
   * persisted handle (the agent died between spawn and saving its state).
   * The oldest leader wins; undefined when the group holds none.
   */
  async findLeader(instanceId: string): Promise<ProcessHandle | undefined> {
    let best: ProcessHandle | undefined;
    for (const pid of await this.cgroups.procs(instanceId)) {
      const stat = readProcStat(pid);
      if (!isLive(stat) || stat.session !== pid) continue;
      if (best && best.startTime <= stat.startTime) continue;
      best = {
        instanceId, pid, startTime: stat.startTime, bootId: readBootId(), cgroup: this.cgroups.describe(instanceId),
        oomKillsAtStart: await this.cgroups.oomKills(instanceId), startedAt: Date.now(),
      };
    }
    return best;
  }

  /** True while the handle's process runs (same pid and start time, not a zombie). */
  isRunning(handle: ProcessHandle): boolean {
    const stat = readProcStat(handle.pid);
    return isLive(stat) && stat.startTime === handle.startTime;
  }

  /**
   * Resolves when the process ends (never rejects). A handle neither
   * launched nor adopted by this wrangler is watched by polling from now on.
   */
  wait(handle: ProcessHandle): Promise<ExitInfo> {
    return this.watcher.get(handle) ?? this.watcher.watchAdopted(handle);
  }

  /** Sends a signal to the main process only, after checking it is still the same process. */
  signal(handle: ProcessHandle, signal: NodeJS.Signals): boolean {
    if (!this.isRunning(handle)) return false;
    try {
      process.kill(handle.pid, signal);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Graceful stop: `signal` to the main process, up to `graceMs` for it to
   * exit, then SIGKILL to every process left in the group (grandchildren,
   * daemonised children, a main process that ignored the signal) until the
   * group is empty. Resolves with how the main process ended. The group
   * itself stays (cgroups.cleanup() removes it).
   */
  async stop(handle: ProcessHandle, options: StopOptions = {}): Promise<ExitInfo> {
    const signal = options.signal ?? STOP_DEFAULTS.signal;
    const graceMs = options.graceMs ?? STOP_DEFAULTS.graceMs;
    const exited = this.wait(handle);
    if (this.signal(handle, signal)) await within(exited, graceMs);
    await this.cgroups.killAll(handle.instanceId, this.opts.killTimeoutMs);
    // Without a group (backend `none`) or after a move out of it, the main process is killed by pid.
    this.signal(handle, "SIGKILL");
    const info = (await within(exited, this.opts.killTimeoutMs)) ?? exitInfo(null, null, false, true);
    this.log.info({ instanceId: handle.instanceId, pid: handle.pid, reason: info.reason }, "servant stopped");
    return info;
  }

  /** Stops watching a process without touching it (agent shutdown: servants keep running). */
  detach(handle: ProcessHandle): void {
    this.watcher.forget(handle);
  }

  /** Stops every watch; running servants are left alone. */
  close(): void {
    this.watcher.close();
  }

  private openLog(file: string): number {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    return fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT, 0o640);
  }

  private runAs(s: SpawnSpec): string[] {
    if (s.uid === undefined || s.gid === undefined) return [];
    const setpriv = this.opts.setpriv ?? findOnPath("setpriv");
    if (setpriv === undefined) throw new LaunchError(`running ${s.instanceId} as uid ${s.uid} needs setpriv (util-linux), which is not on PATH`, { instanceId: s.instanceId });
    return [setpriv, `--reuid=${s.uid}`, `--regid=${s.gid}`, "--clear-groups", "--"];
  }
}
