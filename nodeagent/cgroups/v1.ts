/**
 * cgroup v1 backend: one group per controller hierarchy.
 *
 * Layout: `<controller mount>/<groupName>/<instanceId>` in each of the
 * memory, cpu, cpuacct and pids hierarchies (a co-mounted "cpu,cpuacct" is
 * one directory, used once). The `sgrid` folder sits at the top of each
 * hierarchy, outside the agent's own groups, so stopping the agent's unit
 * does not reach servants.
 *
 * Files used: memory.limit_in_bytes + memory.memsw.limit_in_bytes (when swap
 * accounting exists, so the limit is hard), cpu.cfs_period_us +
 * cpu.cfs_quota_us, pids.max; memory.usage_in_bytes, memory.stat
 * (total_inactive_file), cpuacct.usage, pids.current, pids.events (max),
 * cpu.stat (nr_throttled); memory.oom_control
 * (`oom_kill`, kernel 4.13+) with memory.failcnt as the fallback OOM signal.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { getLogger } from "sgridnext";
import {
  type CgroupBackend, type CgroupLimits, type CgroupUsage,
  assertInstanceId, assertLimits, cpuQuotaUs, CPU_PERIOD_US,
} from "./base";
import {
  drain, ensureDir, parseKeyed, readNumber, readProcs, readText, removeGroupDir,
  signalAll, writeValue,
} from "./cgroup-files";

/** Where each v1 controller hierarchy is mounted. */
export interface CgroupV1Mounts {
  /** Memory controller mount (usually /sys/fs/cgroup/memory). Required. */
  memory: string;
  /** CPU controller mount (usually /sys/fs/cgroup/cpu or /sys/fs/cgroup/cpu,cpuacct). Required. */
  cpu: string;
  /** cpuacct mount, for CPU usage; optional (usage reads 0 without it). Often the same as `cpu`. */
  cpuacct?: string;
  /** pids controller mount (usually /sys/fs/cgroup/pids). Required. */
  pids: string;
}

export interface CgroupV1Options {
  /** Controller mounts (default: found in /proc/self/mountinfo). */
  mounts: CgroupV1Mounts;
  /** Name of the folder under each mount that holds every instance group. Default "sgrid". */
  groupName?: string;
  /** How long cleanup()/killAll() keep killing before giving up, ms. Default 5000. */
  drainTimeoutMs?: number;
}

/** The controllers v1 mode requires. */
export const V1_REQUIRED = ["memory", "cpu", "pids"] as const;

export class CgroupV1Backend implements CgroupBackend {
  readonly name = "v1";
  readonly enforcesLimits = true;
  private readonly mounts: Readonly<CgroupV1Mounts>;
  private readonly groupName: string;
  private readonly drainTimeoutMs: number;
  private readonly log = getLogger("agent.cgroups");

  constructor(options: CgroupV1Options) {
    for (const key of [...V1_REQUIRED, "cpuacct"] as const) {
      const m = options.mounts[key];
      if (m !== undefined && !path.isAbsolute(m)) throw new TypeError(`cgroup v1 ${key} mount must be an absolute path, got ${m}`);
      if (m === undefined && key !== "cpuacct") throw new TypeError(`cgroup v1 needs the ${key} controller mount`);
    }
    this.mounts = Object.freeze({ ...options.mounts });
    this.groupName = options.groupName ?? "sgrid";
    assertInstanceId(this.groupName);
    this.drainTimeoutMs = options.drainTimeoutMs ?? 5000;
  }

  /** The `sgrid` folders, one per distinct hierarchy. */
  roots(): string[] {
    return this.unique(Object.values(this.mounts).filter((m): m is string => m !== undefined).map((m) => path.join(m, this.groupName)));
  }

  private unique(dirs: string[]): string[] {
    return [...new Set(dirs)];
  }

  private groupOf(controller: keyof CgroupV1Mounts, instanceId: string): string | undefined {
    const mount = this.mounts[controller];
    return mount === undefined ? undefined : path.join(mount, this.groupName, instanceId);
  }

  /** The instance's group directory in every hierarchy (deduplicated). */
  groupDirs(instanceId: string): string[] {
    assertInstanceId(instanceId);
    const dirs = (["memory", "cpu", "cpuacct", "pids"] as const).map((c) => this.groupOf(c, instanceId)).filter((d): d is string => d !== undefined);
    return this.unique(dirs);
  }

  async initialize(instanceId: string, limits: CgroupLimits): Promise<void> {
    assertLimits(limits);
    for (const dir of this.groupDirs(instanceId)) await ensureDir(dir);
    const mem = this.groupOf("memory", instanceId)!;
    const memsw = path.join(mem, "memory.memsw.limit_in_bytes");
    const hasMemsw = fs.existsSync(memsw);
    // memsw must stay >= the memory limit at every step: lift it, set memory, then pin memsw to it.
    if (hasMemsw) await writeValue(memsw, "-1");
    await writeValue(path.join(mem, "memory.limit_in_bytes"), limits.memoryBytes === undefined ? "-1" : String(Math.floor(limits.memoryBytes)));
    if (hasMemsw && limits.memoryBytes !== undefined) await writeValue(memsw, String(Math.floor(limits.memoryBytes)));

    const cpu = this.groupOf("cpu", instanceId)!;
    await writeValue(path.join(cpu, "cpu.cfs_period_us"), String(CPU_PERIOD_US));
    await writeValue(path.join(cpu, "cpu.cfs_quota_us"), limits.cpuCores === undefined ? "-1" : String(cpuQuotaUs(limits.cpuCores)));

    await writeValue(path.join(this.groupOf("pids", instanceId)!, "pids.max"), limits.pids === undefined ? "max" : String(limits.pids));
    this.log.debug({ instanceId, limits }, "cgroup v1 groups ready");
  }

  procsFiles(instanceId: string): string[] {
    return this.groupDirs(instanceId).map((d) => path.join(d, "cgroup.procs"));
  }

  /** Union of the pids in every hierarchy (they agree unless someone moved a process by hand). */
  async procs(instanceId: string): Promise<number[]> {
    const all = new Set<number>();
    for (const file of this.procsFiles(instanceId)) for (const pid of await readProcs(file)) all.add(pid);
    return [...all].sort((a, b) => a - b);
  }

  async kill(instanceId: string, signal: NodeJS.Signals): Promise<void> {
    signalAll(await this.procs(instanceId), signal);
  }

  async killAll(instanceId: string, timeoutMs = this.drainTimeoutMs): Promise<void> {
    await drain(() => this.procs(instanceId), this.describe(instanceId), timeoutMs);
  }

  async cleanup(instanceId: string): Promise<void> {
    const dirs = this.groupDirs(instanceId).filter((d) => fs.existsSync(d));
    if (dirs.length === 0) return;
    await this.killAll(instanceId);
    for (const dir of dirs) await removeGroupDir(dir);
    this.log.debug({ instanceId }, "cgroup v1 groups removed");
  }

  async usage(instanceId: string): Promise<CgroupUsage> {
    const mem = this.groupOf("memory", instanceId)!;
    assertInstanceId(instanceId);
    const usage = (await readNumber(path.join(mem, "memory.usage_in_bytes"))) ?? 0;
    const inactiveFile = parseKeyed(await readText(path.join(mem, "memory.stat"))).get("total_inactive_file") ?? 0;
    const acct = this.groupOf("cpuacct", instanceId);
    const cpu = acct === undefined ? 0 : (await readNumber(path.join(acct, "cpuacct.usage"))) ?? 0;
    const pidsDir = this.groupOf("pids", instanceId)!;
    const pids = (await readNumber(path.join(pidsDir, "pids.current"))) ?? (await this.procs(instanceId)).length;
    const pidsLimitHits = parseKeyed(await readText(path.join(pidsDir, "pids.events"))).get("max") ?? 0;
    const cpuThrottledPeriods = parseKeyed(await readText(path.join(this.groupOf("cpu", instanceId)!, "cpu.stat"))).get("nr_throttled") ?? 0;
    return { memoryBytes: Math.max(0, usage - inactiveFile), cpuUsageNanos: cpu, pids, pidsLimitHits, cpuThrottledPeriods };
  }

  async oomKills(instanceId: string): Promise<number> {
    assertInstanceId(instanceId);
    const mem = this.groupOf("memory", instanceId)!;
    const oomKill = parseKeyed(await readText(path.join(mem, "memory.oom_control"))).get("oom_kill");
    if (oomKill !== undefined) return oomKill;
    // Older kernels: failcnt counts hits of the limit; a SIGKILL after a hit is taken as an OOM kill.
    return (await readNumber(path.join(mem, "memory.failcnt"))) ?? 0;
  }

  async contains(instanceId: string, pid: number): Promise<boolean> {
    // Membership in the memory hierarchy decides: that is where the limit that matters lives.
    return (await readProcs(path.join(this.groupOf("memory", instanceId)!, "cgroup.procs"))).includes(pid);
  }

  track(): void {
    // The groups are authoritative on v1.
  }

  describe(instanceId: string): string {
    return `v1:${this.groupOf("memory", instanceId)!}`;
  }

  /** Creates the `sgrid` folder in every hierarchy (the detection probe). */
  async prepare(): Promise<void> {
    for (const root of this.roots()) await ensureDir(root);
  }
}
