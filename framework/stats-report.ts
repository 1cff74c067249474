/**
 * What the servant tells its node agent about its calls: the change of every
 * method's stats (both sides: calls it served, calls its proxies made) since
 * the previous report. Sent on the local channel with a keepalive; the agent
 * passes it to the registry, which keeps per-minute totals (the service
 * monitor). Deltas, not totals, so a servant restart loses nothing already
 * reported and the registry only adds.
 */
import type { CallStat } from "./gen/sgrid/agent/v1/agent";
import { clientStats, serverStats, type MethodStats, type StatsRegistry } from "./stats";

/** Most methods in one report (a servant with more reports the busiest). */
export const MAX_STATS_PER_REPORT = 500;

interface Seen {
  calls: number;
  errors: number;
  totalMs: number;
  buckets: number[];
  byCode: Map<string, number>;
}

export class StatsReporter {
  private readonly seen = new Map<MethodStats, Seen>();

  constructor(private readonly sides: Array<[string, StatsRegistry]> = [["server", serverStats], ["client", clientStats]]) {}

  /** The calls since the last call of this method (empty when nothing happened). */
  delta(): CallStat[] {
    const out: CallStat[] = [];
    for (const [side, registry] of this.sides) {
      for (const { scope, method, stats } of registry.entries()) {
        const prev = this.seen.get(stats) ?? { calls: 0, errors: 0, totalMs: 0, buckets: stats.buckets.map(() => 0), byCode: new Map<string, number>() };
        const calls = stats.calls - prev.calls;
        if (calls <= 0) continue;
        const byCode: Record<string, number> = {};
        for (const [code, n] of stats.errorsByCode) {
          const d = n - (prev.byCode.get(code) ?? 0);
          if (d > 0) byCode[code] = d;
        }
        out.push({
          side, scope, method, calls, errors: stats.errors - prev.errors,
          errorsByCodeJson: JSON.stringify(byCode),
          buckets: stats.buckets.map((n, i) => n - (prev.buckets[i] ?? 0)),
          totalMs: stats.totalMs - prev.totalMs,
        });
        this.seen.set(stats, { calls: stats.calls, errors: stats.errors, totalMs: stats.totalMs, buckets: [...stats.buckets], byCode: new Map(stats.errorsByCode) });
      }
    }
    out.sort((a, b) => b.calls - a.calls);
    return out.slice(0, MAX_STATS_PER_REPORT);
  }
}
