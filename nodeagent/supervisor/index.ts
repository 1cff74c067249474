/**
 * Supervision: the per-instance state machine, its lifecycle hooks, the
 * restart policy, and the node-wide manager that persists and re-adopts.
 */

// ---- node-wide -------------------------------------------------------------------
export { NodeSupervisor, type NodeSupervisorOptions } from "./node-supervisor";

// ---- one instance ----------------------------------------------------------------
export { InstanceSupervisor, type InstanceSupervisorDeps } from "./instance-supervisor";
export {
  type DesiredSpec, type HealthSpec, type InstanceState, type ObservedState, type InstanceRecord,
  validateDesiredSpec, needsRestart, changedInPlace,
} from "./desired-spec";
export {
  type SupervisorOptions, type ResolvedSupervisorOptions, type HealthProbe, type HealthCheckFactory, type HealthTimings,
  SUPERVISOR_DEFAULTS, resolveSupervisorOptions,
} from "./options";

// ---- restart policy ----------------------------------------------------------------
export { RestartTracker, type RestartPolicy, type RestartDecision, RESTART_DEFAULTS, restartPolicy } from "./restart-tracker";

// ---- lifecycle hooks ----------------------------------------------------------------
export type { HookContext, LifecycleHook } from "./hooks/base";
export { runProbe } from "./hooks/health-hook";
