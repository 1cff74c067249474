/**
 * Admin API: the service monitor. Per Obj (or called service) and method,
 * calls, errors by code and latency quantiles per point, from the per-minute
 * rows servants report through their agents (store/knex/call-stats.ts).
 * Viewer on the application.
 *
 * Downsampling happens here: a point is `step` wide (a whole number of
 * minutes); its histogram is the sum of its minutes', so p50/p99 stay
 * quantiles of the calls in the window (bucket upper bounds, as in
 * framework/stats.ts), not averages of per-minute quantiles.
 */
import { InvalidArgumentError, type DeepPartial, type ServerContext } from "sgridnext";
import { quantileOf } from "../quantile";
import type { CallStatPoint, QueryCallStatsReply, QueryCallStatsRequest } from "sgridnext/gen/sgrid/registry/v1/admin";
import { validate } from "../../store";
import { MINUTE_MS, type CallStatInput } from "../../store/knex/call-stats";
import type { AdminApiContext } from "./context";

/** Most points per method in one answer. */
export const MAX_POINTS = 360;
const HOUR_MS = 60 * MINUTE_MS;

export class StatsApi {
  constructor(private readonly c: AdminApiContext) {}

  async queryCallStats(request: QueryCallStatsRequest, call: ServerContext): Promise<DeepPartial<QueryCallStatsReply>> {
    const application = validate.validateApplication(request.application);
    const server = validate.validateServerName(request.server);
    this.c.requireApps(await this.c.user(call), "viewer", [application]);
    if (request.side && request.side !== "server" && request.side !== "client") {
      throw new InvalidArgumentError(`side must be server, client or empty, got ${JSON.stringify(request.side)}`, { field: "side" });
    }
    const to = request.toMs > 0 ? Number(request.toMs) : Date.now();
    const from = request.fromMs > 0 ? Number(request.fromMs) : to - HOUR_MS;
    if (!(from < to)) throw new InvalidArgumentError("from must be before to", { field: "from" });
    const span = to - from;
    let step = Number(request.stepMs) > 0 ? Math.ceil(Number(request.stepMs) / MINUTE_MS) * MINUTE_MS : span <= 6 * HOUR_MS ? MINUTE_MS : Math.ceil(span / MAX_POINTS / MINUTE_MS) * MINUTE_MS;
    if (span / step > MAX_POINTS) step = Math.ceil(span / MAX_POINTS / MINUTE_MS) * MINUTE_MS;
    const start = Math.floor(from / MINUTE_MS) * MINUTE_MS;
    const rows = await this.c.store.callStats.query({ application, server, from: start, to, side: request.side || undefined });
    const points = new Map<string, CallStatInput & { at: number }>();
    for (const r of rows) {
      const at = start + Math.floor((r.minute - start) / step) * step;
      const key = `${at}\u0000${r.side}\u0000${r.scope}\u0000${r.method}`;
      const p = points.get(key) ?? { at, side: r.side, scope: r.scope, method: r.method, calls: 0, errors: 0, totalMs: 0, errorsByCode: {}, buckets: [] };
      p.calls += r.calls;
      p.errors += r.errors;
      p.totalMs += r.totalMs;
      for (const [code, n] of Object.entries(r.errorsByCode)) p.errorsByCode[code] = (p.errorsByCode[code] ?? 0) + n;
      r.buckets.forEach((n, i) => (p.buckets[i] = (p.buckets[i] ?? 0) + n));
      points.set(key, p);
    }
    const out: Array<DeepPartial<CallStatPoint>> = [...points.values()]
      .sort((a, b) => a.at - b.at || a.scope.localeCompare(b.scope) || a.method.localeCompare(b.method))
      .map((p) => ({
        at: p.at, side: p.side, scope: p.scope, method: p.method, calls: p.calls, errors: p.errors,
        errorsByCodeJson: JSON.stringify(p.errorsByCode), avgMs: p.calls ? p.totalMs / p.calls : 0,
        p50Ms: quantileOf(p.buckets, 0.5), p99Ms: quantileOf(p.buckets, 0.99),
      }));
    return { points: out, stepMs: step, fromMs: start, toMs: to };
  }
}
