/**
 * The service monitor's numbers (Admin.QueryCallStats): per Obj and method,
 * calls, errors by code, average and p50/p99 latency per point.
 *
 * GET /api/stats?application&server&from&to&side&step            -> {points, stepMs, fromMs, toMs}
 * GET /api/stats?...&format=csv                                  -> the same points as text/csv (a download)
 *
 * `from` / `to` are ms since the epoch (default: the last hour); `side` is
 * server (calls the servant answered), client (calls its proxies made) or
 * empty for both. Viewer on the application (checked by the registry).
 */
import { z } from "zod";
import { check } from "../body";
import { asUser, type AdminRouter } from "../context";
import { Application, ServerName } from "./schemas";

const Ms = z.preprocess((v) => (v === "" || v === undefined ? undefined : v), z.coerce.number().int().min(0).optional());

const Query = z.object({
  application: Application,
  server: ServerName,
  from: Ms,
  to: Ms,
  step: Ms,
  side: z.enum(["server", "client", ""], { message: "side must be server, client or empty" }).default(""),
  format: z.enum(["json", "csv"], { message: "format must be json or csv" }).default("json"),
});

/** One CSV field: quoted when it holds a comma, quote or line break; a leading =+-@ is defused (spreadsheet formulas). */
function csvField(v: string | number): string {
  let s = String(v);
  if (/^[=+\-@]/.test(s)) s = `'${s}`;
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function statsRoutes(router: AdminRouter): void {
  router.get("/api/stats", async (ctx) => {
    const q = check(Query, ctx.query);
    const reply = await ctx.admin.registry.admin.queryCallStats(
      { application: q.application, server: q.server, fromMs: q.from ?? 0, toMs: q.to ?? 0, stepMs: q.step ?? 0, side: q.side }, asUser(ctx));
    if (q.format === "json") {
      ctx.body = reply;
      return;
    }
    const head = "time,side,scope,method,calls,errors,errors_by_code,avg_ms,p50_ms,p99_ms";
    const rows = reply.points.map((p) => [
      new Date(Number(p.at)).toISOString(), p.side, p.scope, p.method, p.calls, p.errors,
      Object.entries(JSON.parse(p.errorsByCodeJson || "{}") as Record<string, number>).map(([c, n]) => `${c}=${n}`).join(" "),
      p.avgMs.toFixed(3), p.p50Ms, p.p99Ms,
    ].map(csvField).join(","));
    ctx.type = "text/csv; charset=utf-8";
    ctx.set("Content-Disposition", `attachment; filename="${q.application}.${q.server}-calls.csv"`);
    ctx.body = [head, ...rows].join("\n") + "\n";
  });
}
