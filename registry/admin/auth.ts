/**
 * Authentication and authorisation of the registry's callers.
 *
 * - People (Admin and Patch APIs) log in with a user name and password and
 *   get a login token: 32 random bytes (base64url), sent back as metadata
 *   `authorization: Bearer <token>`. The database keeps only its sha256, with
 *   an expiry (default 12 h, AUTH_DEFAULTS.tokenTtlMs: one working day, so a
 *   person logs in once a day and a stolen token is not good for long). Any
 *   registry process sharing the database accepts it.
 * - Roles: admin > operator > viewer, granted per application or on `*`
 *   (every application). A grant on `*` covers all applications; managing
 *   users needs admin on `*`.
 * - Agents (NodeSession) present the cluster token, compared in constant
 *   time. When no cluster token is configured, only loopback peers are
 *   accepted (`sgrid up` and tests work with no setup; a node on another
 *   machine is refused with a message saying to set SGRID_CLUSTER_TOKEN),
 *   and a warning is logged once at start. We refuse rather than accept
 *   with a warning because an unauthenticated node session can register
 *   arbitrary nodes and read every instance's env (which may hold secrets).
 * - Query and Config reads are open unless a query token is configured; then
 *   the query token (or the cluster token) is required.
 *
 * Login attempts are rate-limited in memory, per registry process, by the
 * client's address: after AUTH_DEFAULTS.maxFailures (5) failed attempts
 * within AUTH_DEFAULTS.failureWindowMs (1 min) for one user name from one
 * address, or AUTH_DEFAULTS.maxPeerFailures (20) from one address, further
 * attempts from that address get RESOURCE_EXHAUSTED until the window moves
 * on. Other addresses are never refused by them, so nobody can lock a user
 * out by failing on purpose. The address is the connecting host, or, for a
 * caller presenting the admin app token (`x-sgrid-admin-app`), the browser's
 * address it forwards in `x-forwarded-for` (an unauthenticated caller cannot
 * choose the address it is counted under).
 * A wrong user and a wrong password give the same UNAUTHENTICATED message and
 * take the same time (a dummy hash is checked for unknown users).
 *
 * Verified tokens are cached in memory for AUTH_DEFAULTS.cacheMs (5 s) to
 * keep the per-call cost at zero queries; a logout on this process evicts at
 * once, a logout, user deletion or role change made through another process
 * takes effect within that time.
 *
 * Degraded mode: while the database cannot be read, a token this process
 * verified within AUTH_DEFAULTS.outageTrustMs (1 h) and not expired is
 * still accepted, with the user and roles it had then; any other token is
 * refused with DATABASE_UNAVAILABLE (it cannot be checked), and so is a
 * login. A token is never accepted on the strength of an error.
 */
import { isIP } from "node:net";
import {
  ADMIN_APP_METADATA, InvalidArgumentError, PeriodicTask, PermissionDeniedError, ResourceExhaustedError, UnauthenticatedError,
  type Logger, type ServerContext,
} from "sgridnext";
import { DatabaseUnavailableError } from "../errors";
import type { AuthUser, Authenticator, RegistrySettings } from "../server/context";
import type { RegistryStore } from "../store";
import { ROLES, type Role, type UserRecord } from "../store/records";
import { dummyPasswordHash, hashPassword, newSecret, safeEqual, tokenHash, verifyPassword } from "./passwords";

export interface AuthOptions {
  tokenTtlMs: number;
  maxFailures: number;
  maxPeerFailures: number;
  failureWindowMs: number;
  cacheMs: number;
  outageTrustMs: number;
  pruneIntervalMs: number;
  firstAdmin: string;
}

export const AUTH_DEFAULTS: Readonly<AuthOptions> = Object.freeze({
  /** Lifetime of a login token, ms. 12 h. */
  tokenTtlMs: 12 * 60 * 60 * 1000,
  /** Failed logins allowed per user name within the window. */
  maxFailures: 5,
  /** Failed logins allowed per client address (any user names) within the window. */
  maxPeerFailures: 20,
  /** Sliding window for counting failed logins, ms. 1 min. */
  failureWindowMs: 60_000,
  /** How long a verified token is trusted without asking the database, ms. */
  cacheMs: 5_000,
  /** While the database cannot be read, a token verified within this long is still accepted (degraded mode), ms. 1 h. */
  outageTrustMs: 60 * 60 * 1000,
  /** How often expired login sessions are deleted, ms. 10 min. */
  pruneIntervalMs: 10 * 60 * 1000,
  /** Name of the first user, created when the users table is empty. */
  firstAdmin: "admin",
});


/** Rank of each role; a higher rank includes the lower ones. */
const RANK: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 };

/** True when `roles` give at least `role` on `application` (a `*` grant covers every application). */
export function hasRole(user: Pick<AuthUser, "roles">, role: Role, application?: string): boolean {
  const want = RANK[role];
  return user.roles.some((g) => RANK[g.role] >= want && (g.application === "*" || (application !== undefined && g.application === application)));
}

/** The Bearer token of a call, or undefined. */
export function bearerToken(ctx: Pick<ServerContext, "metadata">): string | undefined {
  const raw = ctx.metadata["authorization"];
  if (typeof raw !== "string") return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(raw);
  return m ? m[1] : undefined;
}

/** Host part of a `host:port` / `[v6]:port` peer string. */
export function peerHost(peer: string): string {
  let host = peer.replace(/^(ipv4|ipv6):/, "");
  const bracket = /^\[([^\]]+)\](?::\d+)?$/.exec(host);
  if (bracket) host = bracket[1]!;
  else if (/:\d+$/.test(host) && isIP(host.slice(0, host.lastIndexOf(":"))) !== 0) host = host.slice(0, host.lastIndexOf(":"));
  if (host.toLowerCase().startsWith("::ffff:") && isIP(host.slice(7)) === 4) host = host.slice(7);
  return host;
}

/** True for 127.0.0.0/8, ::1, and non-IP peers of local sockets. */
export function isLoopbackPeer(peer: string): boolean {
  const host = peerHost(peer);
  if (host === "::1" || host === "localhost") return true;
  if (isIP(host) === 4) return host.startsWith("127.");
  // Unix sockets and in-process transports have no IP peer.
  return isIP(host) === 0 && !host.includes(".");
}

/** Sliding-window failure counter per key; bounded in size. */
class FailureCounter {
  private readonly hits = new Map<string, number[]>();
  constructor(private readonly windowMs: number, private readonly max: number, private readonly maxKeys = 10_000) {}

  private recent(key: string, now: number): number[] {
    const list = (this.hits.get(key) ?? []).filter((t) => now - t < this.windowMs);
    if (list.length === 0) this.hits.delete(key);
    else this.hits.set(key, list);
    return list;
  }

  blocked(key: string, now: number): boolean {
    return this.recent(key, now).length >= this.max;
  }

  add(key: string, now: number): void {
    const list = this.recent(key, now);
    list.push(now);
    this.hits.delete(key);
    this.hits.set(key, list);
    // Oldest keys go first when an attacker sprays names.
    while (this.hits.size > this.maxKeys) this.hits.delete(this.hits.keys().next().value as string);
  }

  clear(key: string): void {
    this.hits.delete(key);
  }
}

function toAuthUser(u: UserRecord): AuthUser {
  return { name: u.name, roles: u.roles.map((g) => ({ application: g.application, role: g.role })) };
}

export interface AuthenticatorDeps {
  store: RegistryStore;
  settings: RegistrySettings;
  log: Logger;
  /** SGRID_CLUSTER_TOKEN: what agents present. */
  clusterToken?: string;
  /** SGRID_QUERY_TOKEN: when set, Query and Config reads need it. */
  queryToken?: string;
  /** SGRID_ADMIN_APP_TOKEN: an admin app presenting it may forward the browser's address. */
  adminAppToken?: string;
  /** SGRID_ADMIN_PASSWORD: password of the first admin; generated and printed once when missing. */
  adminPassword?: string;
  /** Overrides of AUTH_DEFAULTS (tests, flags). */
  options?: Partial<AuthOptions>;
  /** Where the generated first password is printed (default: process.stdout). */
  print?: (line: string) => void;
}

export type RegistryAuthenticator = Authenticator & {
  init(): Promise<void>;
  close(): void;
  /** The address a login is counted under (see the file comment). */
  clientAddress(ctx: Pick<ServerContext, "peer" | "metadata">): string;
  login(user: string, password: string, address?: string): Promise<{ token: string; expiresAt: number; user: AuthUser }>;
  logout(token: string): Promise<void>;
  /** Evicts every cached token of a user (after a password change, deletion, role change). */
  forget(user: string): void;
};

export function createAuthenticator(deps: AuthenticatorDeps): RegistryAuthenticator {
  const opts: AuthOptions = Object.freeze({ ...AUTH_DEFAULTS, ...(deps.options ?? {}) });
  const { store, log } = deps;
  const clusterToken = deps.clusterToken ? deps.clusterToken : undefined;
  const queryToken = deps.queryToken ? deps.queryToken : undefined;
  const adminAppToken = deps.adminAppToken ? deps.adminAppToken : undefined;
  const byUser = new FailureCounter(opts.failureWindowMs, opts.maxFailures);
  const byPeer = new FailureCounter(opts.failureWindowMs, opts.maxPeerFailures);
  /** Verified tokens by hash: `verifiedAt` is when the database last said yes. */
  const cache = new Map<string, { user: AuthUser; expiresAt: number; verifiedAt: number }>();
  const sweepCache = (now: number): void => {
    for (const [k, v] of cache) if (v.expiresAt <= now || now - v.verifiedAt > opts.outageTrustMs) cache.delete(k);
  };
  const pruner = new PeriodicTask(() => {
    sweepCache(Date.now());
    return store.logins.pruneExpired(Date.now());
  }, { intervalMs: opts.pruneIntervalMs, onError: (err) => log.debug({ err }, "pruning expired login sessions failed") });
  const unauthenticated = () => new UnauthenticatedError("missing or invalid login token: log in first (metadata `authorization: Bearer <token>`)");

  async function resolveToken(token: string): Promise<AuthUser> {
    const hash = tokenHash(token);
    const now = Date.now();
    const hit = cache.get(hash);
    if (hit && hit.expiresAt > now && now - hit.verifiedAt < opts.cacheMs) return hit.user;
    let session, record;
    try {
      session = await store.logins.find(hash);
      if (session && session.expiresAt > now) record = await store.users.find(session.user);
    } catch (err) {
      if (!(err instanceof DatabaseUnavailableError)) throw err;
      // Degraded mode: only a token this process verified recently, with what it was then.
      if (hit && hit.expiresAt > now && now - hit.verifiedAt < opts.outageTrustMs) return hit.user;
      throw new DatabaseUnavailableError(`cannot check the login token: ${err.message}`, { reason: "token not verified recently by this registry" }, err);
    }
    if (!session || session.expiresAt <= now || !record) {
      cache.delete(hash);
      throw unauthenticated();
    }
    const user = toAuthUser(record);
    if (cache.size > 10_000) sweepCache(now);
    if (cache.size > 10_000) cache.clear();
    cache.set(hash, { user, expiresAt: session.expiresAt, verifiedAt: now });
    return user;
  }

  return {
    async init(): Promise<void> {
      if (!clusterToken) log.warn("no cluster token configured (SGRID_CLUSTER_TOKEN): only agents on this machine (loopback) are accepted");
      if ((await store.users.count()) === 0) {
        const generated = !deps.adminPassword;
        const password = deps.adminPassword || newSecret(18);
        try {
          await store.users.create({ name: opts.firstAdmin, passwordHash: await hashPassword(password) });
          await store.users.grant(opts.firstAdmin, "*", "admin");
          await store.events.append({ actor: "registry", kind: "user.create", target: opts.firstAdmin, message: `first user "${opts.firstAdmin}" created with role admin on *` });
          // Printed once, to stdout, never through the logger (logs are shipped and kept).
          if (generated) (deps.print ?? ((l) => process.stdout.write(l + "\n")))(`sgrid registry: created user "${opts.firstAdmin}" with password ${password} (shown once; change it with SetPassword)`);
        } catch (err) {
          // Another registry process created it at the same moment.
          if ((err as { code?: string }).code !== "ALREADY_EXISTS") throw err;
        }
      }
      await store.logins.pruneExpired(Date.now()).catch(() => undefined);
      pruner.start();
    },

    close(): void {
      void pruner.stop();
      cache.clear();
    },

    clientAddress(ctx): string {
      const peer = peerHost(ctx.peer);
      const presented = ctx.metadata[ADMIN_APP_METADATA.TOKEN];
      if (!adminAppToken || typeof presented !== "string" || !safeEqual(presented, adminAppToken)) return peer;
      const forwarded = ctx.metadata[ADMIN_APP_METADATA.FORWARDED_FOR];
      const first = typeof forwarded === "string" ? peerHost(forwarded.split(",")[0]!.trim()) : "";
      return isIP(first) !== 0 ? first : peer;
    },

    async login(userName: string, password: string, peer = "") {
      if (typeof userName !== "string" || userName.length === 0 || userName.length > 64) throw new InvalidArgumentError("invalid user name: expected 1 to 64 characters", { kind: "user" });
      if (typeof password !== "string" || password.length > 1024) throw new UnauthenticatedError("wrong user name or password");
      const now = Date.now();
      const host = peer ? peerHost(peer) : "";
      const userKey = `${userName}\0${host}`;
      if (byUser.blocked(userKey, now) || (host && byPeer.blocked(host, now))) {
        throw new ResourceExhaustedError(`too many failed logins for user "${userName}" from this address: wait a minute and try again`, { user: userName });
      }
      const record = await store.users.find(userName).catch((err) => {
        if ((err as { code?: string }).code === "INVALID_ARGUMENT") return undefined;
        if (err instanceof DatabaseUnavailableError) throw new DatabaseUnavailableError(`cannot log in now: ${err.message}`, {}, err);
        throw err;
      });
      // Same work for an unknown user as for a known one.
      const ok = await verifyPassword(password, record?.passwordHash ?? (await dummyPasswordHash()));
      if (!record || !ok) {
        byUser.add(userKey, now);
        if (host) byPeer.add(host, now);
        log.info({ user: userName, peer }, "failed login");
        throw new UnauthenticatedError("wrong user name or password");
      }
      byUser.clear(userKey);
      const token = newSecret(32);
      const expiresAt = now + opts.tokenTtlMs;
      await store.logins.create({ tokenHash: tokenHash(token), user: record.name, expiresAt });
      return { token, expiresAt, user: toAuthUser(record) };
    },

    async logout(token: string): Promise<void> {
      const hash = tokenHash(token);
      cache.delete(hash);
      await store.logins.remove(hash);
    },

    forget(user: string): void {
      for (const [k, v] of cache) if (v.user.name === user) cache.delete(k);
    },

    async requireUser(ctx, need) {
      const token = bearerToken(ctx);
      if (!token) throw unauthenticated();
      const user = await resolveToken(token);
      if (need && !hasRole(user, need.role, need.application)) {
        const on = need.application ? `application "${need.application}"` : "every application (*)";
        throw new PermissionDeniedError(`user "${user.name}" needs role ${need.role} on ${on}`, { user: user.name, role: need.role, application: need.application ?? "*" });
      }
      return user;
    },

    requireCluster(ctx): void {
      const token = bearerToken(ctx);
      if (!clusterToken) {
        if (isLoopbackPeer(ctx.peer)) return;
        throw new UnauthenticatedError(`no cluster token is configured on this registry, so only local agents are accepted (peer ${ctx.peer}): set SGRID_CLUSTER_TOKEN on the registry and the node`);
      }
      if (!token || !safeEqual(token, clusterToken)) throw new UnauthenticatedError("missing or wrong cluster token (metadata `authorization: Bearer <token>`)");
    },

    requireQuery(ctx): void {
      if (!queryToken) return;
      const token = bearerToken(ctx);
      // Both compares always run: no early exit that tells which one matched.
      const okQuery = token !== undefined && safeEqual(token, queryToken);
      const okCluster = token !== undefined && clusterToken !== undefined && safeEqual(token, clusterToken);
      if (!okQuery && !okCluster) throw new UnauthenticatedError("missing or wrong query token (metadata `authorization: Bearer <token>`)");
    },
  };
}

/** Validates a role name from the wire. */
export function parseRole(value: string): Role {
  if (!(ROLES as readonly string[]).includes(value)) throw new InvalidArgumentError(`invalid role "${value}": expected one of ${ROLES.join(", ")}`, { kind: "role", value });
  return value as Role;
}
