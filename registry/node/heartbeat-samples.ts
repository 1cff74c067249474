/**
 * Recent heartbeat samples per node (a fixed-size ring each) and the latest
 * usage per instance, kept in memory by the registry process that holds the
 * node's session. What the admin app shows as "load, CPU, memory, disk over
 * the last minutes"; nothing of it is stored in the database (host facts are,
 * at a slower pace: see the hub's factsIntervalMs).
 */

/** Samples kept per node: 60 x the 5 s default interval = the last 5 minutes. */
export const SAMPLES_PER_NODE = 60;

/** One sample: `at` (ms) plus numeric facts (load1, cpu, memory and disk figures). */
export type Sample = Record<string, number>;

function finite(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

/**
 * The figures of one heartbeat. Understands the agent's NodeFacts shape
 * (loadAvg, cpuCount, memory{totalBytes,availableBytes}, disks[]); unknown
 * shapes give just `at` and `load1`.
 * - cpu: load1 / CPU count, the share of the machine's CPUs in demand;
 * - memoryUsedBytes: total - available;
 * - diskTotalBytes / diskAvailableBytes: summed over the reported mounts.
 */
export function sampleOf(at: number, load1: number, facts: Record<string, unknown>): Sample {
  const s: Sample = { at, load1: finite(load1) ?? 0 };
  const cpus = finite(facts.cpuAvailable) ?? finite(facts.cpuCount);
  if (cpus && cpus > 0) s.cpu = s.load1! / cpus;
  const mem = facts.memory as Record<string, unknown> | undefined;
  if (mem && typeof mem === "object") {
    const total = finite(mem.totalBytes);
    const avail = finite(mem.availableBytes) ?? finite(mem.freeBytes);
    if (total !== undefined) s.memoryTotalBytes = total;
    if (total !== undefined && avail !== undefined) s.memoryUsedBytes = Math.max(0, total - avail);
  }
  if (Array.isArray(facts.disks)) {
    let total = 0;
    let avail = 0;
    for (const d of facts.disks as Array<Record<string, unknown>>) {
      total += finite(d?.totalBytes) ?? 0;
      avail += finite(d?.availableBytes) ?? 0;
    }
    if (facts.disks.length > 0) {
      s.diskTotalBytes = total;
      s.diskAvailableBytes = avail;
    }
  }
  return s;
}

/** A ring of the last {@link SAMPLES_PER_NODE} samples of one node. */
class Ring {
  private readonly buf: Sample[] = [];
  private start = 0;
  push(s: Sample): void {
    if (this.buf.length < SAMPLES_PER_NODE) this.buf.push(s);
    else {
      this.buf[this.start] = s;
      this.start = (this.start + 1) % SAMPLES_PER_NODE;
    }
  }
  list(): Sample[] {
    return [...this.buf.slice(this.start), ...this.buf.slice(0, this.start)];
  }
}

export interface InstanceUsageSample {
  memoryBytes: number;
  cpuCoresUsed: number;
  /** When the running process started (ms since the epoch; 0 = unknown / not running). */
  startedAt: number;
}

export class HeartbeatSamples {
  private readonly rings = new Map<string, Ring>();
  private readonly usageById = new Map<number, InstanceUsageSample>();
  private readonly startedById = new Map<number, number>();

  add(node: string, sample: Sample): void {
    let r = this.rings.get(node);
    if (!r) this.rings.set(node, (r = new Ring()));
    r.push(sample);
  }

  samples(node: string): Sample[] {
    return this.rings.get(node)?.list() ?? [];
  }

  setUsage(instanceId: number, memoryBytes: number, cpuCoresUsed: number): void {
    // In place when known (usage() hands out copies): no object per instance per heartbeat.
    const u = this.usageById.get(instanceId);
    if (u) {
      u.memoryBytes = memoryBytes;
      u.cpuCoresUsed = cpuCoresUsed;
    } else this.usageById.set(instanceId, { memoryBytes, cpuCoresUsed, startedAt: this.startedById.get(instanceId) ?? 0 });
  }

  /** Start time of an instance's process, from its observed reports. */
  setStartedAt(instanceId: number, startedAt: number): void {
    this.startedById.set(instanceId, startedAt);
    const u = this.usageById.get(instanceId);
    if (u) u.startedAt = startedAt;
  }

  usage(instanceId: number): InstanceUsageSample | undefined {
    const u = this.usageById.get(instanceId);
    if (u) return { ...u };
    const startedAt = this.startedById.get(instanceId);
    return startedAt === undefined ? undefined : { memoryBytes: 0, cpuCoresUsed: 0, startedAt };
  }

  /** Drops what is known of a node and its instances (its session ended on this process). */
  forget(node: string, instanceIds: Iterable<number>): void {
    this.rings.delete(node);
    for (const id of instanceIds) {
      this.usageById.delete(id);
      this.startedById.delete(id);
    }
  }
}
