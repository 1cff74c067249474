/**
 * Public surface of the Sgrid framework. Code outside `framework/` imports
 * from here only.
 */

// ---- errors and status -------------------------------------------------------
export * from "./status";
export * from "./errors";

// ---- logging -------------------------------------------------------------------
export { getLogger, setLogLevel, getLogLevel, LOG_LEVELS, type Logger } from "./logger";

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
export { type Endpoint, type Protocol, endpointKey, makeEndpoint, parseHostPort, parseProxyTarget, parseTarsEndpoint, isObjName } from "./endpoint";

// ---- transports ------------------------------------------------------------------
export * as transports from "./transport";

// ---- statistics --------------------------------------------------------------------
export { clientStats, serverStats, StatsRegistry, MethodStats, LATENCY_BUCKETS_MS } from "./stats";

// ---- code generation -----------------------------------------------------------------
export { generate, type GenerateOptions, type GenerateResult } from "./codegen";
