/**
 * What to spawn (a spawn spec: program, argv, environment, cgroup limits),
 * and the handle that names what was spawned. The launch spec of
 * ../launch is where a spawn spec's program and arguments come from.
 *
 * A spawn spec is data, never a shell string: the program, its arguments
 * as an array and its environment as a map go to execve() unchanged (the
 * only shell involved is the agent's own constant cgroup trampoline, which
 * never interprets them). The environment is exactly `env` (plus a default
 * PATH when absent): nothing of the agent's own environment, its token
 * included, leaks into a servant.
 */
import * as path from "node:path";
import { lazySchema } from "../lazy-schema";
import type { CgroupLimits } from "../cgroups";
import { InvalidLaunchSpecError } from "../errors";

export interface SpawnSpec {
  /** Instance id; also the cgroup name (letters, digits, ".", "_", "-"). */
  instanceId: string;
  /** Program: an absolute path, or a name looked up in `env.PATH`. */
  command: string;
  /** Arguments after the program name. Default []. */
  args?: string[];
  /** The complete environment of the program. Default {} (plus PATH). */
  env?: Record<string, string>;
  /** Absolute working directory. Default "/". */
  cwd?: string;
  /** Absolute path of the file stdout is appended to (opened O_APPEND by the agent; parents created). */
  stdoutPath: string;
  /** Absolute path of the file stderr is appended to. Default: the stdout file. */
  stderrPath?: string;
  /** Run as this uid (needs `gid` too, and setpriv from util-linux). Default: the agent's user. */
  uid?: number;
  /** Run as this gid (supplementary groups are cleared). */
  gid?: number;
  /** Limits applied to the instance's group before the program starts. Default: none. */
  limits?: CgroupLimits;
}

/** Names one process for ever: pid + start time + boot id, and where it lives. Persisted in the agent's state. */
export interface ProcessHandle {
  instanceId: string;
  pid: number;
  /** Field 22 of /proc/<pid>/stat (clock ticks after boot); a reused pid has another. */
  startTime: number;
  /** /proc/sys/kernel/random/boot_id at launch; after a reboot no handle is adopted. */
  bootId: string;
  /** Where the instance's group lives (backend:path), informational. */
  cgroup: string;
  /** The group's OOM-kill counter when the process started; a higher count at exit means an OOM kill. */
  oomKillsAtStart: number;
  /** Wall-clock launch time, ms since the epoch. */
  startedAt: number;
}

/** Default PATH given to a servant whose env has none. */
export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const specSchema = lazySchema((z) => {
  const noNul = (what: string) => z.string().refine((s) => !s.includes("\0"), `${what} must not contain NUL`);
  const absPath = (what: string) => noNul(what).refine((s) => path.isAbsolute(s), `${what} must be an absolute path`);
  const id = z.number().int().min(0).max(0xfffffffe);

  const limitsSchema = z.object({
    memoryBytes: z.number().positive().optional(),
    cpuCores: z.number().positive().optional(),
    pids: z.number().int().positive().optional(),
  }).strict();

  return z.object({
    instanceId: z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/, "instance id must be letters, digits, '.', '_' or '-'"),
    command: noNul("command").refine((s) => s.length > 0, "command must not be empty"),
    args: z.array(noNul("argument")).optional(),
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "env names must be letters, digits and _"), noNul("env value")).optional(),
    cwd: absPath("cwd").optional(),
    stdoutPath: absPath("stdoutPath"),
    stderrPath: absPath("stderrPath").optional(),
    uid: id.optional(),
    gid: id.optional(),
    limits: limitsSchema.optional(),
  }).strict().refine((s) => (s.uid === undefined) === (s.gid === undefined), "uid and gid go together");
});

/** Validates a spec; throws InvalidLaunchSpecError (caller misuse) naming the first bad field. */
export function validateSpawnSpec(spec: SpawnSpec): SpawnSpec {
  const r = specSchema.safeParse(spec);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue?.path.join(".") ?? "";
    throw new InvalidLaunchSpecError(`invalid launch spec${where ? ` (${where})` : ""}: ${issue?.message ?? r.error.message}`, { field: where });
  }
  return r.data as SpawnSpec;
}
