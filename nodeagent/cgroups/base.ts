/**
 * The cgroup backend interface: who owns an instance's processes and limits.
 *
 * Modelled on Nomad's process "wrangler" (client/lib/proclib): a small
 * interface (initialize, kill, cleanup) with an idempotent destroy, plus the
 * read side the supervisor needs (procs, usage, OOM counter, membership).
 * One backend is chosen once at agent start (see `detectCgroups` in
 * index.ts): cgroup v2, cgroup v1, or `none` (no limits, said once).
 *
 * Every instance gets its own group named after its instance id, under a
 * `sgrid` folder at the top of the hierarchy, i.e. OUTSIDE the agent's own
 * cgroup: stopping the agent's systemd unit must not take servants down.
 *
 * The launch path never moves a running program into a group: the process
 * wrangler starts a tiny constant shell that writes its own pid into every
 * path of {@link CgroupBackend.procsFiles} and only then execs the program,
 * so there is no moment when the program or a child it forks is outside.
 */
import { InvalidInstanceIdError } from "../errors";

/** Resource limits of one instance. An absent key means "no limit". */
export interface CgroupLimits {
  /** Hard memory limit in bytes (v1 memory.limit_in_bytes and memsw; v2 memory.max, swap off). */
  memoryBytes?: number;
  /** CPU quota in cores, e.g. 0.5 = half a core (v1 cfs_quota_us/cfs_period_us; v2 cpu.max). */
  cpuCores?: number;
  /** Maximum number of tasks (processes and threads) in the group (pids.max). */
  pids?: number;
}

/** Usage read from the group's own counters. */
export interface CgroupUsage {
  /** Memory in use without reclaimable page cache (usage minus inactive_file), bytes. */
  memoryBytes: number;
  /** CPU time consumed by the group since it was created, nanoseconds (0 when unknown). */
  cpuUsageNanos: number;
  /** Tasks in the group now. */
  pids: number;
  /** Forks the kernel refused at the group's pids limit since it was created (pids.events "max"; 0 when unknown). */
  pidsLimitHits: number;
  /** CFS periods in which the group was throttled at its CPU quota since it was created (cpu.stat nr_throttled; 0 when unknown). */
  cpuThrottledPeriods: number;
}

/** The names a backend is registered under. */
export type CgroupBackendName = "v2" | "v1" | "none" | (string & {});

export interface CgroupBackend {
  /** Registered name: "v2", "v1" or "none". */
  readonly name: CgroupBackendName;
  /** False for the `none` backend: limits are not applied and usage is read from /proc instead. */
  readonly enforcesLimits: boolean;

  /**
   * Creates the instance's group(s) if missing and (re)applies `limits`.
   * Idempotent; called again with new limits to change them in place.
   * Rejects with CgroupError when cgroupfs refuses a write.
   */
  initialize(instanceId: string, limits: CgroupLimits): Promise<void>;

  /**
   * The `cgroup.procs` files a new process must write its own pid into,
   * before exec, to live in the instance's group(s). Empty for `none`.
   * Requires a prior initialize().
   */
  procsFiles(instanceId: string): string[];

  /** Sends `signal` once to every process in the group. Never throws for processes that are gone. */
  kill(instanceId: string, signal: NodeJS.Signals): Promise<void>;

  /**
   * SIGKILLs every process in the group until the group is empty (a fork
   * bomb is outrun because each pass kills what the last pass missed and the
   * pids limit bounds the forks), without removing the group. Rejects with
   * CgroupBusyError after `timeoutMs`.
   */
  killAll(instanceId: string, timeoutMs?: number): Promise<void>;

  /**
   * Kills everything in the group, waits until it is empty and removes the
   * group(s). Idempotent: cleaning up a group that does not exist resolves.
   */
  cleanup(instanceId: string): Promise<void>;

  /** Pids in the group now ([] when the group does not exist). */
  procs(instanceId: string): Promise<number[]>;

  /** Usage counters of the group. */
  usage(instanceId: string): Promise<CgroupUsage>;

  /** How many processes of the group the kernel OOM-killed since it was created (0 when unknown). */
  oomKills(instanceId: string): Promise<number>;

  /** True when `pid` is in the instance's group. */
  contains(instanceId: string, pid: number): Promise<boolean>;

  /**
   * Tells the backend which session leader was launched or adopted for the
   * instance. v1/v2 ignore it (the group is authoritative); `none` uses it to
   * find the session's processes, since it has no group to ask.
   */
  track(instanceId: string, pid: number | undefined): void;

  /** A short description of where the instance's group lives, for logs and process handles. */
  describe(instanceId: string): string;
}

/** Instance ids become directory names: letters, digits, `.`, `_`, `-`; 1..128 chars; not `.` or `..`. */
const INSTANCE_ID = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

/** Throws InvalidInstanceIdError (caller misuse) unless `id` is a safe single path segment. */
export function assertInstanceId(id: string): void {
  if (typeof id !== "string" || !INSTANCE_ID.test(id) || id === "." || id === "..") {
    throw new InvalidInstanceIdError(`instance id ${JSON.stringify(id)} must be 1-128 characters of letters, digits, ".", "_" or "-", not starting with "." or "-"`, { instanceId: String(id) });
  }
}

/** Throws TypeError when a limit is present but not a positive finite number. */
export function assertLimits(limits: CgroupLimits): void {
  for (const key of ["memoryBytes", "cpuCores", "pids"] as const) {
    const v = limits[key];
    if (v === undefined) continue;
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) throw new TypeError(`limit ${key} must be a positive number, got ${String(v)}`);
  }
  if (limits.pids !== undefined && !Number.isInteger(limits.pids)) throw new TypeError(`limit pids must be an integer, got ${limits.pids}`);
}

/** CFS period used for CPU quotas on both versions (the kernel's default, 100 ms). */
export const CPU_PERIOD_US = 100_000;

/** The quota in microseconds per {@link CPU_PERIOD_US} for `cores` (at least the kernel minimum of 1 ms). */
export function cpuQuotaUs(cores: number): number {
  return Math.max(1000, Math.round(cores * CPU_PERIOD_US));
}
