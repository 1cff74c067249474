import type { Endpoint } from "../../endpoint";
import { fnv1a, type LoadBalancer, type PickContext } from "./base";
import { RoundRobinBalancer } from "./round-robin";

/**
 * Hash of the per-call key modulo the number of endpoints (Tars' "hash"
 * call). Stable for a key while the list is unchanged; adding an endpoint
 * moves most keys — use consistent-hash where that matters. Calls without a
 * key fall back to round-robin.
 */
export class HashBalancer implements LoadBalancer {
  readonly name = "hash";
  private readonly fallback = new RoundRobinBalancer();
  private all: readonly Endpoint[] = [];
  update(endpoints: readonly Endpoint[]): void { this.all = endpoints; }
  pick(candidates: readonly Endpoint[], ctx: PickContext): Endpoint {
    if (ctx.hashKey === undefined) return this.fallback.pick(candidates);
    // Hash over the full list so that one endpoint set aside does not remap every key.
    const list = this.all.length > 0 ? this.all : candidates;
    const chosen = list[fnv1a(ctx.hashKey) % list.length]!;
    if (candidates.includes(chosen)) return chosen;
    return candidates[fnv1a(ctx.hashKey) % candidates.length]!;
  }
}
