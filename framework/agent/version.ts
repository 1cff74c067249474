/**
 * The framework's own version: the `version` of the sgridnext package.json.
 * This file is always two folders below it (`dist/agent/version.js`, in a
 * checkout and inside a service's node_modules), and a bundler (`sgrid
 * package`) inlines the required JSON, so a bundled servant reports the
 * version it was built with.
 */
const pkg = require("../../package.json") as { name?: string; version?: string };

/** The sgridnext version, or "0.0.0-unknown" when the package.json above this file is not sgridnext's. */
export function frameworkVersion(): string {
  return pkg.name === "sgridnext" && typeof pkg.version === "string" ? pkg.version : "0.0.0-unknown";
}
