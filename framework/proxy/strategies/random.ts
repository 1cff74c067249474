import type { Endpoint } from "../../endpoint";
import type { LoadBalancer } from "./base";
import { sameWeights } from "./round-robin";

/** A random endpoint per call: uniform, or in proportion to the weights when they differ. */
export class RandomBalancer implements LoadBalancer {
  readonly name = "random";
  update(): void { /* stateless */ }
  pick(candidates: readonly Endpoint[]): Endpoint {
    if (sameWeights(candidates)) return candidates[Math.floor(Math.random() * candidates.length)]!;
    let total = 0;
    for (const ep of candidates) total += Math.max(0, ep.weight);
    if (total === 0) return candidates[0]!;
    let r = Math.random() * total;
    for (const ep of candidates) {
      r -= Math.max(0, ep.weight);
      if (r < 0) return ep;
    }
    return candidates[candidates.length - 1]!;
  }
}
