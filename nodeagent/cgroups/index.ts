/**
 * The cgroup backend family: v2, v1 and none, chosen once at start by
 * {@link detectCgroups}, or named explicitly through {@link resolve}.
 * {@link register} adds another backend (a test double, or a future one).
 */
import type { CgroupBackend } from "./base";
import { CgroupV2Backend, type CgroupV2Options } from "./v2";
import { CgroupV1Backend, type CgroupV1Options } from "./v1";
import { NoCgroupBackend } from "./none";

export {
  type CgroupBackend, type CgroupBackendName, type CgroupLimits, type CgroupUsage,
  assertInstanceId, assertLimits, cpuQuotaUs, CPU_PERIOD_US,
} from "./base";
export { CgroupV2Backend, type CgroupV2Options, V2_CONTROLLERS } from "./v2";
export { CgroupV1Backend, type CgroupV1Options, type CgroupV1Mounts, V1_REQUIRED } from "./v1";
export { NoCgroupBackend } from "./none";
export { detectCgroups, parseCgroupMounts, DETECT_DEFAULTS, type DetectCgroupsOptions, type CgroupMount } from "./detect";

/** Builds a backend from backend-specific options. */
export type CgroupBackendFactory = (options: Record<string, unknown>) => CgroupBackend;

const factories = new Map<string, CgroupBackendFactory>([
  ["v2", (o) => new CgroupV2Backend(o as unknown as CgroupV2Options)],
  ["v1", (o) => new CgroupV1Backend(o as unknown as CgroupV1Options)],
  ["none", (o) => new NoCgroupBackend(typeof o.drainTimeoutMs === "number" ? o.drainTimeoutMs : undefined)],
]);

/** Registers (or replaces) a backend factory under `name`. */
export function register(name: string, factory: CgroupBackendFactory): void {
  if (typeof factory !== "function") throw new TypeError("cgroup backend factory must be a function");
  factories.set(name, factory);
}

/**
 * A backend from its name (with its options) or, given a backend instance,
 * that instance. Throws TypeError for an unknown name.
 */
export function resolve(nameOrBackend: string | CgroupBackend, options: Record<string, unknown> = {}): CgroupBackend {
  if (typeof nameOrBackend !== "string") return nameOrBackend;
  const factory = factories.get(nameOrBackend);
  if (!factory) throw new TypeError(`unknown cgroup backend "${nameOrBackend}" (known: ${[...factories.keys()].join(", ")})`);
  return factory(options);
}
