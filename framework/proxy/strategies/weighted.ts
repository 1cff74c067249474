import type { Endpoint } from "../../endpoint";
import type { LoadBalancer } from "./base";

/**
 * Smooth weighted round-robin (as in nginx): over any window each endpoint
 * gets calls in proportion to its weight, interleaved rather than in bursts.
 * An endpoint with weight 0 gets no calls unless it is the only candidate.
 */
export class WeightedBalancer implements LoadBalancer {
  readonly name = "weighted";
  private current = new Map<Endpoint, number>();
  update(endpoints: readonly Endpoint[]): void {
    const next = new Map<Endpoint, number>();
    for (const ep of endpoints) next.set(ep, this.current.get(ep) ?? 0);
    this.current = next;
  }
  pick(candidates: readonly Endpoint[]): Endpoint {
    let total = 0;
    let best: Endpoint | undefined;
    let bestValue = -Infinity;
    for (const ep of candidates) {
      const w = Math.max(0, ep.weight);
      total += w;
      const v = (this.current.get(ep) ?? 0) + w;
      this.current.set(ep, v);
      if (v > bestValue) { bestValue = v; best = ep; }
    }
    if (!best || total === 0) return candidates[0]!;
    this.current.set(best, bestValue - total);
    return best;
  }
}
