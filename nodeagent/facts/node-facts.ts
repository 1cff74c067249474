/**
 * Facts about this node, sent with heartbeats: what the registry and admin
 * show per node, and what placement decisions can use.
 *
 * Everything comes from the kernel at call time (os module, /proc, statfs);
 * nothing is cached except the agent's version and the boot id, which cannot
 * change while the agent runs. `collectNodeFacts` never throws: a fact that
 * cannot be read is reported empty (boot id "", disks []).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import { agentVersion } from "./agent-version";
import type { HostSample } from "sgridnext/gen/sgrid/registry/v1/node";
import { readDisks, type DiskFacts } from "./mounts";

export interface NodeFacts {
  hostname: string;
  /** Kernel release, e.g. "5.15.0-105-generic". */
  kernel: string;
  platform: string;
  arch: string;
  /** Logical CPUs of the machine. */
  cpuCount: number;
  /** CPUs this process may run on (affinity), which containers often lower. */
  cpuAvailable: number;
  cpuModel: string;
  /** 1, 5 and 15 minute load averages. */
  loadAvg: [number, number, number];
  memory: {
    totalBytes: number;
    freeBytes: number;
    /** MemAvailable from /proc/meminfo: what can be allocated without swapping (free + reclaimable cache). */
    availableBytes: number;
  };
  disks: DiskFacts[];
  agentVersion: string;
  nodeVersion: string;
  /** /proc/sys/kernel/random/boot_id: changes at each boot; pids from another boot are never re-adopted. */
  bootId: string;
  uptimeSeconds: number;
}

export interface NodeFactsOptions {
  /** Mount table to read. Default "/proc/mounts". */
  mountsFile?: string;
  /** Meminfo file. Default "/proc/meminfo". */
  meminfoFile?: string;
}

let bootIdCache: string | undefined;

/** The kernel's boot id ("" where there is none, e.g. not Linux). */
export function bootId(): string {
  if (bootIdCache !== undefined) return bootIdCache;
  try {
    bootIdCache = fs.readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  } catch {
    bootIdCache = "";
  }
  return bootIdCache;
}

/** MemAvailable in bytes from a meminfo file, or undefined. */
export async function memAvailable(meminfoFile = "/proc/meminfo"): Promise<number | undefined> {
  try {
    // Read at once, like the cgroup files (../cgroups/cgroup-files.ts): procfs never waits on a disk.
    const m = /^MemAvailable:\s+(\d+)\s*kB/m.exec(fs.readFileSync(meminfoFile, "utf8"));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The figures of `facts` that move between heartbeats, as the heartbeat's
 * HostSample: CPUs available, memory total and available, disk total and
 * available summed over the mounts (0 where unknown).
 */
export function hostSample(facts: NodeFacts): HostSample {
  let diskTotalBytes = 0;
  let diskAvailableBytes = 0;
  for (const d of facts.disks) {
    diskTotalBytes += d.totalBytes;
    diskAvailableBytes += d.availableBytes;
  }
  return {
    cpus: facts.cpuAvailable || facts.cpuCount,
    memoryTotalBytes: facts.memory.totalBytes,
    memoryAvailableBytes: facts.memory.availableBytes,
    diskTotalBytes,
    diskAvailableBytes,
  };
}

/** Collects the node's facts now. Never throws. */
export async function collectNodeFacts(options: NodeFactsOptions = {}): Promise<NodeFacts> {
  const cpus = os.cpus();
  const load = os.loadavg();
  const free = os.freemem();
  const [available, disks] = await Promise.all([memAvailable(options.meminfoFile), readDisks(options.mountsFile)]);
  return {
    hostname: os.hostname(),
    kernel: os.release(),
    platform: os.platform(),
    arch: os.arch(),
    cpuCount: cpus.length,
    cpuAvailable: os.availableParallelism(),
    cpuModel: cpus[0]?.model?.trim() ?? "",
    loadAvg: [load[0] ?? 0, load[1] ?? 0, load[2] ?? 0],
    memory: { totalBytes: os.totalmem(), freeBytes: free, availableBytes: available ?? free },
    disks,
    agentVersion: agentVersion(),
    nodeVersion: process.version,
    bootId: bootId(),
    uptimeSeconds: Math.floor(os.uptime()),
  };
}
