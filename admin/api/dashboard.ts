/**
 * Health at a glance: every server the caller may see, with its instances by
 * observed state, the versions they run, and its calls in the last 5
 * minutes (rate, error rate, p99), problems first.
 *
 * GET /api/dashboard -> {servers: [{application, server, type, instances, states, versions, callsPerMin, errorRate, p99Ms, problem}]}
 *
 * Built here from three Admin calls (servers, instances, and the call stats
 * of each server); a server whose stats cannot be read shows its instances
 * without them.
 */
import type { AdminRouter } from "../context";
import { asUser } from "../context";

const WINDOW_MS = 5 * 60_000;

export function dashboardRoutes(router: AdminRouter): void {
  router.get("/api/dashboard", async (ctx) => {
    const registry = ctx.admin.registry.admin;
    const listed = await Promise.all([registry.listServers({ application: "" }, asUser(ctx)), registry.listInstances({ application: "", server: "", node: "" }, asUser(ctx))]);
    const [{ servers }, { instances }] = listed;
    const to = Date.now();
    const rows = await Promise.all(servers.map(async (s) => {
      const mine = instances.filter((i) => i.application === s.application && i.server === s.name);
      const states: Record<string, number> = {};
      for (const i of mine) states[i.observedState || "unknown"] = (states[i.observedState || "unknown"] ?? 0) + 1;
      const versions = [...new Set(mine.map((i) => i.observedVersion).filter((v) => v > 0))].sort((a, b) => a - b);
      let calls = 0;
      let errors = 0;
      let p99 = 0;
      try {
        const stats = await registry.queryCallStats({ application: s.application, server: s.name, fromMs: to - WINDOW_MS, toMs: to, side: "server", stepMs: WINDOW_MS }, asUser(ctx));
        for (const p of stats.points) {
          calls += Number(p.calls);
          errors += Number(p.errors);
          p99 = Math.max(p99, p.p99Ms);
        }
      } catch {
        // Shown without call numbers.
      }
      const notActive = mine.filter((i) => i.desiredState === "active" && i.observedState !== "active").length;
      const errorRate = calls ? errors / calls : 0;
      return {
        application: s.application, server: s.name, type: s.type, defaultVersion: s.defaultVersion, createdAt: s.createdAt,
        instances: mine.length, states, versions, callsPerMin: calls / (WINDOW_MS / 60_000), errorRate, p99Ms: p99,
        problem: notActive > 0 ? `${notActive} instance(s) not active` : errorRate >= 0.01 ? `${(errorRate * 100).toFixed(1)} % errors` : "",
        notActive,
      };
    }));
    rows.sort((a, b) => b.notActive - a.notActive || b.errorRate - a.errorRate || a.application.localeCompare(b.application) || a.server.localeCompare(b.server));
    // Degraded mode: the lists came from the registry's memory.
    const degraded = listed[0].degraded ?? listed[1].degraded;
    ctx.body = { servers: rows, windowMs: WINDOW_MS, ...(degraded ? { degraded } : {}) };
  });
}
