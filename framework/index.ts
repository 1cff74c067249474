/**
 * Public surface of the Sgrid framework. Code outside `framework/` imports
 * from here only.
 */

// ---- errors and status -------------------------------------------------------
export * from "./status";
export * from "./errors";

// ---- logging -------------------------------------------------------------------
export { getLogger, setLogLevel, getLogLevel, LOG_LEVELS, type Logger } from "./logger";
