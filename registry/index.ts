/**
 * Public surface of the registry (`sgridnext/registry`). Code outside
 * `registry/` imports from here only.
 */

// ---- the registry process ------------------------------------------------------
export * from "./server";

// ---- Query ------------------------------------------------------------------------
export { queryPart, QUERY_OBJ, EndpointCache, ENDPOINT_CACHE_DEFAULTS, QueryImpl, answerRevision } from "./query";

// ---- node sessions -------------------------------------------------------------------
export { NodeSessionHub, NODE_SESSION_DEFAULTS, nodePart, type NodeSessionHubOptions } from "./node";

// ---- config, patches and package storage -----------------------------------------------
export { DatabaseStorage, DATABASE_STORAGE_DEFAULTS, importDiskPackages, mergeConfig, configPart, patchPart } from "./services";

// ---- admin: authentication, Admin API, tasks ---------------------------------------------
export { createAuthenticator, AUTH_DEFAULTS, TaskRunner, TASK_RUNNER_DEFAULTS, adminPart, type RegistryAuthenticator } from "./admin";

// ---- errors -----------------------------------------------------------------------------------
export * from "./errors";

// ---- storage ------------------------------------------------------------------------------------
export { openStore, redactUrl, type RegistryStore } from "./store";
