/**
 * Recent heartbeat samples per node (a fixed-size ring each) and the latest
 * usage per instance, kept in memory by the registry process that holds the
 * node's session. What the admin app shows as "load, CPU, memory, disk over
 * the last minutes"; nothing of it is stored in the database (host facts are,
 * at a slower pace: see the hub's factsIntervalMs).
 */
import type { HostSample, InstanceUsage } from "sgridnext/gen/sgrid/registry/v1/node";

/** Samples kept per node: 60 x the 5 s default interval = the last 5 minutes. */
export const SAMPLES_PER_NODE = 60;

/** One sample: `at` (ms) plus numeric facts (load1, cpu, memory and disk figures). */
export type Sample = Record<string, number>;

function finite(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

/** The figures a sample may hold, in this order; each is a column of a node's ring. */
const FIELDS = ["at", "load1", "cpu", "memoryTotalBytes", "memoryUsedBytes", "diskTotalBytes", "diskAvailableBytes"] as const;
const AT = 0, LOAD1 = 1, CPU = 2, MEM_TOTAL = 3, MEM_USED = 4, DISK_TOTAL = 5, DISK_AVAIL = 6;
const WIDTH = FIELDS.length;

/**
 * Writes the figures of one heartbeat into `row` at `o` (NaN where a figure
 * is unknown). Understands the agent's NodeFacts shape (loadAvg, cpuCount,
 * memory{totalBytes,availableBytes}, disks[]); unknown shapes give just `at`
 * and `load1`.
 * - cpu: load1 / CPU count, the share of the machine's CPUs in demand;
 * - memoryUsedBytes: total - available;
 * - diskTotalBytes / diskAvailableBytes: summed over the reported mounts.
 */
function writeSample(row: Float64Array, o: number, at: number, load1: number, facts: Record<string, unknown>): void {
  const load = writeStart(row, o, at, load1);
  const cpus = finite(facts.cpuAvailable) ?? finite(facts.cpuCount);
  if (cpus && cpus > 0) row[o + CPU] = load / cpus;
  const mem = facts.memory as Record<string, unknown> | undefined;
  if (mem && typeof mem === "object") {
    const total = finite(mem.totalBytes);
    const avail = finite(mem.availableBytes) ?? finite(mem.freeBytes);
    if (total !== undefined) row[o + MEM_TOTAL] = total;
    if (total !== undefined && avail !== undefined) row[o + MEM_USED] = Math.max(0, total - avail);
  }
  if (Array.isArray(facts.disks)) {
    let total = 0;
    let avail = 0;
    for (const d of facts.disks as Array<Record<string, unknown>>) {
      total += finite(d?.totalBytes) ?? 0;
      avail += finite(d?.availableBytes) ?? 0;
    }
    if (facts.disks.length > 0) {
      row[o + DISK_TOTAL] = total;
      row[o + DISK_AVAIL] = avail;
    }
  }
}

/** Clears the row at `o` to NaN and writes `at` and the load (0 when not a finite number), which it returns. */
function writeStart(row: Float64Array, o: number, at: number, load1: number): number {
  row.fill(NaN, o, o + WIDTH);
  const load = finite(load1) ?? 0;
  row[o + AT] = at;
  row[o + LOAD1] = load;
  return load;
}

/**
 * As writeSample, from a heartbeat's HostSample: a CPU count or total that is
 * not a positive finite number is unknown, and so is the available figure
 * that goes with it; an available figure of 0 (a full disk) is a real 0.
 */
function writeHostSample(row: Float64Array, o: number, at: number, load1: number, s: HostSample): void {
  const load = writeStart(row, o, at, load1);
  const cpus = positive(s.cpus);
  if (cpus !== undefined) row[o + CPU] = load / cpus;
  const memTotal = positive(s.memoryTotalBytes);
  if (memTotal !== undefined) {
    row[o + MEM_TOTAL] = memTotal;
    const avail = finite(s.memoryAvailableBytes);
    if (avail !== undefined && avail >= 0) row[o + MEM_USED] = Math.max(0, memTotal - avail);
  }
  const diskTotal = positive(s.diskTotalBytes);
  if (diskTotal !== undefined) {
    row[o + DISK_TOTAL] = diskTotal;
    const avail = finite(s.diskAvailableBytes);
    if (avail !== undefined && avail >= 0) row[o + DISK_AVAIL] = avail;
  }
}

function positive(v: number): number | undefined {
  return Number.isFinite(v) && v > 0 ? v : undefined;
}

function toSample(row: Float64Array, o: number): Sample {
  const s: Sample = {};
  for (let f = 0; f < WIDTH; f++) {
    const v = row[o + f]!;
    if (!Number.isNaN(v)) s[FIELDS[f]!] = v;
  }
  return s;
}

/**
 * The last {@link SAMPLES_PER_NODE} samples of one node, as columns of one
 * Float64Array (3.3 KiB, made once): a heartbeat writes numbers in place
 * instead of leaving an object that lives five minutes, so it allocates
 * nothing that outlives the young generation (10,000 nodes x 60 objects
 * were promoted one by one and later collected by mark-compacts).
 */
export class Ring {
  readonly rows = new Float64Array(SAMPLES_PER_NODE * WIDTH);
  /** Set when its node is forgotten: a session still holding it takes the node's new ring. */
  dropped = false;
  private size = 0;
  private start = 0;
  /** The offset of the next sample's row (the oldest one's once full). */
  next(): number {
    let slot: number;
    if (this.size < SAMPLES_PER_NODE) slot = this.size++;
    else {
      slot = this.start;
      this.start = (this.start + 1) % SAMPLES_PER_NODE;
    }
    return slot * WIDTH;
  }
  list(): Sample[] {
    const out: Sample[] = [];
    for (let i = 0; i < this.size; i++) out.push(toSample(this.rows, ((this.start + i) % SAMPLES_PER_NODE) * WIDTH));
    return out;
  }
}

export interface InstanceUsageSample {
  memoryBytes: number;
  cpuCoresUsed: number;
  /** When the running process started (ms since the epoch; 0 = unknown / not running). */
  startedAt: number;
}

/**
 * One session's latest usage figures, slot i for the agent's i-th usage entry (agents report
 * their instances in a stable order): a heartbeat writes its figures into three arrays, which
 * it finds in one or two cache lines, instead of looking up and writing one object per
 * instance (10,000 sessions x 10 instances, each visited every 5 s: every one a cache miss).
 * A slot holds an instance id once the hub checked the session may report on it.
 */
export class UsageSlots {
  ids = new Float64Array(0);
  memoryBytes = new Float64Array(0);
  cpuCoresUsed = new Float64Array(0);
}

export class HeartbeatSamples {
  private readonly rings = new Map<string, Ring>();
  /** Where each instance's latest figures are (its session's slots); checked against the slot's id when read. */
  private readonly usageAt = new Map<number, { slots: UsageSlots; i: number }>();
  private readonly startedById = new Map<number, number>();

  /** Takes the figures of one heartbeat of `node` (see writeSample). */
  add(node: string, at: number, load1: number, facts: Record<string, unknown>): void {
    const r = this.ring(node);
    writeSample(r.rows, r.next(), at, load1, facts);
  }

  /**
   * Takes the figures of one heartbeat of `node` that carries a HostSample (see writeHostSample),
   * into `ring` when given (the ring this returned for the node before: a caller holding it skips
   * the lookup by name). Returns the node's ring.
   */
  addSample(node: string, at: number, load1: number, sample: HostSample, ring?: Ring): Ring {
    const r = ring !== undefined && !ring.dropped ? ring : this.ring(node);
    writeHostSample(r.rows, r.next(), at, load1, sample);
    return r;
  }

  private ring(node: string): Ring {
    let r = this.rings.get(node);
    if (!r) this.rings.set(node, (r = new Ring()));
    return r;
  }

  samples(node: string): Sample[] {
    return this.rings.get(node)?.list() ?? [];
  }

  /**
   * Takes a heartbeat's usage entries into the session's `slots`; an entry for an instance not
   * in `allowed` (the session's desired instances) is ignored.
   */
  setUsages(slots: UsageSlots, usage: readonly InstanceUsage[], allowed: ReadonlySet<number>): void {
    const n = usage.length;
    if (slots.ids.length !== n) {
      slots.ids = new Float64Array(n).fill(NaN);
      slots.memoryBytes = new Float64Array(n);
      slots.cpuCoresUsed = new Float64Array(n);
    }
    const ids = slots.ids;
    for (let i = 0; i < n; i++) {
      const u = usage[i]!;
      const id = u.instanceId;
      if (ids[i] !== id) {
        if (!allowed.has(id)) {
          ids[i] = NaN; // the slot no longer stands for the instance it held
          continue;
        }
        // One slot per instance: one that held it before (the agent reordered, or repeated it) gives it up.
        const before = this.usageAt.get(id);
        if (before !== undefined && before.slots === slots && before.i !== i && ids[before.i] === id) ids[before.i] = NaN;
        ids[i] = id;
        this.usageAt.set(id, { slots, i });
      }
      slots.memoryBytes[i] = u.memoryBytes;
      slots.cpuCoresUsed[i] = u.cpuCoresUsed;
    }
  }

  /** Start time of an instance's process, from its observed reports. */
  setStartedAt(instanceId: number, startedAt: number): void {
    this.startedById.set(instanceId, startedAt);
  }

  usage(instanceId: number): InstanceUsageSample | undefined {
    const startedAt = this.startedById.get(instanceId);
    const at = this.usageAt.get(instanceId);
    if (at !== undefined && at.slots.ids[at.i] === instanceId) {
      return { memoryBytes: at.slots.memoryBytes[at.i]!, cpuCoresUsed: at.slots.cpuCoresUsed[at.i]!, startedAt: startedAt ?? 0 };
    }
    return startedAt === undefined ? undefined : { memoryBytes: 0, cpuCoresUsed: 0, startedAt };
  }

  /** Drops what is known of a node and its instances (its session ended on this process). */
  forget(node: string, instanceIds: Iterable<number>): void {
    const r = this.rings.get(node);
    if (r !== undefined) r.dropped = true;
    this.rings.delete(node);
    for (const id of instanceIds) {
      this.usageAt.delete(id);
      this.startedById.delete(id);
    }
  }
}
