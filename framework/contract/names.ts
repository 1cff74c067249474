/**
 * Names that become path segments under the agent's data dir and in package
 * file names (application, server, release version, package sha256). They
 * come from the registry or from a project's sgrid.json, so they are checked
 * before any path is built from them: by the node agent before it installs,
 * and by `sgrid package` before it writes a package.
 */
import { InvalidArgumentError } from "../errors";

/** Application and server names: Tars-style identifiers, no dots (the dot separates App.Server.Obj). */
export const NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
/** Release versions: a directory name, never "." or "..", no separators. */
export const VERSION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;
/** A sha256 in lower-case hex. */
export const SHA256_PATTERN = /^[0-9a-f]{64}$/;

/** Throws InvalidArgumentError unless `name` is a valid application or server name. */
export function checkName(what: string, name: string): string {
  if (typeof name !== "string" || !NAME_PATTERN.test(name)) {
    throw new InvalidArgumentError(`invalid ${what} name ${JSON.stringify(name)} (expected ${NAME_PATTERN.source})`, { [what]: String(name) });
  }
  return name;
}

/** Throws InvalidArgumentError unless `version` is a valid release version. */
export function checkVersion(version: string): string {
  if (typeof version !== "string" || !VERSION_PATTERN.test(version) || version.includes("..")) {
    throw new InvalidArgumentError(`invalid release version ${JSON.stringify(version)} (expected ${VERSION_PATTERN.source})`, { version: String(version) });
  }
  return version;
}

/** Returns the lower-cased sha256, or throws InvalidArgumentError. */
export function checkSha256(sha256: string): string {
  const lower = typeof sha256 === "string" ? sha256.toLowerCase() : "";
  if (!SHA256_PATTERN.test(lower)) {
    throw new InvalidArgumentError(`invalid sha256 ${JSON.stringify(sha256)} (expected 64 hex digits)`, { sha256: String(sha256) });
  }
  return lower;
}
