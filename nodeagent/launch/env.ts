/**
 * Builds the environment contract (its keys: sgridnext's contract/env.ts;
 * ARCHITECTURE.md, "The environment contract") for one instance.
 *
 * | key | value |
 * |---|---|
 * | SGRID_APP, SGRID_SERVER | application and server names |
 * | SGRID_NODE | the node's name |
 * | SGRID_VERSION | the release version running |
 * | SGRID_TARGET_HOST, SGRID_TARGET_PORT | host and port of the first adapter (absent without adapters) |
 * | SGRID_ADAPTERS | JSON object: full Obj name `App.Server.Obj` -> `host:port` for a grpc adapter, `sgrid://host:port` for a sgrid one |
 * | SGRID_REGISTRY | registry endpoints |
 * | SGRID_AGENT | the local agent endpoint (keepalive, admin commands) |
 * | SGRID_CONF_DIR, SGRID_LOG_DIR, SGRID_DATA_DIR | the server's conf/, logs/ and data/ (kept across versions) |
 *
 * Precedence, lowest first: the variables inherited from the agent (only
 * those listed in `inherit`), then the instance's own env, then the
 * contract. The instance's env may NOT override a contract key: such keys
 * are dropped (and reported back in `ignored`), so a config mistake can
 * never point a servant at the wrong registry, port or data dir. Other
 * `SGRID_*` names (e.g. `SGRID_LOG_LEVEL`) are the instance's to set.
 */
import { DEFAULT_INHERITED_ENV, ENV, ENV_CONTRACT_KEYS, formatHostPort, type AdapterProtocol, type EnvContractKey } from "sgridnext";
import { LaunchConfigError } from "./errors";

export { ENV_CONTRACT_KEYS, DEFAULT_INHERITED_ENV, type EnvContractKey, type AdapterProtocol };

/** One adapter (listening endpoint) of an instance. */
export interface AdapterSpec {
  /** Obj name: `GreeterObj`, or the full `Demo.HelloServer.GreeterObj`. */
  obj: string;
  host: string;
  port: number;
  protocol: AdapterProtocol;
}

/** What the contract is built from. */
export interface ServantEnvInput {
  app: string;
  server: string;
  node: string;
  version: string;
  adapters: readonly AdapterSpec[];
  /** Registry endpoints, as servants' proxies take them (`host:port,...`). */
  registry: string;
  /** Local agent endpoint. */
  agent: string;
  confDir: string;
  logDir: string;
  dataDir: string;
  /** The instance's own env. */
  env?: Readonly<Record<string, string>>;
  /** Names taken from `source` (default {@link DEFAULT_INHERITED_ENV}). */
  inherit?: readonly string[];
  /** Where inherited values come from (default process.env). */
  source?: Readonly<Record<string, string | undefined>>;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Full Obj name of an adapter: a bare `GreeterObj` gets the `App.Server.` prefix. */
export function fullObjName(app: string, server: string, obj: string): string {
  return obj.includes(".") ? obj : `${app}.${server}.${obj}`;
}

/** `host:port`, with brackets around an IPv6 host. */
export function hostPort(host: string, port: number): string {
  return formatHostPort(host, port);
}

/** The SGRID_ADAPTERS value: full Obj name -> `host:port` (grpc) or `sgrid://host:port` (sgrid). */
export function adaptersJson(app: string, server: string, adapters: readonly AdapterSpec[]): string {
  const out: Record<string, string> = {};
  for (const a of adapters) {
    const hp = hostPort(a.host, a.port);
    out[fullObjName(app, server, a.obj)] = a.protocol === "sgrid" ? `sgrid://${hp}` : hp;
  }
  return JSON.stringify(out);
}

/**
 * Builds the servant's whole environment. Returns the env and the names of
 * instance env keys that were dropped because they belong to the contract.
 * Throws LaunchConfigError on a name or value the kernel cannot carry.
 */
export function buildServantEnv(input: ServantEnvInput): { env: Record<string, string>; ignored: string[] } {
  const env: Record<string, string> = {};
  const source = input.source ?? process.env;
  for (const name of input.inherit ?? DEFAULT_INHERITED_ENV) {
    const v = source[name];
    if (v !== undefined) env[name] = v;
  }
  const contract = new Set<string>(ENV_CONTRACT_KEYS);
  const ignored: string[] = [];
  for (const [name, value] of Object.entries(input.env ?? {})) {
    if (!ENV_NAME.test(name)) throw new LaunchConfigError(`invalid environment variable name ${JSON.stringify(name)}`, { name });
    if (typeof value !== "string" || value.includes("\0")) throw new LaunchConfigError(`environment variable ${name} has a value that is not a NUL-free string`, { name });
    if (contract.has(name)) {
      ignored.push(name);
      continue;
    }
    env[name] = value;
  }
  env[ENV.APP] = input.app;
  env[ENV.SERVER] = input.server;
  env[ENV.NODE] = input.node;
  env[ENV.VERSION] = input.version;
  const first = input.adapters[0];
  if (first !== undefined) {
    env[ENV.TARGET_HOST] = first.host;
    env[ENV.TARGET_PORT] = String(first.port);
  }
  env[ENV.ADAPTERS] = adaptersJson(input.app, input.server, input.adapters);
  env[ENV.REGISTRY] = input.registry;
  env[ENV.AGENT] = input.agent;
  env[ENV.CONF_DIR] = input.confDir;
  env[ENV.LOG_DIR] = input.logDir;
  env[ENV.DATA_DIR] = input.dataDir;
  return { env, ignored };
}
