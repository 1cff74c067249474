import type { Endpoint } from "../../endpoint";
import type { LoadBalancer } from "./base";

/** The default: each call goes to the next endpoint. */
export class RoundRobinBalancer implements LoadBalancer {
  readonly name = "round-robin";
  private next = 0;
  update(): void { /* position kept; wraps on the new length */ }
  pick(candidates: readonly Endpoint[]): Endpoint {
    const ep = candidates[this.next % candidates.length]!;
    this.next = (this.next + 1) % 0x7fffffff;
    return ep;
  }
}
