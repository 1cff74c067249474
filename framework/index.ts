/**
 * Public surface of the Sgrid framework. Code outside `framework/` imports
 * from here only.
 */

// ---- errors and status -------------------------------------------------------
export * from "./status";
export * from "./errors";

// ---- logging -------------------------------------------------------------------
export { getLogger, setLogLevel, getLogLevel, useHostingLogLevel, LOG_LEVELS, type Logger } from "./logger";

// ---- runtime used by generated code ------------------------------------------
export * from "./runtime";

// ---- hosting servants ----------------------------------------------------------
export { Application, APPLICATION_DEFAULTS, type ApplicationOptions, type BoundAdapter } from "./application";
export { currentCallContext } from "./servant/call-context";
export { ServingStatus } from "./servant/health-servant";

// ---- calling peers -------------------------------------------------------------
export { Communicator, type CommunicatorOptions, type ObjResolver, type ProxyOptions } from "./communicator";
export { Invoker, INVOKER_DEFAULTS, type InvokerOptions } from "./proxy/invoker";
export { EndpointHealth, ENDPOINT_HEALTH_DEFAULTS, type EndpointHealthOptions } from "./proxy/endpoint-health";
export { StaticEndpointSource, type EndpointSource } from "./proxy/endpoint-source";
export * as strategies from "./proxy/strategies";
export { type Endpoint, type Protocol, endpointKey, formatHostPort, makeEndpoint, parseHostPort, parseProxyTarget, parseTarsEndpoint, isObjName } from "./endpoint";

// ---- transports ------------------------------------------------------------------
export * as transports from "./transport";

// ---- server reflection: what every gRPC adapter serves, and a JSON client of it ----------
export { ReflectionClient, REFLECTION_CLIENT_DEFAULTS, type JsonCallOptions, type ReflectedMethod, type ReflectedService, type ReflectionClientOptions } from "./reflection";
export { envRootCerts } from "./transport/tls-ca";

// ---- registry: Obj names and config ---------------------------------------------------
export { RegistryResolver, RESOLVER_DEFAULTS, defaultCacheDir, type RegistryResolverOptions } from "./discovery/resolver";
export { RegistryEndpointSource, type SourceState } from "./discovery/registry-endpoint-source";
export { ConfigLoader, CONFIG_LOADER_DEFAULTS, parseConfig, type ConfigChange, type ConfigLoaderOptions, type LoadedConfig } from "./config/config-loader";

// ---- admin commands and the local agent channel -------------------------------------
export { CommandRegistry, type CommandHandler, type CommandReply } from "./agent/commands";
export { AgentChannel, AGENT_CHANNEL_DEFAULTS, type AgentChannelOptions } from "./agent/agent-channel";
export { frameworkVersion } from "./agent/version";

// ---- statistics --------------------------------------------------------------------
export { clientStats, serverStats, StatsRegistry, MethodStats, LATENCY_BUCKETS_MS } from "./stats";
export { renderMetrics, renderStats, startMetricsServer, type MetricsServer, type MetricsServerOptions } from "./metrics";

// ---- the contract between parts: names, package manifests -------------------------------
export * from "./contract";

// ---- primitives: backoff, queue, atomic files, keyed mutex, periodic task -----------------
export * from "./primitives";
