/**
 * Public surface of the node agent's health checks: a small pluggable
 * family (http, tcp, grpc; register more by name) and the monitor that
 * turns consecutive failures into an `unhealthy` event.
 */

// ---- the family --------------------------------------------------------------------
export { address, type HealthCheck, type HealthResult, type HealthTarget } from "./base";
export { resolve, register, registered } from "./check-names";
export { httpCheck } from "./http";
export { tcpCheck } from "./tcp";
export { grpcCheck, encodeHealthRequest, decodeHealthResponse, HEALTH_CHECK_METHOD, SERVING_STATUS } from "./grpc";

// ---- the monitor -----------------------------------------------------------------------
export { HealthMonitor, HEALTH_MONITOR_DEFAULTS, type HealthMonitorOptions, type HealthState, type HealthEvent } from "./health-monitor";
