/**
 * Config scopes and their keys. A config file lives at one level; its scope
 * key says where: `App` (application), `App.Server` (server) or
 * `App.Server@node` (instance). Keys are built from validated names, which
 * contain no `.` (application, server) or `@` (any), so keys never collide.
 */
import { InvalidArgumentError } from "sgridnext";
import type { ConfigScope } from "./records";
import { validateApplication, validateNodeName, validateServerName } from "./validate";

/** The scope key of a (validated) scope; throws InvalidArgumentError on a bad name or level. */
export function scopeKey(scope: ConfigScope): string {
  if (scope == null || typeof scope !== "object") throw new InvalidArgumentError("invalid config scope: expected an object", { kind: "config scope" });
  switch (scope.level) {
    case "application":
      return validateApplication(scope.application);
    case "server":
      return `${validateApplication(scope.application)}.${validateServerName(scope.server)}`;
    case "instance":
      return `${validateApplication(scope.application)}.${validateServerName(scope.server)}@${validateNodeName(scope.node)}`;
    default:
      throw new InvalidArgumentError(`invalid config level ${JSON.stringify((scope as any).level)}: expected application, server or instance`, { kind: "config level" });
  }
}

/** The three scopes an instance sees, most general first. */
export function instanceScopes(application: string, server: string, node: string): [ConfigScope, ConfigScope, ConfigScope] {
  return [
    { level: "application", application },
    { level: "server", application, server },
    { level: "instance", application, server, node },
  ];
}

/** Human name of a file at a scope, for messages: `app.conf at server Demo.Hello`. */
export function describeConfig(scope: ConfigScope, fileName: string): string {
  return `config file "${fileName}" at ${scope.level} ${scopeKey(scope)}`;
}
