/**
 * Per-method call statistics for proxies (client side) and servants (server
 * side): calls, errors by code, and a latency histogram with fixed buckets.
 * Cheap on the hot path (a few array increments); read by the
 * `sgrid.viewstatus` admin command and the optional Prometheus endpoint.
 */
import { SgridError } from "./errors";
import { statusName } from "./status";

/** Upper bounds of the latency buckets, milliseconds (last bucket is +Inf). */
export const LATENCY_BUCKETS_MS: readonly number[] = Object.freeze([0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000]);

export class MethodStats {
  calls = 0;
  errors = 0;
  totalMs = 0;
  maxMs = 0;
  readonly errorsByCode = new Map<string, number>();
  readonly buckets = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0);

  record(ms: number, error: unknown): void {
    this.calls++;
    this.totalMs += ms;
    if (ms > this.maxMs) this.maxMs = ms;
    let i = 0;
    while (i < LATENCY_BUCKETS_MS.length && ms > LATENCY_BUCKETS_MS[i]!) i++;
    this.buckets[i]!++;
    if (error !== undefined) {
      this.errors++;
      const code = error instanceof SgridError ? error.code : (typeof (error as { code?: unknown })?.code === "number" ? statusName((error as { code: number }).code) : "INTERNAL");
      this.errorsByCode.set(code, (this.errorsByCode.get(code) ?? 0) + 1);
    }
  }

  /** Approximate quantile from the histogram (upper bound of the bucket). */
  quantile(q: number): number {
    const target = Math.ceil(this.calls * q);
    let seen = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      seen += this.buckets[i]!;
      if (seen >= target && target > 0) return LATENCY_BUCKETS_MS[i] ?? Infinity;
    }
    return 0;
  }

  toJSON(): Record<string, unknown> {
    return {
      calls: this.calls,
      errors: this.errors,
      errorsByCode: Object.fromEntries(this.errorsByCode),
      avgMs: this.calls ? +(this.totalMs / this.calls).toFixed(3) : 0,
      maxMs: +this.maxMs.toFixed(3),
      p50Ms: this.quantile(0.5),
      p99Ms: this.quantile(0.99),
      buckets: Object.fromEntries(this.buckets.map((n, i) => [LATENCY_BUCKETS_MS[i] !== undefined ? `le_${LATENCY_BUCKETS_MS[i]}` : "le_inf", n])),
    };
  }
}

/**
 * Stats of one side (client or server) of one process, by scope (service or
 * Obj name) and method path. Two map lookups per call and no string built on
 * the call path; callers that can should still keep the MethodStats they get.
 */
export class StatsRegistry {
  private readonly scopes = new Map<string, Map<string, MethodStats>>();

  /** The stats object for a scope and method path; created on first use. */
  get(scope: string, method: string): MethodStats {
    let byMethod = this.scopes.get(scope);
    if (!byMethod) { byMethod = new Map(); this.scopes.set(scope, byMethod); }
    let s = byMethod.get(method);
    if (!s) { s = new MethodStats(); byMethod.set(method, s); }
    return s;
  }

  /** Forgets a scope's stats: the next get() of it starts from zero. */
  drop(scope: string): void {
    this.scopes.delete(scope);
  }

  entries(): Array<{ scope: string; method: string; stats: MethodStats }> {
    const out: Array<{ scope: string; method: string; stats: MethodStats }> = [];
    for (const [scope, byMethod] of this.scopes) for (const [method, stats] of byMethod) out.push({ scope, method, stats });
    return out;
  }

  toJSON(): Record<string, unknown> {
    return Object.fromEntries(this.entries().map((e) => [`${e.scope} ${e.method}`, e.stats.toJSON()]));
  }
}

/** Process-wide registries. */
export const clientStats = new StatsRegistry();
export const serverStats = new StatsRegistry();
