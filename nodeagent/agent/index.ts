/**
 * The `sgrid node` process: the registry session, the local servant
 * channel, the mapping of desired state to installs and launch specs, and
 * the NodeAgent that joins them to the supervisor.
 */

// ---- errors ----------------------------------------------------------------------
export * from "./errors";

// ---- the agent ---------------------------------------------------------------------
export { NodeAgent, healthCheckFactory, TAIL_LOG_DEFAULT_LINES } from "./node-agent";
export { type NodeAgentOptions, type ResolvedNodeAgentOptions, NODE_AGENT_DEFAULTS, resolveNodeAgentOptions, defaultAddress } from "./options";

// ---- registry session and local channel -----------------------------------------------
export { RegistrySession, type RegistrySessionOptions, SESSION_DEFAULTS } from "./registry-session";
export { LocalChannelServer, type LocalChannelOptions, type CommandOutcome, LOCAL_CHANNEL_DEFAULTS, tokensEqual } from "./local-channel";

// ---- desired and observed mapping ---------------------------------------------------------
export {
  toDesiredSpec, instanceKey, patchVersion, serverType, adapterSpecs, healthSpec, logFiles, type MapContext,
} from "./desired-mapper";
export { toInstanceObserved, classifyEvent, wireState, wireVersion, type ObservedEvent, type ObservedExtras } from "./observed-mapper";
export { resolveRunAs, type RunAs } from "./run-as";
