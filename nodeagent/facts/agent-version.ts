/**
 * The agent's own version. The agent ships in the sgridnext package, whose
 * version the framework already reads (framework/agent/version.ts), so this
 * is that version under the agent's name.
 */
import { frameworkVersion } from "sgridnext/internal/agent/version";

export const PACKAGE_NAME = "sgridnext";

/** The agent's version, or "0.0.0-unknown" when no sgridnext package.json is found. */
export function agentVersion(): string {
  return frameworkVersion();
}
