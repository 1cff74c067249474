/**
 * Load-balancing strategies: given the usable endpoints of one Obj and the
 * call's hash key, pick one. A strategy instance belongs to one proxy and may
 * keep state (round-robin position, hash ring); `update` is called whenever
 * the endpoint list changes, never concurrently with `pick`.
 */
import type { Endpoint } from "../../endpoint";

export interface PickContext {
  /** Per-call key for hash strategies (CallOptions.hashKey). */
  readonly hashKey?: string;
}

export interface LoadBalancer {
  readonly name: string;
  /** The endpoint list changed (order is stable: sorted by key). */
  update(endpoints: readonly Endpoint[]): void;
  /** Picks from `candidates` (a subset of the last update, never empty). */
  pick(candidates: readonly Endpoint[], ctx: PickContext): Endpoint;
}

export type LoadBalancerFactory = () => LoadBalancer;

/**
 * FNV-1a 32-bit followed by murmur3's fmix32 finaliser (FNV alone spreads
 * similar strings such as "10.0.0.1#7" poorly on a ring). Stable across
 * processes and releases: hash routing depends on it.
 */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
