/**
 * cgroup v2 (unified hierarchy) backend.
 *
 * Layout: `<mount>/<groupName>/<instanceId>`, e.g.
 * `/sys/fs/cgroup/sgrid/Demo.HelloServer.node1`. The `sgrid` folder sits at
 * the top of the hierarchy, outside the agent's own group (typically
 * `/system.slice/sgrid-node.service`), so `systemctl stop` of the agent's
 * unit does not reach servants.
 *
 * v2 only lets a group use a controller its parent lists in
 * `cgroup.subtree_control`, so initialize() enables `+memory +cpu +pids` on
 * the mount root and on the `sgrid` folder (which holds no processes itself,
 * as v2's "no internal processes" rule requires).
 *
 * Files used: memory.max (+ memory.swap.max = 0 so the limit is hard),
 * cpu.max ("<quota> <period>"), pids.max, memory.current, memory.stat,
 * cpu.stat (usage_usec, nr_throttled), pids.current, pids.events (max),
 * memory.events (oom_kill),
 * cgroup.procs, and cgroup.kill (kernel 5.14+) when it exists.
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
  signalAll, writeOptional, writeValue,
} from "./cgroup-files";

export interface CgroupV2Options {
  /** Mount point of the unified hierarchy (default: found in /proc/self/mountinfo, usually /sys/fs/cgroup). */
  mount: string;
  /** Name of the folder under the mount that holds every instance group. Default "sgrid". */
  groupName?: string;
  /** How long cleanup()/killAll() keep killing before giving up, ms. Default 5000. */
  drainTimeoutMs?: number;
}

/** The controllers Sgrid needs from the unified hierarchy. */
export const V2_CONTROLLERS = ["memory", "cpu", "pids"] as const;

export class CgroupV2Backend implements CgroupBackend {
  readonly name = "v2";
  readonly enforcesLimits = true;
  /** `<mount>/<groupName>`: the parent of every instance group. */
  readonly root: string;
  private readonly mount: string;
  private readonly drainTimeoutMs: number;
  private readonly log = getLogger("agent.cgroups");
  private rootReady = false;

  constructor(options: CgroupV2Options) {
    if (!path.isAbsolute(options.mount)) throw new TypeError(`cgroup v2 mount must be an absolute path, got ${options.mount}`);
    const groupName = options.groupName ?? "sgrid";
    assertInstanceId(groupName);
    this.mount = options.mount;
    this.root = path.join(options.mount, groupName);
    this.drainTimeoutMs = options.drainTimeoutMs ?? 5000;
  }

  /** Controllers the mount root offers (cgroup.controllers). */
  static availableControllers(mount: string): string[] {
    try {
      return fs.readFileSync(path.join(mount, "cgroup.controllers"), "utf8").trim().split(/\s+/).filter(Boolean);
    } catch {
      return [];
    }
  }

  /** Creates the `sgrid` folder and enables the controllers for its children. Idempotent. */
  async prepare(): Promise<void> {
    if (this.rootReady) return;
    const wanted = V2_CONTROLLERS.map((c) => `+${c}`).join(" ");
    await writeValue(path.join(this.mount, "cgroup.subtree_control"), wanted);
    await ensureDir(this.root);
    await writeValue(path.join(this.root, "cgroup.subtree_control"), wanted);
    this.rootReady = true;
  }

  private dir(instanceId: string): string {
    assertInstanceId(instanceId);
    return path.join(this.root, instanceId);
  }

  async initialize(instanceId: string, limits: CgroupLimits): Promise<void> {
    assertLimits(limits);
    const dir = this.dir(instanceId);
    await this.prepare();
    await ensureDir(dir);
    const mem = limits.memoryBytes;
    await writeValue(path.join(dir, "memory.max"), mem === undefined ? "max" : String(Math.floor(mem)));
    // Without swap off the "hard" limit would page out instead of OOM-killing.
    await writeOptional(path.join(dir, "memory.swap.max"), mem === undefined ? "max" : "0");
    await writeValue(path.join(dir, "cpu.max"), limits.cpuCores === undefined ? `max ${CPU_PERIOD_US}` : `${cpuQuotaUs(limits.cpuCores)} ${CPU_PERIOD_US}`);
    await writeValue(path.join(dir, "pids.max"), limits.pids === undefined ? "max" : String(limits.pids));
    this.log.debug({ instanceId, dir, limits }, "cgroup v2 group ready");
  }

  procsFiles(instanceId: string): string[] {
    return [path.join(this.dir(instanceId), "cgroup.procs")];
  }

  async procs(instanceId: string): Promise<number[]> {
    return readProcs(path.join(this.dir(instanceId), "cgroup.procs"));
  }

  async kill(instanceId: string, signal: NodeJS.Signals): Promise<void> {
    signalAll(await this.procs(instanceId), signal);
  }

  async killAll(instanceId: string, timeoutMs = this.drainTimeoutMs): Promise<void> {
    const dir = this.dir(instanceId);
    // cgroup.kill (5.14+) kills the whole group atomically, forks included; the drain below then only waits.
    if (fs.existsSync(path.join(dir, "cgroup.kill"))) {
      await writeOptional(path.join(dir, "cgroup.kill"), "1");
    }
    await drain(() => this.procs(instanceId), dir, timeoutMs);
  }

  async cleanup(instanceId: string): Promise<void> {
    const dir = this.dir(instanceId);
    if (!fs.existsSync(dir)) return;
    await this.killAll(instanceId);
    await removeGroupDir(dir);
    this.log.debug({ instanceId, dir }, "cgroup v2 group removed");
  }

  async usage(instanceId: string): Promise<CgroupUsage> {
    const dir = this.dir(instanceId);
    const current = (await readNumber(path.join(dir, "memory.current"))) ?? 0;
    const inactiveFile = parseKeyed(await readText(path.join(dir, "memory.stat"))).get("inactive_file") ?? 0;
    const cpuStat = parseKeyed(await readText(path.join(dir, "cpu.stat")));
    const pids = (await readNumber(path.join(dir, "pids.current"))) ?? (await this.procs(instanceId)).length;
    const pidsLimitHits = parseKeyed(await readText(path.join(dir, "pids.events"))).get("max") ?? 0;
    return {
      memoryBytes: Math.max(0, current - inactiveFile), cpuUsageNanos: (cpuStat.get("usage_usec") ?? 0) * 1000, pids,
      pidsLimitHits, cpuThrottledPeriods: cpuStat.get("nr_throttled") ?? 0,
    };
  }

  async oomKills(instanceId: string): Promise<number> {
    return parseKeyed(await readText(path.join(this.dir(instanceId), "memory.events"))).get("oom_kill") ?? 0;
  }

  async contains(instanceId: string, pid: number): Promise<boolean> {
    return (await this.procs(instanceId)).includes(pid);
  }

  track(): void {
    // The group is authoritative on v2.
  }

  describe(instanceId: string): string {
    return `v2:${this.dir(instanceId)}`;
  }
}
