/**
 * Public surface of the Sgrid node agent. Code outside `nodeagent/` imports
 * from here only.
 */

// ---- errors ----------------------------------------------------------------------
export * from "./errors";

// ---- cgroups ---------------------------------------------------------------------
export {
  type CgroupBackend, type CgroupBackendName, type CgroupLimits, type CgroupUsage, type CgroupBackendFactory,
  CgroupV2Backend, type CgroupV2Options, CgroupV1Backend, type CgroupV1Options, type CgroupV1Mounts, NoCgroupBackend,
  detectCgroups, type DetectCgroupsOptions, DETECT_DEFAULTS, parseCgroupMounts,
  resolve as resolveCgroupBackend, register as registerCgroupBackend, assertInstanceId,
} from "./cgroups";

// ---- processes -------------------------------------------------------------------
export {
  ProcessWrangler, type ProcessWranglerOptions, WRANGLER_DEFAULTS, type StopOptions, STOP_DEFAULTS,
  type SpawnSpec, type ProcessHandle, type ExitInfo, validateSpawnSpec, describeExit,
  readProcStat, readBootId, isPidLive, type ProcStat,
  printSystemdUnit, type SystemdUnitOptions, SYSTEMD_UNIT_DEFAULTS,
} from "./process";

// ---- durable state ----------------------------------------------------------------
export { StateStore, type StateStoreOptions, writeStateFile } from "./state";

// ---- supervision ------------------------------------------------------------------
export * from "./supervisor";

// ---- install, launch, logs, health, facts (used by the agent process and tests) ----------------
export * as install from "./install";
export * as launch from "./launch";
export * as logs from "./logs";
export * as health from "./health";
export * as facts from "./facts";

// ---- the agent process (`sgrid node`) --------------------------------------------------
export * from "./agent";
