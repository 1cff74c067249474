/**
 * The service monitor's storage: per-minute sums of servants' call stats
 * (migration 0008). Reports arrive as deltas (framework/stats-report.ts,
 * through the agent's session); each is added to its minute's row. Reads sum
 * over instances (and, for long ranges, over several minutes per point: the
 * downsampling is done when read, the rows themselves stay per minute for
 * the retention, 7 days). Writes bump no revision counter: nothing watches
 * this table.
 */
import { InvalidArgumentError } from "sgridnext";
import { type StoreContext, num } from "./context";

/** One reported delta, as the registry stores it. */
export interface CallStatInput {
  side: string;
  scope: string;
  method: string;
  calls: number;
  errors: number;
  errorsByCode: Record<string, number>;
  buckets: number[];
  totalMs: number;
}

/** One stored minute of one method (summed over the instances asked for). */
export interface CallStatRow extends CallStatInput {
  minute: number;
}

export interface CallStatsRepo {
  /** Adds the deltas of one instance, reported at `at` (ms), to that minute's rows. */
  add(instance: { id: number; application: string; server: string; node: string }, at: number, stats: CallStatInput[]): Promise<void>;
  /**
   * Rows of one server in [from, to) (ms), summed over its instances (or only
   * over `instanceIds`), by minute, side, scope and method; oldest first.
   */
  query(q: { application: string; server: string; from: number; to: number; side?: string; instanceIds?: readonly number[] }): Promise<CallStatRow[]>;
  /** Deletes the rows of minutes before `before` (ms); returns how many. */
  prune(before: number): Promise<number>;
}

export const MINUTE_MS = 60_000;
const SIDES = new Set(["server", "client"]);

function text(value: unknown, what: string, max: number): string {
  if (typeof value !== "string" || value.length === 0 || value.length > max) {
    throw new InvalidArgumentError(`invalid call stat ${what}: expected 1 to ${max} characters`, { kind: `call stat ${what}` });
  }
  return value;
}

function count(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? Math.round(value) : 0;
}

function addInto(into: CallStatInput, s: CallStatInput): void {
  into.calls += s.calls;
  into.errors += s.errors;
  into.totalMs += s.totalMs;
  for (const [code, n] of Object.entries(s.errorsByCode)) into.errorsByCode[code] = (into.errorsByCode[code] ?? 0) + n;
  s.buckets.forEach((n, i) => (into.buckets[i] = (into.buckets[i] ?? 0) + n));
}

function parseJson<T>(raw: unknown, fallback: T): T {
  try {
    return typeof raw === "string" ? (JSON.parse(raw) as T) : fallback;
  } catch {
    return fallback;
  }
}

export class KnexCallStatsRepo implements CallStatsRepo {
  constructor(private readonly ctx: StoreContext) {}

  async add(instance: { id: number; application: string; server: string; node: string }, at: number, stats: CallStatInput[]): Promise<void> {
    const minute = Math.floor(at / MINUTE_MS) * MINUTE_MS;
    const clean = stats.map((s) => ({
      side: SIDES.has(s.side) ? s.side : "server",
      scope: text(s.scope, "scope", 255),
      method: text(s.method, "method", 255),
      calls: count(s.calls),
      errors: count(s.errors),
      errorsByCode: Object.fromEntries(Object.entries(s.errorsByCode ?? {}).map(([k, v]) => [k.slice(0, 64), count(v)]).filter(([, v]) => (v as number) > 0)),
      buckets: (s.buckets ?? []).slice(0, 32).map(count),
      totalMs: typeof s.totalMs === "number" && Number.isFinite(s.totalMs) && s.totalMs > 0 ? s.totalMs : 0,
    })).filter((s) => s.calls > 0);
    if (clean.length === 0) return;
    await this.ctx.write(async (trx) => {
      for (const s of clean) {
        const key = { minute, instance_id: instance.id, side: s.side, scope: s.scope, method: s.method };
        const row = await trx("call_stats").where(key).first();
        if (row) {
          const sum: CallStatInput = {
            ...s, calls: num(row.calls), errors: num(row.errors), totalMs: Number(row.total_ms),
            errorsByCode: parseJson(row.errors_by_code, {}), buckets: parseJson(row.buckets, []),
          };
          addInto(sum, s);
          await trx("call_stats").where({ id: row.id }).update({
            calls: sum.calls, errors: sum.errors, total_ms: sum.totalMs, errors_by_code: JSON.stringify(sum.errorsByCode), buckets: JSON.stringify(sum.buckets),
          });
        } else {
          await trx("call_stats").insert({
            ...key, application: instance.application, server: instance.server, node: instance.node,
            calls: s.calls, errors: s.errors, total_ms: s.totalMs, errors_by_code: JSON.stringify(s.errorsByCode), buckets: JSON.stringify(s.buckets),
          });
        }
      }
    });
  }

  async query(q: { application: string; server: string; from: number; to: number; side?: string; instanceIds?: readonly number[] }): Promise<CallStatRow[]> {
    if (q.instanceIds?.length === 0) return [];
    const rows = await this.ctx.read((db) => {
      const b = db("call_stats").where({ application: q.application, server: q.server }).andWhere("minute", ">=", Math.trunc(q.from)).andWhere("minute", "<", Math.trunc(q.to));
      if (q.side) b.andWhere({ side: q.side });
      if (q.instanceIds) b.whereIn("instance_id", [...q.instanceIds]);
      return b.orderBy("minute", "asc").limit(200_000);
    });
    const byKey = new Map<string, CallStatRow>();
    for (const r of rows as any[]) {
      const key = `${num(r.minute)}\u0000${r.side}\u0000${r.scope}\u0000${r.method}`;
      const s: CallStatInput = {
        side: r.side, scope: r.scope, method: r.method, calls: num(r.calls), errors: num(r.errors), totalMs: Number(r.total_ms),
        errorsByCode: parseJson(r.errors_by_code, {}), buckets: parseJson(r.buckets, []),
      };
      const have = byKey.get(key);
      if (have) addInto(have, s);
      else byKey.set(key, { minute: num(r.minute), ...s, errorsByCode: { ...s.errorsByCode }, buckets: [...s.buckets] });
    }
    return [...byKey.values()];
  }

  async prune(before: number): Promise<number> {
    return num(await this.ctx.read((db) => db("call_stats").where("minute", "<", Math.trunc(before)).del()));
  }
}
