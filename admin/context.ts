/**
 * What every route handler sees: Koa's context with the admin services on
 * `ctx.admin` and the caller's session (if any) on `ctx.state`.
 */
import type { ParameterizedContext } from "koa";
import type { Router } from "@koa/router";
import { UnauthenticatedError, type CallOptions, type Logger } from "sgridnext";
import type { ResolvedAdminOptions } from "./options";
import type { LoginRateLimiter } from "./rate-limit";
import type { RegistryApis } from "./registry-apis";
import type { TryCaller } from "./try-caller";
import type { AdminSession, SessionStore } from "./session";

export interface AdminServices {
  readonly registry: RegistryApis;
  readonly sessions: SessionStore;
  readonly limiter: LoginRateLimiter;
  readonly options: ResolvedAdminOptions;
  readonly log: Logger;
  /** The channel "try a call" uses to reach servants (api/try-call.ts). */
  readonly tryCaller: TryCaller;
}

export interface AdminState {
  session?: AdminSession;
  sessionId?: string;
}

export interface AdminContextExtra {
  admin: AdminServices;
}

export type AdminContext = ParameterizedContext<AdminState, AdminContextExtra>;
export type AdminRouter = Router<AdminState, AdminContextExtra>;

/** Cookie holding the session id. */
export const SESSION_COOKIE = "sgrid_admin_sid";

/** The caller's session; UNAUTHENTICATED (401) without one. */
export function sessionOf(ctx: AdminContext): AdminSession {
  const s = ctx.state.session;
  if (!s) throw new UnauthenticatedError("not logged in");
  return s;
}

/** Call options carrying the caller's registry token. */
export function asUser(ctx: AdminContext, extra: Omit<CallOptions, "metadata"> = {}): CallOptions {
  return ctx.admin.registry.as(sessionOf(ctx).token, { ...extra, clientAddress: ctx.ip });
}
