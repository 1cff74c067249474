/**
 * The load-balancing family. Built in: `round-robin` (default), `random`,
 * `hash`, `consistent-hash`, `weighted`. Register more with `register`.
 */
import type { LoadBalancer, LoadBalancerFactory } from "./base";
import { ConsistentHashBalancer } from "./consistent-hash";
import { HashBalancer } from "./hash";
import { RandomBalancer } from "./random";
import { RoundRobinBalancer } from "./round-robin";
import { WeightedBalancer } from "./weighted";

export type { LoadBalancer, LoadBalancerFactory, PickContext } from "./base";
export { fnv1a } from "./base";

const factories = new Map<string, LoadBalancerFactory>([
  ["round-robin", () => new RoundRobinBalancer()],
  ["random", () => new RandomBalancer()],
  ["hash", () => new HashBalancer()],
  ["consistent-hash", () => new ConsistentHashBalancer()],
  ["weighted", () => new WeightedBalancer()],
]);

/** Adds or replaces a strategy by name. */
export function register(name: string, factory: LoadBalancerFactory): void {
  factories.set(name, factory);
}

/** A new balancer from a name or an instance. Throws TypeError for an unknown name. */
export function resolve(nameOrInstance: string | LoadBalancer | undefined): LoadBalancer {
  if (nameOrInstance === undefined) return new RoundRobinBalancer();
  if (typeof nameOrInstance !== "string") return nameOrInstance;
  const f = factories.get(nameOrInstance);
  if (!f) throw new TypeError(`unknown load-balancing strategy "${nameOrInstance}" (known: ${[...factories.keys()].join(", ")})`);
  return f();
}

export function strategyNames(): string[] {
  return [...factories.keys()];
}
