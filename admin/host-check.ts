/**
 * The Host allow-list: every request must name this app by an address it
 * answers to, before anything else runs.
 *
 * Why: the Origin check of mutating requests (csrf.ts) compares the Origin
 * with this app's own origin, and "own" comes from the request's Host. A
 * DNS-rebinding page (a name the attacker controls, re-pointed at the admin
 * app's address) sends `Host: evil.example` and `Origin: http://evil.example`,
 * which agree with each other. A Host outside the list is refused (403
 * ADMIN_HOST_NOT_ALLOWED), so such a page gets nothing, not even a GET.
 *
 * Allowed without configuration: IP literals (a rebinding page always has a
 * name, never an IP, as its origin), `localhost`, and this machine's host
 * name; `allowedHosts` (`--allowed-hosts`, SGRID_ADMIN_ALLOWED_HOSTS) adds the
 * names people use (`admin.example.com`). Names compare without the port and
 * case-insensitively.
 */
import { isIP } from "node:net";
import * as os from "node:os";
import type { Next } from "koa";
import type { AdminContext } from "./context";
import { AdminHostNotAllowedError } from "./errors";

/** `host[:port]`, `[v6]:port` -> the host, lower-case, without brackets. */
export function hostOnly(hostHeader: string): string {
  const h = hostHeader.trim().toLowerCase();
  const bracket = /^\[([^\]]+)\](?::\d+)?$/.exec(h);
  if (bracket) return bracket[1]!;
  const colon = h.lastIndexOf(":");
  // One colon: host:port. More: a bare IPv6 address (no port).
  return colon > 0 && h.indexOf(":") === colon ? h.slice(0, colon) : h;
}

export class HostAllowList {
  private readonly names: Set<string>;

  constructor(allowedHosts: readonly string[]) {
    this.names = new Set(["localhost", os.hostname().toLowerCase(), ...allowedHosts.map(hostOnly)].filter((n) => n !== ""));
  }

  allows(hostHeader: string): boolean {
    const host = hostOnly(hostHeader);
    if (host === "") return false;
    return isIP(host) !== 0 || this.names.has(host) || this.names.has(host.replace(/\.$/, ""));
  }

  /** Koa middleware: 403 for a Host outside the list. */
  middleware() {
    return async (ctx: AdminContext, next: Next): Promise<void> => {
      const host = ctx.host;
      if (!this.allows(host)) {
        throw new AdminHostNotAllowedError(
          `this admin app does not answer to the host name "${host.slice(0, 253)}": add it with --allowed-hosts (SGRID_ADMIN_ALLOWED_HOSTS) if it is yours`,
        );
      }
      await next();
    };
  }
}
