/**
 * The admin Koa app: JSON API under /api, the web UI everywhere else.
 *
 * Request path, in order:
 *   errors -> Host allow-list (403) -> security headers -> /static/ assets (public) -> session from cookie
 *   -> UI pages (login page public; others redirect to /login without a session)
 *   -> /api/login (public, rate-limited) -> every other /api route: session (401)
 *      and CSRF on mutating methods (403) -> the route, which calls the registry
 *      with the session's token; the registry checks roles (PERMISSION_DENIED -> 403).
 */
import Koa, { type Next } from "koa";
import { Router } from "@koa/router";
import { getLogger, PeriodicTask, SgridError, Status } from "sgridnext";
import { authPublicRoutes, authRoutes, setSessionCookie } from "./api/auth";
import { configRoutes } from "./api/configs";
import { tryCallRoutes } from "./api/try-call";
import { TryCaller } from "./try-caller";
import { logRoutes } from "./api/logs";
import { statsRoutes } from "./api/stats";
import { dashboardRoutes } from "./api/dashboard";
import { nodeRoutes } from "./api/nodes";
import { patchRoutes } from "./api/patches";
import { serverRoutes } from "./api/servers";
import { taskRoutes } from "./api/tasks";
import { userRoutes } from "./api/users";
import { SESSION_COOKIE, type AdminContext, type AdminContextExtra, type AdminServices, type AdminState } from "./context";
import { requireCsrf } from "./csrf";
import { HostAllowList } from "./host-check";
import { toHttpError } from "./http-errors";
import { resolveAdminOptions, type AdminOptions } from "./options";
import { LoginRateLimiter } from "./rate-limit";
import { RegistryApis } from "./registry-apis";
import { SessionStore } from "./session";
import { indexPage, staticAssets, STATIC_PREFIX } from "./static";

export interface AdminApp {
  /** The Koa app (mount `app.callback()` on any HTTP(S) server). */
  readonly app: Koa<AdminState, AdminContextExtra>;
  readonly services: AdminServices;
  /** Closes the registry channels and the session sweeper. Idempotent. */
  close(): void;
}

/** How often idle sessions are dropped, ms. */
const SWEEP_MS = 60_000;

export function createAdminApp(options: AdminOptions): AdminApp {
  const opts = resolveAdminOptions(options);
  const log = getLogger("admin");
  const services: AdminServices = {
    registry: new RegistryApis(opts.registry, opts.registryTimeoutMs),
    sessions: new SessionStore({ idleMs: opts.sessionIdleMs, maxSessions: opts.maxSessions }),
    limiter: new LoginRateLimiter({ attemptsPerMinute: opts.loginAttemptsPerMinute, failuresPerUser: opts.loginFailuresPerUser }),
    options: opts,
    log,
    tryCaller: new TryCaller(),
  };
  const app = new Koa<AdminState, AdminContextExtra>({ proxy: opts.trustProxy });
  app.context.admin = services;
  const page = indexPage();

  app.use(async (ctx: AdminContext, next: Next) => {
    try {
      await next();
    } catch (err) {
      const e = toHttpError(err);
      if (e.status === 500) log.error({ err, method: ctx.method, path: ctx.path }, "request failed");
      // The registry no longer accepts the token (expired, revoked): the admin session ends too.
      // (Not for a failed login: that says nothing about the session this browser already has.)
      if (err instanceof SgridError && err.status === Status.UNAUTHENTICATED && ctx.state.session && ctx.path !== "/api/login") {
        services.sessions.delete(ctx.state.sessionId);
        setSessionCookie(ctx, null);
      }
      if (e.body.error.retryAfterS !== undefined) ctx.set("Retry-After", String(e.body.error.retryAfterS));
      ctx.status = e.status;
      if (ctx.path.startsWith("/api/")) ctx.body = e.body;
      else ctx.body = e.body.error.message;
    }
  });

  app.use(new HostAllowList(opts.allowedHosts).middleware());

  app.use(async (ctx: AdminContext, next: Next) => {
    ctx.set({
      "X-Content-Type-Options": "nosniff",
      "X-Frame-Options": "DENY",
      "Referrer-Policy": "no-referrer",
      "Cross-Origin-Opener-Policy": "same-origin",
      "Cross-Origin-Resource-Policy": "same-origin",
    });
    if (ctx.secure) ctx.set("Strict-Transport-Security", "max-age=31536000");
    if (ctx.path.startsWith("/api/")) ctx.set("Cache-Control", "no-store");
    await next();
  });

  app.use(staticAssets(opts.uiDir));

  app.use(async (ctx: AdminContext, next: Next) => {
    const id = ctx.cookies.get(SESSION_COOKIE);
    const session = services.sessions.get(id);
    if (session) {
      ctx.state.session = session;
      ctx.state.sessionId = id;
    }
    await next();
  });

  // UI pages: one HTML page for every path outside /api and /static.
  app.use(async (ctx: AdminContext, next: Next) => {
    if (ctx.path.startsWith("/api/") || ctx.path === "/api" || ctx.path.startsWith(STATIC_PREFIX)) {
      await next();
      return;
    }
    if (ctx.method !== "GET" && ctx.method !== "HEAD") {
      ctx.status = 405;
      ctx.body = "method not allowed";
      return;
    }
    if (ctx.path !== "/login" && !ctx.state.session) {
      ctx.redirect(`/login?next=${encodeURIComponent(ctx.originalUrl)}`);
      return;
    }
    ctx.set("Content-Security-Policy", page.csp);
    ctx.set("Cache-Control", "no-store");
    ctx.type = "text/html; charset=utf-8";
    ctx.body = page.html;
  });

  const publicApi = new Router<AdminState, AdminContextExtra>();
  authPublicRoutes(publicApi);
  app.use(publicApi.routes());

  app.use(async (ctx: AdminContext, next: Next) => {
    if (!ctx.state.session) {
      ctx.status = 401;
      ctx.body = { error: { code: "UNAUTHENTICATED", message: "not logged in" } };
      return;
    }
    await requireCsrf(ctx, next);
  });

  const api = new Router<AdminState, AdminContextExtra>();
  authRoutes(api);
  userRoutes(api);
  serverRoutes(api);
  logRoutes(api);
  statsRoutes(api);
  dashboardRoutes(api);
  taskRoutes(api);
  nodeRoutes(api);
  patchRoutes(api);
  configRoutes(api);
  tryCallRoutes(api);
  app.use(api.routes());
  app.use(api.allowedMethods());

  app.use(async (ctx: AdminContext) => {
    ctx.status = 404;
    ctx.body = { error: { code: "NOT_FOUND", message: `no API route ${ctx.method} ${ctx.path}` } };
  });

  const sweeper = new PeriodicTask(() => services.sessions.sweep(), { intervalMs: SWEEP_MS }).start();
  let closed = false;
  return {
    app,
    services,
    close(): void {
      if (closed) return;
      closed = true;
      void sweeper.stop();
      services.registry.close();
      services.tryCaller.close();
    },
  };
}
