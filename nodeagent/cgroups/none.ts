/**
 * The `none` backend: no writable cgroupfs, so no limits.
 *
 * The agent still has to find "every process of the instance" to stop it and
 * to report usage. Without a group, the instance is its session: servants are
 * spawned with setsid, so the session leader's pid is also the session id
 * every child inherits. procs() scans /proc for that session. A child that
 * calls setsid() itself escapes this; that is the price of running without
 * cgroups, and detection says so once at start.
 *
 * usage() is asked for every instance at each heartbeat, one after the
 * other: those calls share one scan of /proc (sessions -> live pids, kept
 * USAGE_SCAN_MS), not one full scan per instance. procs(), which stop and
 * kill wait on, always scans afresh.
 */
import { type CgroupBackend, type CgroupLimits, type CgroupUsage, assertInstanceId, assertLimits } from "./base";
import { drain, signalAll } from "./cgroup-files";
import { isLive, listPids, readProcStat, readRssBytes, USER_HZ } from "../process/proc-stat";

/** How long one /proc scan answers usage() (a heartbeat's calls come within milliseconds of each other), ms. */
export const USAGE_SCAN_MS = 1000;

interface SessionProc {
  pid: number;
  cpuTicks: number;
}

export class NoCgroupBackend implements CgroupBackend {
  readonly name = "none";
  readonly enforcesLimits = false;
  private readonly leaders = new Map<string, number>();
  private scan: { at: number; bySession: Map<number, SessionProc[]> } | undefined;

  constructor(private readonly drainTimeoutMs = 5000) {}

  async initialize(instanceId: string, limits: CgroupLimits): Promise<void> {
    assertInstanceId(instanceId);
    assertLimits(limits);
  }

  procsFiles(instanceId: string): string[] {
    assertInstanceId(instanceId);
    return [];
  }

  track(instanceId: string, pid: number | undefined): void {
    assertInstanceId(instanceId);
    if (pid === undefined) this.leaders.delete(instanceId);
    else this.leaders.set(instanceId, pid);
  }

  async procs(instanceId: string): Promise<number[]> {
    assertInstanceId(instanceId);
    const leader = this.leaders.get(instanceId);
    if (leader === undefined) return [];
    const out: number[] = [];
    for (const pid of listPids()) {
      const stat = readProcStat(pid);
      if (isLive(stat) && (stat.session === leader || pid === leader)) out.push(pid);
    }
    return out;
  }

  async kill(instanceId: string, signal: NodeJS.Signals): Promise<void> {
    signalAll(await this.procs(instanceId), signal);
  }

  async killAll(instanceId: string, timeoutMs = this.drainTimeoutMs): Promise<void> {
    await drain(() => this.procs(instanceId), `session of ${instanceId}`, timeoutMs);
  }

  async cleanup(instanceId: string): Promise<void> {
    await this.killAll(instanceId);
    this.leaders.delete(instanceId);
  }

  /** Summed from /proc over the session: RSS and utime+stime (a rough stand-in for the group counters). */
  async usage(instanceId: string): Promise<CgroupUsage> {
    assertInstanceId(instanceId);
    const leader = this.leaders.get(instanceId);
    const procs = leader === undefined ? [] : this.sessionProcs(leader);
    let memoryBytes = 0;
    let ticks = 0;
    for (const p of procs) {
      memoryBytes += readRssBytes(p.pid);
      ticks += p.cpuTicks;
    }
    return { memoryBytes, cpuUsageNanos: ticks * (1e9 / USER_HZ), pids: procs.length, pidsLimitHits: 0, cpuThrottledPeriods: 0 };
  }

  /** The live processes of a leader's session (the leader included), from a /proc scan at most USAGE_SCAN_MS old. */
  private sessionProcs(leader: number): SessionProc[] {
    const now = Date.now();
    if (this.scan === undefined || now - this.scan.at >= USAGE_SCAN_MS || now < this.scan.at) {
      const bySession = new Map<number, SessionProc[]>();
      for (const pid of listPids()) {
        const stat = readProcStat(pid);
        if (!isLive(stat)) continue;
        let list = bySession.get(stat.session);
        if (list === undefined) bySession.set(stat.session, (list = []));
        list.push({ pid, cpuTicks: stat.cpuTicks });
      }
      this.scan = { at: now, bySession };
    }
    const procs = this.scan.bySession.get(leader) ?? [];
    if (procs.some((p) => p.pid === leader)) return procs;
    // A leader outside its own session (it did not become one): counted as procs() counts it.
    const stat = readProcStat(leader);
    return isLive(stat) ? [...procs, { pid: leader, cpuTicks: stat.cpuTicks }] : procs;
  }

  async oomKills(_instanceId: string): Promise<number> {
    // No group counter; without limits the only OOM killer is the global one.
    return 0;
  }

  async contains(instanceId: string, pid: number): Promise<boolean> {
    const leader = this.leaders.get(instanceId);
    const stat = readProcStat(pid);
    // Nothing to check against before the first track(): adoption then rests on start time and boot id.
    if (leader === undefined) return isLive(stat);
    return isLive(stat) && (stat.session === leader || pid === leader);
  }

  describe(instanceId: string): string {
    return `none:${instanceId}`;
  }
}
