/**
 * Server-side sessions of the admin app.
 *
 * The browser holds only a random session id (cookie, HttpOnly,
 * SameSite=Strict); the registry token it maps to stays here and is never
 * sent to the browser. Sessions live in memory: an admin restart logs
 * everyone out (they log in again), and several admin processes behind one
 * name need sticky sessions.
 *
 * The map is keyed by sha256(session id), not by the id itself, so that a
 * lookup's timing says nothing about stored ids and a heap dump holds no
 * usable cookie.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

export interface RoleGrant {
  application: string;
  role: string;
}

export interface AdminSession {
  /** The registry's login token (secret; never leaves the admin process). */
  readonly token: string;
  readonly user: string;
  readonly roles: RoleGrant[];
  /** Synchronizer token sent back in `x-csrf-token` on every mutating request. */
  readonly csrfToken: string;
  /** ms since the epoch when the registry token expires (0 = the registry gave none). */
  readonly expiresAt: number;
  lastUsedAt: number;
}

export interface SessionStoreOptions {
  /** A session unused for this long ends, ms. */
  idleMs: number;
  /** Most sessions held at once; the least recently used is dropped first. */
  maxSessions: number;
  /** Clock, ms (tests). */
  now?: () => number;
}

function keyOf(id: string): string {
  return createHash("sha256").update(id).digest("base64url");
}

export class SessionStore {
  // Insertion order = least recently used first (an entry is re-inserted on use).
  private readonly byKey = new Map<string, AdminSession>();
  private readonly now: () => number;

  constructor(private readonly options: SessionStoreOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Stores a new session; returns its id (32 random bytes, base64url), to be put in the cookie. */
  create(fields: { token: string; user: string; roles: RoleGrant[]; expiresAt: number }): { id: string; session: AdminSession } {
    const id = randomBytes(32).toString("base64url");
    const session: AdminSession = { ...fields, csrfToken: randomBytes(32).toString("base64url"), lastUsedAt: this.now() };
    this.byKey.set(keyOf(id), session);
    while (this.byKey.size > this.options.maxSessions) {
      const oldest = this.byKey.keys().next().value as string;
      this.byKey.delete(oldest);
    }
    return { id, session };
  }

  /** The live session of an id (and marks it used), or undefined when unknown, idle too long or its token expired. */
  get(id: string | undefined): AdminSession | undefined {
    if (!id || id.length > 128) return undefined;
    const key = keyOf(id);
    const s = this.byKey.get(key);
    if (!s) return undefined;
    const now = this.now();
    if (now - s.lastUsedAt > this.options.idleMs || (s.expiresAt > 0 && now >= s.expiresAt)) {
      this.byKey.delete(key);
      return undefined;
    }
    s.lastUsedAt = now;
    this.byKey.delete(key);
    this.byKey.set(key, s);
    return s;
  }

  /** Ends a session. Idempotent. */
  delete(id: string | undefined): AdminSession | undefined {
    if (!id) return undefined;
    const key = keyOf(id);
    const s = this.byKey.get(key);
    this.byKey.delete(key);
    return s;
  }

  /** Drops idle and expired sessions (called periodically). */
  sweep(): void {
    const now = this.now();
    for (const [key, s] of this.byKey) {
      if (now - s.lastUsedAt > this.options.idleMs || (s.expiresAt > 0 && now >= s.expiresAt)) this.byKey.delete(key);
    }
  }

  get size(): number {
    return this.byKey.size;
  }
}

/** Constant-time string compare (false for different lengths without comparing contents). */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
