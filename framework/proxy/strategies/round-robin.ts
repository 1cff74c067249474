import type { Endpoint } from "../../endpoint";
import type { LoadBalancer } from "./base";
import { WeightedBalancer } from "./weighted";

/**
 * The default: each call goes to the next endpoint. When the endpoints'
 * weights differ (a canary's share of calls, an operator's choice), calls
 * follow the weights instead, interleaved (smooth weighted round-robin, as
 * Envoy's ROUND_ROBIN does once weights are set); equal weights are plain
 * round-robin.
 */
export class RoundRobinBalancer implements LoadBalancer {
  readonly name = "round-robin";
  private next = 0;
  private readonly weighted = new WeightedBalancer();
  update(endpoints: readonly Endpoint[]): void {
    // Position kept; wraps on the new length.
    this.weighted.update(endpoints);
  }
  pick(candidates: readonly Endpoint[]): Endpoint {
    if (!sameWeights(candidates)) return this.weighted.pick(candidates);
    const ep = candidates[this.next % candidates.length]!;
    this.next = (this.next + 1) % 0x7fffffff;
    return ep;
  }
}

/** True when every candidate has the same weight (the common case: no weights set). */
export function sameWeights(candidates: readonly Endpoint[]): boolean {
  const w = candidates[0]?.weight;
  for (const ep of candidates) if (ep.weight !== w) return false;
  return true;
}
