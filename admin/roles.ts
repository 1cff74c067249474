/**
 * Role logic the admin app needs for itself (the registry is the authority;
 * the app uses this only to refuse early and to tell the page what to hide).
 * A grant applies to one application or to every one ("*"); admin > operator > viewer.
 */
import type { RoleGrant } from "./session";

const RANK: Record<string, number> = { viewer: 1, operator: 2, admin: 3 };

/** The strongest role the grants give on `application` ("" = none). */
export function roleOn(roles: readonly RoleGrant[], application: string): string {
  let best = "";
  for (const g of roles) {
    if (g.application !== "*" && g.application !== application) continue;
    if ((RANK[g.role] ?? 0) > (RANK[best] ?? 0)) best = g.role;
  }
  return best;
}

/** True when the grants allow changing `application` (operator or admin there, or on "*"). */
export function mayChange(roles: readonly RoleGrant[], application: string): boolean {
  return (RANK[roleOn(roles, application)] ?? 0) >= RANK.operator!;
}
