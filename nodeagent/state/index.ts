/**
 * The node agent's durable state (written atomically, re-read at start).
 */
export { StateStore, type StateStoreOptions, type AgentStateFile, STATE_STORE_DEFAULTS } from "./state-store";
export { writeStateFile } from "./write-state-file";
