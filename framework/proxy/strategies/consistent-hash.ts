import { endpointKey, type Endpoint } from "../../endpoint";
import { fnv1a, type LoadBalancer, type PickContext } from "./base";
import { RoundRobinBalancer } from "./round-robin";

/** Virtual nodes per endpoint (per 100 weight); 160 is what Ketama and Tars use. */
const VNODES = 160;

/**
 * Consistent hashing on a ring of virtual nodes: adding or removing one of N
 * endpoints moves about 1/N of the keys. An unusable endpoint's keys go to
 * the next usable point on the ring. Calls without a key use round-robin.
 */
export class ConsistentHashBalancer implements LoadBalancer {
  readonly name = "consistent-hash";
  private readonly fallback = new RoundRobinBalancer();
  private points = new Uint32Array(0);
  private owners: Endpoint[] = [];

  update(endpoints: readonly Endpoint[]): void {
    const ring: Array<[number, Endpoint]> = [];
    for (const ep of endpoints) {
      const key = endpointKey(ep);
      const n = Math.max(1, Math.round((VNODES * ep.weight) / 100));
      for (let i = 0; i < n; i++) ring.push([fnv1a(`${key}#${i}`), ep]);
    }
    ring.sort((a, b) => a[0] - b[0]);
    this.points = Uint32Array.from(ring.map((r) => r[0]));
    this.owners = ring.map((r) => r[1]);
  }

  pick(candidates: readonly Endpoint[], ctx: PickContext): Endpoint {
    if (ctx.hashKey === undefined || this.points.length === 0) return this.fallback.pick(candidates);
    const h = fnv1a(ctx.hashKey);
    let lo = 0;
    let hi = this.points.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.points[mid]! < h) lo = mid + 1; else hi = mid;
    }
    const usable = new Set(candidates);
    for (let i = 0; i < this.owners.length; i++) {
      const owner = this.owners[(lo + i) % this.owners.length]!;
      if (usable.has(owner)) return owner;
    }
    return candidates[h % candidates.length]!;
  }
}
