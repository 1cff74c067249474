/**
 * Errors of building a servant's command line and environment.
 * Codes are listed in ERRORS.md under "Node agent: launch"; distinct from AGENT_LAUNCH_SPEC_INVALID (a spawn spec the process layer refuses).
 */
import { Status, defineError, registerErrorClass } from "sgridnext";

/**
 * The release or the instance config cannot be turned into a process: the
 * entry is missing, outside the release or not executable; an env name or
 * value, an argument or an adapter is invalid.
 */
export class LaunchConfigError extends defineError("LAUNCH_CONFIG_INVALID", Status.FAILED_PRECONDITION) {}

registerErrorClass(LaunchConfigError);
