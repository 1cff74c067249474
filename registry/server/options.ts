/**
 * Options of the registry process (`sgrid registry`, {@link RegistryServer}):
 * one typed interface, one DEFAULTS object, validated once (zod) and frozen.
 *
 * Precedence, applied by the CLI: flags > `SGRID_*` environment > defaults.
 * {@link optionsFromEnv} reads the environment; {@link resolveRegistryOptions}
 * fills defaults and validates. Tokens and passwords are kept out of every
 * log line and message (see {@link describeOptions}).
 */
import crypto from "node:crypto";
import os from "node:os";
import path from "node:path";
import { z } from "zod";
import { ADMIN_APP_METADATA, ConfigError, parseHostPort } from "sgridnext";

/** TLS for the registry's port: PEM file paths (strings) or PEM contents (Buffers). */
export interface RegistryTlsOptions {
  cert: string | Buffer;
  key: string | Buffer;
}

export interface RegistryServerOptions {
  /**
   * Database URL: `sqlite:<path>` or `mysql://user:pass@host:port/db`.
   * Default `sqlite:<dataDir>/registry.db` (embedded; no server to run).
   */
  db?: string;
  /**
   * Address the gRPC port listens on, `host:port`. Default `0.0.0.0:9500`:
   * every interface, because agents on other machines connect to it; 9500 is
   * free of the usual well-known ports and easy to remember. Port 0 picks a
   * free port (tests).
   */
  listen?: string;
  /**
   * Address of the native (framed-TCP, `sgrid://`) port, `host:port`; none by default. It serves
   * the same Objs as the gRPC port, with the same tokens and TLS. Agents listed as
   * `sgrid://host:port` (`sgrids://` with TLS) hold their session over it, for a fraction of the
   * registry CPU per heartbeat a gRPC session takes (bench/registry/heartbeat.ts): the port for a
   * registry with thousands of agents. Port 0 picks a free port (tests).
   */
  nativeListen?: string;
  /**
   * Directory for the embedded database and packages. Default
   * `./sgrid-data/registry` (relative to the working directory), so that a
   * first `sgrid registry` keeps its state next to where it was started.
   */
  dataDir?: string;
  /**
   * Address(es) agents and servants are told to use (SGRID_REGISTRY),
   * comma-separated. Default: the listen address, with `0.0.0.0`/`::`
   * replaced by this host's first non-internal IPv4 address (127.0.0.1 when
   * there is none), and the bound port.
   */
  advertise?: string;
  /** Token agents must present (constant-time compare). Default: none (agents are refused until one is set, see the node part). */
  clusterToken?: string;
  /** Token Query and Config callers must present. Default: none (Query and Config are open). */
  queryToken?: string;
  /**
   * Token an admin app presents (metadata `x-sgrid-admin-app`) so that the
   * registry takes the browser's address it forwards (`x-forwarded-for`) for
   * login limits and the event log. Default: none (every login counts from
   * the connecting host, which for logins through an admin app is the admin
   * app's host).
   */
  adminAppToken?: string;
  /** Password of the first admin user when none exists. Default: generated and printed once. */
  adminPassword?: string;
  /** Agents' heartbeat interval, ms. Default 5000 (Tars' 5 s keepalive). */
  heartbeatIntervalMs?: number;
  /** A node silent for this long is offline, ms. Default 15000 (three missed heartbeats). */
  heartbeatTimeoutMs?: number;
  /** Largest package accepted, bytes. Default 512 MiB (a fat jar with its JRE fits). */
  maxPatchBytes?: number;
  /** Time a publish batch may take to become active, ms. Default 120000. */
  batchTimeoutMs?: number;
  /** How long an instance must stay active to count as started by a task, ms. Default 2000 (see TASK_RUNNER_DEFAULTS). */
  taskSettleMs?: number;
  /**
   * A node offline this long since its last heartbeat is lost: placements
   * (sgrid deploy --place) put its instances on other matching nodes, ms.
   * Default 60000 (PLACEMENT_RECONCILER_DEFAULTS.graceMs).
   */
  placementGraceMs?: number;
  /** TLS for the port; plaintext when absent. */
  tls?: RegistryTlsOptions;
  /**
   * How often the change feed polls the revision counters, ms. Default 200:
   * one indexed SELECT of a few rows, 5 per second, keeps WatchObject well
   * inside its 1 s promise while costing the database next to nothing.
   */
  changePollMs?: number;
  /** How long in-flight calls may finish at shutdown, ms. Default 5000. */
  shutdownGraceMs?: number;
  /** Pooled database connections (MySQL). Default 10 (the store's default). */
  dbPoolMax?: number;
  /** Unique id of this process (task leases, command relay). Default `<hostname>:<pid>:<random>`. */
  processId?: string;
}

/** The defaults, in one place (see each option's comment for why). */
export const REGISTRY_DEFAULTS = Object.freeze({
  listen: "0.0.0.0:9500",
  dataDir: path.join(".", "sgrid-data", "registry"),
  heartbeatIntervalMs: 5000,
  heartbeatTimeoutMs: 15000,
  maxPatchBytes: 512 * 1024 * 1024,
  batchTimeoutMs: 120_000,
  placementGraceMs: 60_000,
  changePollMs: 200,
  shutdownGraceMs: 5000,
  dbPoolMax: 10,
});

/** Options after defaults and validation. */
export interface ResolvedRegistryOptions {
  db: string;
  listen: { host: string; port: number };
  nativeListen: { host: string; port: number } | undefined;
  dataDir: string;
  advertise: string | undefined;
  clusterToken: string | undefined;
  queryToken: string | undefined;
  adminAppToken: string | undefined;
  adminPassword: string | undefined;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  maxPatchBytes: number;
  batchTimeoutMs: number;
  taskSettleMs: number;
  placementGraceMs: number;
  tls: RegistryTlsOptions | undefined;
  changePollMs: number;
  shutdownGraceMs: number;
  dbPoolMax: number;
  processId: string;
}

const ms = (name: string, min: number) => z.number({ error: `${name} must be a number of milliseconds` }).int(`${name} must be a whole number of ms`).min(min, `${name} must be >= ${min} ms`);
const secret = (name: string) => z.string().min(1, `${name} must not be empty`).max(4096, `${name} is too long`).optional();
const pem = z.union([z.string().min(1), z.instanceof(Buffer)]);

const schema = z.object({
  db: z.string().min(1, "db must not be empty").optional(),
  listen: z.string().min(1).optional(),
  nativeListen: z.string().min(1).optional(),
  dataDir: z.string().min(1, "dataDir must not be empty").optional(),
  advertise: z.string().min(1).optional(),
  clusterToken: secret("clusterToken"),
  queryToken: secret("queryToken"),
  adminAppToken: secret("adminAppToken"),
  adminPassword: secret("adminPassword"),
  heartbeatIntervalMs: ms("heartbeatIntervalMs", 100).max(3_600_000).optional(),
  heartbeatTimeoutMs: ms("heartbeatTimeoutMs", 300).max(86_400_000).optional(),
  maxPatchBytes: z.number().int().min(1, "maxPatchBytes must be at least 1 byte").max(Number.MAX_SAFE_INTEGER).optional(),
  batchTimeoutMs: ms("batchTimeoutMs", 1000).optional(),
  placementGraceMs: ms("placementGraceMs", 1).max(86_400_000).optional(),
  taskSettleMs: z.number().int().min(0).max(600_000).optional(),
  tls: z.object({ cert: pem, key: pem }).strict().optional(),
  changePollMs: ms("changePollMs", 10).max(60_000).optional(),
  shutdownGraceMs: ms("shutdownGraceMs", 0).optional(),
  dbPoolMax: z.number().int().min(1).max(1000).optional(),
  processId: z.string().min(1).max(200).optional(),
}).strict();

function describeIssues(err: z.ZodError): string {
  return err.issues.map((i) => (i.path.length ? `${i.path.join(".")}: ${i.message}` : i.message)).join("; ");
}

/**
 * `host:port` -> host and port; ConfigError naming `what` otherwise. With `onlyScheme`, a
 * `scheme://` prefix other than that one (plaintext) is refused too.
 */
function hostPort(text: string, what: string, onlyScheme?: "sgrid"): { host: string; port: number } {
  let ep;
  try {
    ep = parseHostPort(text, onlyScheme, true);
  } catch (err) {
    throw new ConfigError(`invalid ${what} "${text}": ${(err as Error).message}`);
  }
  if (onlyScheme && (ep.protocol !== onlyScheme || ep.tls)) throw new ConfigError(`invalid ${what} "${text}": give host:port (TLS comes from the certificate and key)`);
  return { host: ep.host, port: ep.port };
}

/**
 * Fills defaults and validates. Throws ConfigError (CONFIG_INVALID) naming
 * the bad option; never echoes a token or password.
 */
export function resolveRegistryOptions(options: RegistryServerOptions = {}): Readonly<ResolvedRegistryOptions> {
  const given: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) if (v !== undefined) given[k] = v;
  const parsed = schema.safeParse(given);
  if (!parsed.success) throw new ConfigError(`invalid registry options: ${describeIssues(parsed.error)}`);
  const o = parsed.data;
  const listen = hostPort(o.listen ?? REGISTRY_DEFAULTS.listen, "listen address");
  const nativeListen = o.nativeListen === undefined ? undefined : hostPort(o.nativeListen, "native listen address", "sgrid");
  const wildcard = (host: string) => host === "0.0.0.0" || host === "::" || host === "";
  if (nativeListen && nativeListen.port !== 0 && nativeListen.port === listen.port
    && (nativeListen.host === listen.host || wildcard(nativeListen.host) || wildcard(listen.host))) {
    throw new ConfigError(`the native listen address "${o.nativeListen}" has the gRPC port's port number ${listen.port} on the same address: give it a port of its own`);
  }
  const heartbeatIntervalMs = o.heartbeatIntervalMs ?? REGISTRY_DEFAULTS.heartbeatIntervalMs;
  const heartbeatTimeoutMs = o.heartbeatTimeoutMs ?? REGISTRY_DEFAULTS.heartbeatTimeoutMs;
  if (heartbeatTimeoutMs <= heartbeatIntervalMs) {
    throw new ConfigError(`heartbeat timeout (${heartbeatTimeoutMs} ms) must be longer than the heartbeat interval (${heartbeatIntervalMs} ms)`);
  }
  const dataDir = path.resolve(o.dataDir ?? REGISTRY_DEFAULTS.dataDir);
  return Object.freeze({
    db: o.db ?? `sqlite:${path.join(dataDir, "registry.db")}`,
    listen,
    nativeListen,
    dataDir,
    advertise: o.advertise,
    clusterToken: o.clusterToken,
    queryToken: o.queryToken,
    adminAppToken: o.adminAppToken,
    adminPassword: o.adminPassword,
    heartbeatIntervalMs,
    heartbeatTimeoutMs,
    maxPatchBytes: o.maxPatchBytes ?? REGISTRY_DEFAULTS.maxPatchBytes,
    batchTimeoutMs: o.batchTimeoutMs ?? REGISTRY_DEFAULTS.batchTimeoutMs,
    taskSettleMs: o.taskSettleMs ?? 2000,
    placementGraceMs: o.placementGraceMs ?? REGISTRY_DEFAULTS.placementGraceMs,
    tls: o.tls,
    changePollMs: o.changePollMs ?? REGISTRY_DEFAULTS.changePollMs,
    shutdownGraceMs: o.shutdownGraceMs ?? REGISTRY_DEFAULTS.shutdownGraceMs,
    dbPoolMax: o.dbPoolMax ?? REGISTRY_DEFAULTS.dbPoolMax,
    processId: o.processId ?? `${os.hostname()}:${process.pid}:${crypto.randomBytes(3).toString("hex")}`,
  });
}

// ---- text values (flags and env) -------------------------------------------------

/** `5000`, `5000ms`, `5s`, `2m`, `1h` -> ms. Throws ConfigError naming `what`. */
export function parseDuration(text: string, what: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/i.exec(text);
  if (!m) throw new ConfigError(`${what}: "${text}" is not a duration (e.g. 5000, 5000ms, 5s, 2m)`);
  const unit = (m[2] ?? "ms").toLowerCase();
  const factor = unit === "ms" ? 1 : unit === "s" ? 1000 : unit === "m" ? 60_000 : 3_600_000;
  return Math.round(Number(m[1]) * factor);
}

/** `1048576`, `512k`, `512M`, `1G` (binary multiples; `KiB`/`MB` forms too) -> bytes. Throws ConfigError naming `what`. */
export function parseSize(text: string, what: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?\s*$/i.exec(text);
  if (!m) throw new ConfigError(`${what}: "${text}" is not a size (e.g. 1048576, 512M, 1G)`);
  const unit = (m[2] ?? "b").toLowerCase()[0]!;
  const factor = unit === "k" ? 1024 : unit === "m" ? 1024 ** 2 : unit === "g" ? 1024 ** 3 : 1;
  return Math.round(Number(m[1]) * factor);
}

/**
 * Environment variable -> option, for `sgrid registry`. Each flag has the
 * env twin listed here; flags win over env.
 */
export const REGISTRY_ENV = Object.freeze({
  db: "SGRID_DB",
  listen: "SGRID_LISTEN",
  nativeListen: "SGRID_NATIVE_LISTEN",
  dataDir: "SGRID_DATA_DIR",
  advertise: "SGRID_ADVERTISE",
  clusterToken: "SGRID_CLUSTER_TOKEN",
  queryToken: "SGRID_QUERY_TOKEN",
  adminAppToken: ADMIN_APP_METADATA.ENV,
  adminPassword: "SGRID_ADMIN_PASSWORD",
  heartbeatIntervalMs: "SGRID_HEARTBEAT_INTERVAL",
  heartbeatTimeoutMs: "SGRID_HEARTBEAT_TIMEOUT",
  maxPatchBytes: "SGRID_MAX_PATCH_SIZE",
  placementGraceMs: "SGRID_PLACEMENT_GRACE",
  tlsCert: "SGRID_TLS_CERT",
  tlsKey: "SGRID_TLS_KEY",
});

/** Text settings as given on the command line or in the environment (all optional). */
export interface RegistryTextSettings {
  db?: string;
  listen?: string;
  nativeListen?: string;
  dataDir?: string;
  advertise?: string;
  clusterToken?: string;
  queryToken?: string;
  adminAppToken?: string;
  adminPassword?: string;
  heartbeatInterval?: string;
  heartbeatTimeout?: string;
  maxPatchSize?: string;
  placementGrace?: string;
  tlsCert?: string;
  tlsKey?: string;
}

/** Reads the `SGRID_*` variables of {@link REGISTRY_ENV}; empty values count as unset. */
export function textSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): RegistryTextSettings {
  const get = (name: string) => {
    const v = env[name];
    return v !== undefined && v !== "" ? v : undefined;
  };
  return {
    db: get(REGISTRY_ENV.db),
    listen: get(REGISTRY_ENV.listen),
    nativeListen: get(REGISTRY_ENV.nativeListen),
    dataDir: get(REGISTRY_ENV.dataDir),
    advertise: get(REGISTRY_ENV.advertise),
    clusterToken: get(REGISTRY_ENV.clusterToken),
    queryToken: get(REGISTRY_ENV.queryToken),
    adminAppToken: get(REGISTRY_ENV.adminAppToken),
    adminPassword: get(REGISTRY_ENV.adminPassword),
    heartbeatInterval: get(REGISTRY_ENV.heartbeatIntervalMs),
    heartbeatTimeout: get(REGISTRY_ENV.heartbeatTimeoutMs),
    maxPatchSize: get(REGISTRY_ENV.maxPatchBytes),
    placementGrace: get(REGISTRY_ENV.placementGraceMs),
    tlsCert: get(REGISTRY_ENV.tlsCert),
    tlsKey: get(REGISTRY_ENV.tlsKey),
  };
}

/**
 * Merges text settings (first wins: pass flags before env) into options.
 * Throws ConfigError for a value that does not parse, or for only one of
 * the TLS cert / key.
 */
export function optionsFromText(...layers: RegistryTextSettings[]): RegistryServerOptions {
  const pick = <K extends keyof RegistryTextSettings>(k: K): string | undefined => {
    for (const l of layers) if (l[k] !== undefined && l[k] !== "") return l[k];
    return undefined;
  };
  const interval = pick("heartbeatInterval");
  const timeout = pick("heartbeatTimeout");
  const maxPatch = pick("maxPatchSize");
  const grace = pick("placementGrace");
  const cert = pick("tlsCert");
  const key = pick("tlsKey");
  if ((cert === undefined) !== (key === undefined)) {
    throw new ConfigError(`TLS needs both a certificate and a key (--tls-cert / ${REGISTRY_ENV.tlsCert} and --tls-key / ${REGISTRY_ENV.tlsKey})`);
  }
  return {
    db: pick("db"),
    listen: pick("listen"),
    nativeListen: pick("nativeListen"),
    dataDir: pick("dataDir"),
    advertise: pick("advertise"),
    clusterToken: pick("clusterToken"),
    queryToken: pick("queryToken"),
    adminAppToken: pick("adminAppToken"),
    adminPassword: pick("adminPassword"),
    heartbeatIntervalMs: interval === undefined ? undefined : parseDuration(interval, "heartbeat interval"),
    heartbeatTimeoutMs: timeout === undefined ? undefined : parseDuration(timeout, "heartbeat timeout"),
    maxPatchBytes: maxPatch === undefined ? undefined : parseSize(maxPatch, "max patch size"),
    placementGraceMs: grace === undefined ? undefined : parseDuration(grace, "placement grace"),
    tls: cert !== undefined && key !== undefined ? { cert, key } : undefined,
  };
}

/** The settings safe to log: tokens and passwords replaced by whether they are set. */
export function describeOptions(o: Readonly<ResolvedRegistryOptions>, safeDb: string): Record<string, unknown> {
  return {
    db: safeDb,
    listen: `${o.listen.host}:${o.listen.port}`,
    nativeListen: o.nativeListen && `${o.nativeListen.host}:${o.nativeListen.port}`,
    dataDir: o.dataDir,
    advertise: o.advertise,
    clusterTokenSet: o.clusterToken !== undefined,
    queryTokenSet: o.queryToken !== undefined,
    adminAppTokenSet: o.adminAppToken !== undefined,
    tls: o.tls !== undefined,
    heartbeatIntervalMs: o.heartbeatIntervalMs,
    heartbeatTimeoutMs: o.heartbeatTimeoutMs,
    maxPatchBytes: o.maxPatchBytes,
    placementGraceMs: o.placementGraceMs,
    changePollMs: o.changePollMs,
  };
}
