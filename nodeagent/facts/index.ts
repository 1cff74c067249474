/**
 * Public surface of the node agent's facts: what a node reports about
 * itself with each heartbeat.
 */
export { collectNodeFacts, hostSample, bootId, memAvailable, type NodeFacts, type NodeFactsOptions } from "./node-facts";
export { readDisks, parseMounts, diskMounts, PSEUDO_FILESYSTEMS, type DiskFacts, type MountEntry } from "./mounts";
export { agentVersion, PACKAGE_NAME } from "./agent-version";
