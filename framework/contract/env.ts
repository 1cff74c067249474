/**
 * The environment contract: what every servant finds in its environment,
 * set by the node agent (nodeagent/launch/env.ts builds it) and read by the
 * framework (Application, the config loader, the agent channel, metrics).
 * Both sides use these constants, never the strings.
 *
 * | key | value |
 * |---|---|
 * | SGRID_APP, SGRID_SERVER | application and server names |
 * | SGRID_NODE | the node's name |
 * | SGRID_VERSION | the release version running |
 * | SGRID_TARGET_HOST, SGRID_TARGET_PORT | host and port of the first adapter (absent without adapters); what older Sgrid services read |
 * | SGRID_ADAPTERS | JSON object: full Obj name `App.Server.Obj` -> `host:port` for a grpc adapter, `sgrid://host:port` for a native one |
 * | SGRID_REGISTRY | registry endpoints (`host:port,...`, `grpcs://` for TLS) |
 * | SGRID_AGENT | the local agent endpoint (keepalive, admin commands) |
 * | SGRID_INSTANCE_ID, SGRID_AGENT_TOKEN | who the servant is on the local channel, and its per-instance token |
 * | SGRID_CONF_DIR, SGRID_LOG_DIR, SGRID_DATA_DIR | the server's conf/, logs/ and data/ (data kept across versions) |
 *
 * Passed on from the agent's own environment (not set by it): the registry
 * tokens and the TLS CA. The servant's own knobs (`SGRID_LOG_LEVEL`,
 * `SGRID_METRICS_PORT`, ...) are the instance's to set.
 */
export const ENV = Object.freeze({
  APP: "SGRID_APP",
  SERVER: "SGRID_SERVER",
  NODE: "SGRID_NODE",
  VERSION: "SGRID_VERSION",
  TARGET_HOST: "SGRID_TARGET_HOST",
  TARGET_PORT: "SGRID_TARGET_PORT",
  ADAPTERS: "SGRID_ADAPTERS",
  REGISTRY: "SGRID_REGISTRY",
  AGENT: "SGRID_AGENT",
  INSTANCE_ID: "SGRID_INSTANCE_ID",
  AGENT_TOKEN: "SGRID_AGENT_TOKEN",
  CONF_DIR: "SGRID_CONF_DIR",
  LOG_DIR: "SGRID_LOG_DIR",
  DATA_DIR: "SGRID_DATA_DIR",
  /** Bearer token for a registry whose Query/Config need one (the registry's name for it). */
  QUERY_TOKEN: "SGRID_QUERY_TOKEN",
  /** The same token under its other name. */
  REGISTRY_TOKEN: "SGRID_REGISTRY_TOKEN",
  /** PEM file of the CA that signed a registry's (or peers') TLS certificates. */
  TLS_CA: "SGRID_TLS_CA",
  LOG_LEVEL: "SGRID_LOG_LEVEL",
  METRICS_PORT: "SGRID_METRICS_PORT",
  METRICS_HOST: "SGRID_METRICS_HOST",
} as const);

/** Keys the agent sets for every instance; an instance's own env can never override them. */
export const ENV_CONTRACT_KEYS = Object.freeze([
  ENV.APP, ENV.SERVER, ENV.NODE, ENV.VERSION,
  ENV.TARGET_HOST, ENV.TARGET_PORT, ENV.ADAPTERS,
  ENV.REGISTRY, ENV.AGENT, ENV.CONF_DIR, ENV.LOG_DIR, ENV.DATA_DIR,
  ENV.INSTANCE_ID, ENV.AGENT_TOKEN,
] as const);

export type EnvContractKey = (typeof ENV_CONTRACT_KEYS)[number];

/**
 * What the agent passes on from its own environment by default: what a
 * program needs to run (PATH, HOME, locale, TZ, TMPDIR) and what a servant
 * needs to reach a protected registry (its tokens, its CA).
 */
export const DEFAULT_INHERITED_ENV = Object.freeze([
  "PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", ENV.QUERY_TOKEN, ENV.REGISTRY_TOKEN, ENV.TLS_CA,
]);

/**
 * The two adapter protocols, one word each everywhere (registry endpoints,
 * adapters, SGRID_ADAPTERS, proxies): `grpc` (HTTP/2, any gRPC peer) and
 * `sgrid` (the native framed-TCP transport, `sgrid://host:port`).
 */
export const PROTOCOLS = Object.freeze(["grpc", "sgrid"] as const);
export type AdapterProtocol = (typeof PROTOCOLS)[number];

/**
 * Call metadata between the admin app and the registry: the admin app token
 * (SGRID_ADMIN_APP_TOKEN on both) and the browser's address the admin app
 * forwards, which the registry believes only with that token.
 */
export const ADMIN_APP_METADATA = Object.freeze({
  TOKEN: "x-sgrid-admin-app",
  FORWARDED_FOR: "x-forwarded-for",
  /** The environment variable holding the token, for `sgrid registry` and `sgrid admin`. */
  ENV: "SGRID_ADMIN_APP_TOKEN",
} as const);
