/**
 * CSRF protection for mutating requests (anything but GET, HEAD, OPTIONS):
 *
 * 1. synchronizer token: the session's `csrfToken` (handed to the page by
 *    GET /api/session and POST /api/login) must come back in the
 *    `x-csrf-token` header, compared in constant time;
 * 2. origin check: a request carrying `Origin` (browsers send it on every
 *    POST/PUT/PATCH/DELETE) must come from this app's own origin.
 *
 * Missing or wrong: 403 ADMIN_CSRF_INVALID, before anything reaches the
 * registry. The session cookie is also SameSite=Strict, so a cross-site page
 * cannot even make an authenticated request; these two checks hold when that
 * one does not (old browsers, same-site subdomains).
 */
import type { Next } from "koa";
import type { AdminContext } from "./context";
import { AdminCsrfError } from "./errors";
import { safeEqual } from "./session";

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

export const CSRF_HEADER = "x-csrf-token";

/** Rejects a request whose Origin header names another origin (absent Origin is allowed: non-browser clients). */
export function checkOrigin(ctx: AdminContext): void {
  const origin = ctx.get("origin");
  if (origin === "" || SAFE_METHODS.has(ctx.method)) return;
  // Built here: Koa 3's ctx.origin reflects the request's Origin header when one is sent.
  const own = `${ctx.protocol}://${ctx.host}`;
  if (origin !== own) throw new AdminCsrfError(`request from another origin (${origin}) refused`);
}

/** Middleware for routes that need a session: checks origin and the synchronizer token on mutating methods. */
export async function requireCsrf(ctx: AdminContext, next: Next): Promise<void> {
  if (!SAFE_METHODS.has(ctx.method)) {
    checkOrigin(ctx);
    const sent = ctx.get(CSRF_HEADER);
    const session = ctx.state.session;
    if (!sent) throw new AdminCsrfError(`missing CSRF token (header ${CSRF_HEADER})`);
    if (!session || !safeEqual(sent, session.csrfToken)) throw new AdminCsrfError("wrong CSRF token; reload the page");
  }
  await next();
}
