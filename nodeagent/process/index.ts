/**
 * Servant processes: launch into a cgroup, adopt after an agent restart,
 * watch for exits, stop gracefully; plus the agent's systemd unit.
 */

// ---- the wrangler --------------------------------------------------------------
export {
  ProcessWrangler, type ProcessWranglerOptions, WRANGLER_DEFAULTS,
  type StopOptions, STOP_DEFAULTS, ENTER_CGROUP_SCRIPT, ENTER_CGROUP_FAILED,
} from "./wrangler";
export { type SpawnSpec, type ProcessHandle, validateSpawnSpec, DEFAULT_PATH } from "./spawn-spec";
export { type ExitInfo, describeExit, exitInfo } from "./exit-info";

// ---- /proc ---------------------------------------------------------------------
export {
  type ProcStat, parseProcStat, readProcStat, readBootId, isLive, isPidLive, listPids, readRssBytes, USER_HZ,
} from "./proc-stat";

// ---- systemd -------------------------------------------------------------------
export { printSystemdUnit, type SystemdUnitOptions, SYSTEMD_UNIT_DEFAULTS } from "./systemd-unit";
