/**
 * Options of the NodeAgent (`sgrid node`), with one DEFAULTS object,
 * validated once at construction. Every default, and why:
 *
 * - agentListen "127.0.0.1:0": the local channel listens on loopback only
 *   (it carries admin commands). Port 0 means "pick a free port the first
 *   time, then keep it": the port is remembered in `state/agent.json` and
 *   asked for again at every start, because it is in every servant's
 *   SGRID_AGENT and a new port would change every launch spec (and so
 *   restart every servant). Tars' node uses a fixed port instead; a fixed
 *   default would collide when several agents share a machine (tests, `sgrid up`).
 * - keepReleases 5: the issue's "last N releases (default 5)"; five
 *   rollbacks need no download, and five releases of a typical 50 MB
 *   service cost 250 MB of disk.
 * - heartbeatIntervalMs 5000 until the registry names one (it does in every
 *   desired state): the registry's default offline timeout is 15 s, three
 *   missed heartbeats.
 * - installRetry 2 s doubling to 60 s: a failed download (registry away, a
 *   reset stream) is retried on its own, resuming from the bytes already
 *   received; a refused package is not retried until the desired patch
 *   changes (it would be refused again).
 * - address: the first non-internal IPv4 address of the machine, else
 *   127.0.0.1: what the registry fills into adapters without a host.
 * - log rotation: LOG_ROTATOR_DEFAULTS (10 MB x 10, checked every 10 s).
 */
import * as os from "node:os";
import * as path from "node:path";
import { lazySchema } from "../lazy-schema";
import { hasExactly, isArrayOf, isInt, isNumberRecord, isPlainObject, isString } from "../plain-checks";
import { ConfigError, formatTags, isNameOf, nameRefinement, parseTags, type BackoffPolicy } from "sgridnext";
import type { CgroupBackend, DetectCgroupsOptions } from "../cgroups";
import type { ProcessWranglerOptions } from "../process";
import type { SupervisorOptions } from "../supervisor";
import type { UnpackLimits } from "../install";
import type { LogRotatorOptions } from "../logs";

export interface NodeAgentOptions {
  /**
   * Registry endpoints: `host:port`, or `grpcs://host:port` for a registry serving TLS (CA from
   * SGRID_TLS_CA, else system roots); `sgrid://host:port` (`sgrids://` with TLS) for the registry's
   * native port, which holds a session for a fraction of the registry CPU a gRPC one takes. Required, at least one.
   */
  registry: string[];
  /** This node's name (as the registry knows it). Required. */
  name: string;
  /** The agent's data directory (servers/, cache/, state/). Required, absolute. */
  dataDir: string;
  /** Cluster token, sent as `authorization: Bearer`. Default "" (none). */
  token?: string;
  /** Address advertised in hello (adapters without a host use it). Default: first non-internal IPv4, else 127.0.0.1. */
  address?: string;
  /** Local channel listen address. Default "127.0.0.1:0" (picked once, then kept; see the file comment). */
  agentListen?: string;
  /**
   * Node tags sent in every hello (`ssd`, `zone=a`; grammar in
   * framework/contract/tags.ts); placement queries match them
   * (`tags:ssd`). Tags people set in admin win over these for the same key.
   * Default none.
   */
  tags?: string[];
  /** cgroup backend or detection options. Default: detect (v2, v1, none). */
  cgroups?: CgroupBackend | DetectCgroupsOptions;
  /** Process wrangler options. Default WRANGLER_DEFAULTS. */
  process?: Omit<ProcessWranglerOptions, "cgroups">;
  /** Supervision options. Default SUPERVISOR_DEFAULTS / RESTART_DEFAULTS. */
  supervisor?: SupervisorOptions;
  /** Reconnect delays of the registry session. Default RECONNECT_BACKOFF (250 ms doubling to 3 s, +-50 %; registry-session.ts says why). */
  backoff?: Partial<BackoffPolicy>;
  /** Releases kept per server. Default 5. */
  keepReleases?: number;
  /** Unpack limits. Default DEFAULT_UNPACK_LIMITS (1 GiB, 100 000 entries). */
  unpackLimits?: Partial<UnpackLimits>;
  /** Rotation of servants' stdout/stderr. Default LOG_ROTATOR_DEFAULTS. */
  logRotation?: LogRotatorOptions;
  /** Heartbeat interval until the registry names one, ms. Default 5000. */
  heartbeatIntervalMs?: number;
  /** A patch download with no data for this long is cancelled and resumed by the next attempt, ms. Default 15000. */
  downloadIdleTimeoutMs?: number;
  /** Retry of a failed download: first delay and cap, ms. Default 2000 and 60000. */
  installRetry?: { initialMs?: number; maxMs?: number };
  /** Node executable for `node` servers. Default the agent's own process.execPath. */
  nodePath?: string;
  /** Java launcher for `java` servers. Default "java" from the servant's PATH. */
  javaPath?: string;
}

export const NODE_AGENT_DEFAULTS = Object.freeze({
  token: "",
  agentListen: "127.0.0.1:0",
  keepReleases: 5,
  heartbeatIntervalMs: 5000,
  installRetry: Object.freeze({ initialMs: 2000, maxMs: 60_000 }),
});

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[^:\s/]+):\d{1,5}$/;
/**
 * A registry endpoint: `host:port` or `grpc://host:port` (its gRPC port, plaintext), `grpcs://host:port`
 * (TLS); `sgrid://host:port` or `sgrids://host:port` for its native port (`sgrid registry --native-listen`).
 */
export const REGISTRY_ENDPOINT = /^((grpc|sgrid)s?:\/\/)?(\[[0-9a-fA-F:.]+\]|[^:\s/]+):\d{1,5}$/;
/** What REGISTRY_ENDPOINT takes, for error messages. */
export const REGISTRY_ENDPOINT_FORMS = "host:port, grpcs://host:port (TLS), or sgrid://host:port / sgrids://host:port (the registry's native port)";

function validTags(list: unknown): boolean {
  if (!isArrayOf(list, (t) => typeof t === "string")) return false;
  try {
    parseTags(list as string[]);
    return true;
  } catch {
    return false;
  }
}

/** Options the schema below takes as they are (the agent's start checks them without loading zod). */
function plainlyValid(v: unknown): boolean {
  const positive = (x: unknown) => isInt(x, 1);
  return hasExactly(v, {
    registry: (x) => isArrayOf(x, (e) => isString(e, 0, REGISTRY_ENDPOINT), 1),
    name: (x) => isNameOf("node", x),
    dataDir: (x) => isString(x) && path.isAbsolute(x),
    token: (x) => isString(x),
    address: (x) => isString(x, 1) && x.length <= 255 && !/[\s/]/.test(x),
    agentListen: (x) => isString(x, 0, HOST_PORT),
    tags: validTags,
    cgroups: () => true,
    process: isPlainObject,
    supervisor: isPlainObject,
    backoff: isNumberRecord,
    keepReleases: (x) => isInt(x, 1, 1000),
    unpackLimits: isNumberRecord,
    logRotation: isNumberRecord,
    heartbeatIntervalMs: positive,
    downloadIdleTimeoutMs: positive,
    installRetry: (x) => hasExactly(x, { initialMs: positive, maxMs: positive }, []),
    nodePath: (x) => isString(x, 1),
    javaPath: (x) => isString(x, 1),
  }, ["registry", "name", "dataDir"]);
}

/** Checked at the agent's start without zod when plainly valid (exported for test/nodeagent/lazy-options.test.ts). */
export const nodeAgentOptionsSchema = lazySchema((z) => {
  const hostPort = z.string().regex(HOST_PORT, "must be host:port");
  const registryEndpoint = z.string().regex(REGISTRY_ENDPOINT, `must be ${REGISTRY_ENDPOINT_FORMS}`);

  return z.object({
    registry: z.array(registryEndpoint).min(1, "at least one registry endpoint is required"),
    name: z.string().superRefine(nameRefinement("node")),
    dataDir: z.string().refine((d) => path.isAbsolute(d), "must be an absolute path"),
    token: z.string().optional(),
    address: z.string().min(1).max(255).refine((h) => !/[\s/]/.test(h), "must be a host name or IP address").optional(),
    agentListen: hostPort.optional(),
    tags: z.array(z.string()).superRefine((list, ctx) => {
      try {
        parseTags(list);
      } catch (err) {
        ctx.addIssue({ code: "custom", message: (err as Error).message });
      }
    }).optional(),
    cgroups: z.any().optional(),
    process: z.record(z.string(), z.unknown()).optional(),
    supervisor: z.record(z.string(), z.unknown()).optional(),
    backoff: z.record(z.string(), z.number()).optional(),
    keepReleases: z.number().int().min(1).max(1000).optional(),
    unpackLimits: z.record(z.string(), z.number()).optional(),
    logRotation: z.record(z.string(), z.number()).optional(),
    heartbeatIntervalMs: z.number().int().positive().optional(),
    downloadIdleTimeoutMs: z.number().int().positive().optional(),
    installRetry: z.object({ initialMs: z.number().int().positive().optional(), maxMs: z.number().int().positive().optional() }).strict().optional(),
    nodePath: z.string().min(1).optional(),
    javaPath: z.string().min(1).optional(),
  }).strict();
}, plainlyValid);

/** The first non-internal IPv4 address of this machine, else 127.0.0.1. */
export function defaultAddress(): string {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  return "127.0.0.1";
}

/** Options with every defaulted key filled. */
export interface ResolvedNodeAgentOptions extends NodeAgentOptions {
  token: string;
  address: string;
  agentListen: string;
  /** Normalized (`key` / `key=value`, sorted by key). */
  tags: string[];
  keepReleases: number;
  heartbeatIntervalMs: number;
  installRetry: Readonly<{ initialMs: number; maxMs: number }>;
}

/** Validates the options (ConfigError naming the key) and fills defaults. */
export function resolveNodeAgentOptions(options: NodeAgentOptions): Readonly<ResolvedNodeAgentOptions> {
  const r = nodeAgentOptionsSchema.safeParse(options);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new ConfigError(`invalid node agent option ${issue?.path.join(".") ?? ""}: ${issue?.message ?? r.error.message}`);
  }
  return Object.freeze({
    ...NODE_AGENT_DEFAULTS,
    ...options,
    token: options.token ?? NODE_AGENT_DEFAULTS.token,
    agentListen: options.agentListen ?? NODE_AGENT_DEFAULTS.agentListen,
    keepReleases: options.keepReleases ?? NODE_AGENT_DEFAULTS.keepReleases,
    heartbeatIntervalMs: options.heartbeatIntervalMs ?? NODE_AGENT_DEFAULTS.heartbeatIntervalMs,
    installRetry: Object.freeze({ ...NODE_AGENT_DEFAULTS.installRetry, ...options.installRetry }),
    address: options.address ?? defaultAddress(),
    tags: formatTags(parseTags(options.tags ?? [])),
  });
}
