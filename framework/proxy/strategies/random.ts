import type { Endpoint } from "../../endpoint";
import type { LoadBalancer } from "./base";

/** Uniformly random endpoint per call. */
export class RandomBalancer implements LoadBalancer {
  readonly name = "random";
  update(): void { /* stateless */ }
  pick(candidates: readonly Endpoint[]): Endpoint {
    return candidates[Math.floor(Math.random() * candidates.length)]!;
  }
}
