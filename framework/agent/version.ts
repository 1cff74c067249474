/**
 * The framework's own version: the `version` of the sgridnext package.json,
 * found by walking up from this file (its depth differs between the sources
 * and dist/, and inside a service's node_modules). Read once, then cached.
 */
import * as fs from "node:fs";
import * as path from "node:path";

let cached: string | undefined;

/** The sgridnext version, or "0.0.0-unknown" when no sgridnext package.json is found above this file. */
export function frameworkVersion(): string {
  if (cached !== undefined) return cached;
  cached = "0.0.0-unknown";
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")) as { name?: string; version?: string };
      if (pkg.name === "sgridnext" && typeof pkg.version === "string") {
        cached = pkg.version;
        break;
      }
    } catch {
      // no (readable) package.json at this level: keep walking up
    }
    if (path.dirname(dir) === dir) break;
  }
  return cached;
}
