/**
 * Login, logout and the current session.
 *
 * POST /api/login   {user, password} -> {user, roles, csrfToken, expiresAt}; sets the session cookie
 * POST /api/logout  ends the session here and the token in the registry
 * GET  /api/session -> {user, roles, csrfToken, expiresAt}
 *
 * The registry token stays in the session store; the browser gets a random
 * session id in an HttpOnly, SameSite=Strict cookie (Secure over TLS).
 */
import { z } from "zod";
import { SgridError, Status } from "sgridnext";
import { body } from "../body";
import { SESSION_COOKIE, sessionOf, type AdminContext, type AdminRouter } from "../context";
import { checkOrigin } from "../csrf";
import type { AdminSession } from "../session";

const LoginBody = z.object({
  user: z.string().trim().min(1, "user name is required").max(128),
  password: z.string().min(1, "password is required").max(1024),
});

/** What the page learns about its session: never the registry token. */
function sessionView(ctx: AdminContext, s: AdminSession): Record<string, unknown> {
  return { user: s.user, roles: s.roles, csrfToken: s.csrfToken, expiresAt: s.expiresAt, limits: { maxUploadBytes: ctx.admin.options.maxUploadBytes } };
}

export function setSessionCookie(ctx: AdminContext, id: string | null): void {
  ctx.cookies.set(SESSION_COOKIE, id, {
    httpOnly: true,
    sameSite: "strict",
    secure: ctx.secure,
    path: "/",
    overwrite: true,
    // A browser-session cookie: the server decides when the session ends.
    ...(id === null ? { expires: new Date(0) } : {}),
  });
}

/** Routes that work without a session (login only). */
export function authPublicRoutes(router: AdminRouter): void {
  router.post("/api/login", async (ctx) => {
    checkOrigin(ctx);
    const { admin } = ctx;
    const input = await body(ctx, LoginBody, admin.options.maxJsonBytes);
    admin.limiter.begin(ctx.ip, input.user);
    let reply;
    try {
      reply = await admin.registry.admin.login({ user: input.user, password: input.password }, admin.registry.as(undefined, { clientAddress: ctx.ip, appToken: admin.options.appToken }));
    } catch (err) {
      if (err instanceof SgridError && err.status === Status.UNAUTHENTICATED) admin.limiter.failed(ctx.ip, input.user);
      throw err;
    }
    admin.limiter.succeeded(ctx.ip, input.user);
    // A fresh id on every login (no session fixation); an older session of this browser ends.
    admin.sessions.delete(ctx.cookies.get(SESSION_COOKIE));
    const { id, session } = admin.sessions.create({
      token: reply.token,
      user: reply.user,
      roles: reply.roles.map((r) => ({ application: r.application, role: r.role })),
      expiresAt: reply.expiresAt,
    });
    setSessionCookie(ctx, id);
    admin.log.info({ user: reply.user, address: ctx.ip }, "login");
    ctx.body = sessionView(ctx, session);
  });
}

/** Routes that need a session (mounted after the login and CSRF checks). */
export function authRoutes(router: AdminRouter): void {
  router.get("/api/session", (ctx) => {
    ctx.body = sessionView(ctx, sessionOf(ctx));
  });

  router.post("/api/logout", async (ctx) => {
    const session = sessionOf(ctx);
    ctx.admin.sessions.delete(ctx.state.sessionId);
    setSessionCookie(ctx, null);
    try {
      await ctx.admin.registry.admin.logout({}, ctx.admin.registry.as(session.token));
    } catch (err) {
      // The admin session is gone either way; the registry token expires on its own.
      ctx.admin.log.warn({ user: session.user, err: (err as Error).message }, "registry logout failed");
    }
    ctx.status = 204;
  });
}
