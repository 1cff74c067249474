/**
 * Per-client rate limits of the gateway's fronts (gRPC and HTTP share one): one token bucket per (route,
 * client) key, refilled at `perSecond` up to `burst` (default: one second's
 * worth). Decides only; time is injected so tests need no clock.
 *
 * The map is bounded: past `maxKeys` the least recently used key goes, so a
 * flood of new client addresses cannot grow memory (a forgotten client comes
 * back with a full bucket, which errs on the side of serving it).
 */
import type { RateLimitRule, RouteRule } from "./routes";

export const RATE_LIMIT_DEFAULTS = Object.freeze({ maxKeys: 100_000 });

interface Bucket {
  tokens: number;
  at: number;
}

/** A client's address without its port: `127.0.0.1:5000`, `[::1]:5000`, `ipv4:…` (grpc-js peers) or a bare address. */
export function peerAddress(peer: string | undefined): string {
  if (!peer) return "";
  const p = peer.replace(/^ipv[46]:/, "");
  const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(p);
  if (v6) return v6[1]!;
  const v4 = /^([^:]+):\d+$/.exec(p);
  return v4 ? v4[1]! : p;
}

/** The bucket of one client on one route; IPv4-mapped IPv6 addresses count as their IPv4 address. */
export function clientKey(rule: RouteRule, address: string | undefined): string {
  return `${rule.service}\0${peerAddress(address).replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, "")}`;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly now: () => number;
  private readonly maxKeys: number;

  constructor(options: { now?: () => number; maxKeys?: number } = {}) {
    this.now = options.now ?? (() => performance.now());
    this.maxKeys = options.maxKeys ?? RATE_LIMIT_DEFAULTS.maxKeys;
  }

  /**
   * Takes one token for `key` under `rule`: 0 when the call may go, else the
   * ms until a token will be there (the caller answers RESOURCE_EXHAUSTED /
   * 429 with Retry-After).
   */
  take(key: string, rule: RateLimitRule): number {
    const burst = rule.burst ?? Math.max(1, Math.ceil(rule.perSecond));
    const now = this.now();
    const b = this.buckets.get(key) ?? { tokens: burst, at: now };
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * rule.perSecond);
    b.at = now;
    // Most recently used last, so the first key is the one to forget.
    this.buckets.delete(key);
    this.buckets.set(key, b);
    while (this.buckets.size > this.maxKeys) this.buckets.delete(this.buckets.keys().next().value as string);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - b.tokens) / rule.perSecond) * 1000);
  }

  /** Forgets every bucket (routes reloaded with other limits). */
  clear(): void {
    this.buckets.clear();
  }

  get size(): number {
    return this.buckets.size;
  }
}
