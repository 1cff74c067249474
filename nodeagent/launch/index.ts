/**
 * Public surface of the node agent's launch pieces: the servant environment
 * contract and the spawn spec (command, args, cwd, env) per server type.
 */

// ---- errors --------------------------------------------------------------------
export * from "./errors";

// ---- environment contract ------------------------------------------------------------
export {
  ENV_CONTRACT_KEYS, DEFAULT_INHERITED_ENV, buildServantEnv, adaptersJson, fullObjName, hostPort,
  type EnvContractKey, type AdapterProtocol, type AdapterSpec, type ServantEnvInput,
} from "./env";

// ---- launch spec -----------------------------------------------------------------------
export { buildLaunchSpec, type LaunchSpec, type LaunchInput, type InstanceLaunchConfig, type NodeContext } from "./launch-spec";
