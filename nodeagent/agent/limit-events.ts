/**
 * Resource-limit events besides OOM kills: the group's pids limit refused
 * forks (pids.events "max") or its CPU quota throttled it (cpu.stat
 * nr_throttled). The counters only grow while the group lives; each
 * heartbeat's usage read is compared with the last one per instance.
 *
 * Rate-limited so that a servant throttled all the time does not flood the
 * event log: at most one event per instance and kind per `minGapMs`; what
 * happened in between is summed into the next event's detail.
 */
import type { CgroupUsage } from "../cgroups";

export type LimitEventKind = "pids_limit" | "cpu_throttled";

export interface LimitEvent {
  event: LimitEventKind;
  /** e.g. "the pids limit refused 12 forks" */
  detail: string;
}

/** Default gap between two events of one kind for one instance: 5 minutes. */
export const LIMIT_EVENT_GAP_MS = 5 * 60_000;

interface KindState {
  /** Counter at the last read. */
  last: number;
  /** Increase not yet reported. */
  unreported: number;
  /** When the last event of this kind went out (-Infinity: never). */
  sentAt: number;
}

const COUNTERS: ReadonlyArray<{ kind: LimitEventKind; read: (u: CgroupUsage) => number; detail: (n: number) => string }> = [
  { kind: "pids_limit", read: (u) => u.pidsLimitHits, detail: (n) => `the pids limit refused ${n} fork${n === 1 ? "" : "s"}` },
  { kind: "cpu_throttled", read: (u) => u.cpuThrottledPeriods, detail: (n) => `the CPU quota throttled it in ${n} period${n === 1 ? "" : "s"} of 100 ms` },
];

export class LimitEvents {
  private readonly state = new Map<string, Map<LimitEventKind, KindState>>();

  constructor(private readonly minGapMs = LIMIT_EVENT_GAP_MS, private readonly now: () => number = Date.now) {}

  /**
   * The events a new usage read of `id` gives (usually none). The first read
   * of an instance is the baseline, or counts from zero when `fresh` (its
   * group was made by this agent, so all of its counts are news).
   */
  observe(id: string, usage: CgroupUsage, fresh = false): LimitEvent[] {
    let kinds = this.state.get(id);
    if (!kinds) this.state.set(id, (kinds = new Map()));
    const out: LimitEvent[] = [];
    const now = this.now();
    for (const c of COUNTERS) {
      const value = c.read(usage);
      if (!kinds.has(c.kind) && !fresh) {
        // A restarted agent adopting a group must not report the group's past.
        kinds.set(c.kind, { last: value, unreported: 0, sentAt: Number.NEGATIVE_INFINITY });
        continue;
      }
      const s = kinds.get(c.kind) ?? { last: 0, unreported: 0, sentAt: Number.NEGATIVE_INFINITY };
      kinds.set(c.kind, s);
      // A smaller counter means a new group (the instance was recreated): count from there.
      s.unreported += value >= s.last ? value - s.last : value;
      s.last = value;
      if (s.unreported > 0 && now - s.sentAt >= this.minGapMs) {
        out.push({ event: c.kind, detail: c.detail(s.unreported) });
        s.unreported = 0;
        s.sentAt = now;
      }
    }
    return out;
  }

  /** The instance is gone from this node. */
  forget(id: string): void {
    this.state.delete(id);
  }
}
