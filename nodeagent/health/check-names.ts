/**
 * The names health checks are known by: built-ins "http", "tcp" and
 * "grpc", plus any registered at run time. Kept apart from index.ts (which
 * re-exports it) so that the monitor can use it without an import cycle.
 */
import type { HealthCheck } from "./base";
import { grpcCheck } from "./grpc";
import { httpCheck } from "./http";
import { tcpCheck } from "./tcp";

const checks = new Map<string, HealthCheck>([
  [httpCheck.name, httpCheck],
  [tcpCheck.name, tcpCheck],
  [grpcCheck.name, grpcCheck],
]);

/** Registers (or replaces) a check under `name`. */
export function register(name: string, check: HealthCheck): void {
  if (typeof check?.check !== "function") throw new TypeError(`health check "${name}" has no check() method`);
  checks.set(name, check);
}

/** A check by name, or the check itself. Throws TypeError on an unknown name. */
export function resolve(nameOrCheck: string | HealthCheck): HealthCheck {
  if (typeof nameOrCheck !== "string") {
    if (typeof nameOrCheck?.check !== "function") throw new TypeError("not a health check: it has no check() method");
    return nameOrCheck;
  }
  const found = checks.get(nameOrCheck);
  if (!found) throw new TypeError(`unknown health check "${nameOrCheck}" (known: ${[...checks.keys()].join(", ")})`);
  return found;
}

/** Names of the registered checks. */
export function registered(): string[] {
  return [...checks.keys()];
}
