/**
 * Options of the admin app: one typed interface, one DEFAULTS object,
 * validated once (zod) and frozen.
 */
import * as os from "node:os";
import * as path from "node:path";
import { z } from "zod";
import { ConfigError, parseHostPort } from "sgridnext";

export interface AdminOptions {
  /** Registry endpoints (`host:port`, comma-separated for several). Required (`--registry`, `SGRID_REGISTRY`). */
  registry: string;
  /**
   * Where `sgrid admin` listens. Default `127.0.0.1:9600`: loopback, so an
   * admin app is not exposed to the network until the operator says so; 9600
   * sits next to the registry's 9500.
   */
  listen?: string;
  /** PEM certificate and key; when both are given the app serves HTTPS and cookies are `Secure`. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /**
   * Behind a TLS-terminating reverse proxy: trust `X-Forwarded-For` / `-Proto`
   * (rate limiting by client address, `Secure` cookies). Default false.
   */
  trustProxy?: boolean;
  /**
   * A session unused for this long ends, ms. Default 1 hour (open pages poll,
   * so an open tab keeps its session; an abandoned one does not). A session
   * never outlives the registry token it holds.
   */
  sessionIdleMs?: number;
  /** Most sessions held at once; the least recently used goes first. Default 10000 (bounded memory). */
  maxSessions?: number;
  /** Login attempts allowed per client address per minute. Default 10. */
  loginAttemptsPerMinute?: number;
  /**
   * Failed logins allowed per user name from one client address per 5 minutes
   * before that name is refused from that address for the rest of the window
   * (other addresses still log in). Default 5.
   */
  loginFailuresPerUser?: number;
  /**
   * The registry's admin app token (SGRID_ADMIN_APP_TOKEN): sent with every
   * login so that the registry counts failures under the browser's address
   * rather than this app's. Without it, the registry's own limits see every
   * login through this app as coming from one host.
   */
  appToken?: string;
  /** Host names (besides IP addresses, `localhost` and this machine's name) the app answers to; see host-check.ts. */
  allowedHosts?: string[];
  /** Largest package accepted on upload, bytes. Default 512 MiB (the registry's own default limit). */
  maxUploadBytes?: number;
  /** Largest JSON request body, bytes. Default 1 MiB (config files are text; packages do not go through JSON). */
  maxJsonBytes?: number;
  /** Where uploads are buffered while hashed, before they go to the registry. Default the OS temp dir. */
  tmpDir?: string;
  /** Deadline of unary registry calls, ms. Default 10000 (deploys and config pushes touch several rows and nodes). */
  registryTimeoutMs?: number;
  /** Directory of the built UI (index assets). Default `dist/admin/ui` next to this file. */
  uiDir?: string;
}

export const ADMIN_DEFAULTS = Object.freeze({
  listen: "127.0.0.1:9600",
  trustProxy: false,
  sessionIdleMs: 60 * 60 * 1000,
  maxSessions: 10000,
  loginAttemptsPerMinute: 10,
  loginFailuresPerUser: 5,
  maxUploadBytes: 512 * 1024 * 1024,
  maxJsonBytes: 1024 * 1024,
  registryTimeoutMs: 10000,
});

export type ResolvedAdminOptions = Readonly<Required<Omit<AdminOptions, "tls" | "appToken">> & Pick<AdminOptions, "tls" | "appToken">>;

const schema = z.object({
  registry: z.string().trim().min(1, "registry endpoints are required (--registry or SGRID_REGISTRY)"),
  listen: z.string().trim().min(1),
  tls: z.object({ cert: z.union([z.string(), z.instanceof(Buffer)]), key: z.union([z.string(), z.instanceof(Buffer)]) }).optional(),
  trustProxy: z.boolean(),
  sessionIdleMs: z.number().int().min(1000),
  maxSessions: z.number().int().min(1),
  loginAttemptsPerMinute: z.number().int().min(1),
  loginFailuresPerUser: z.number().int().min(1),
  appToken: z.string().min(1).max(4096).optional(),
  allowedHosts: z.array(z.string().trim().min(1).max(253)),
  maxUploadBytes: z.number().int().min(1),
  maxJsonBytes: z.number().int().min(1024),
  tmpDir: z.string().min(1),
  registryTimeoutMs: z.number().int().min(100),
  uiDir: z.string().min(1),
});

/** Fills defaults, validates and freezes; throws ConfigError naming the bad key. */
export function resolveAdminOptions(options: AdminOptions): ResolvedAdminOptions {
  const merged = {
    ...ADMIN_DEFAULTS,
    tmpDir: os.tmpdir(),
    uiDir: defaultUiDir(),
    allowedHosts: [],
    ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
  };
  const parsed = schema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(`admin option ${issue.path.join(".") || "?"}: ${issue.message}`);
  }
  for (const part of parsed.data.registry.split(",").filter((s) => s.trim() !== "")) parseHostPort(part);
  parseListen(parsed.data.listen);
  return Object.freeze(parsed.data);
}

/** `host:port` -> parts; ConfigError when it does not parse. Port 0 = any free port. */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?:(\d{1,5})$/.exec(listen.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || m[1] === "" || !(port >= 0 && port <= 65535)) {
    throw new ConfigError(`admin listen address "${listen}" is not host:port (e.g. 127.0.0.1:9600)`);
  }
  return { host: m[1]!, port };
}

function defaultUiDir(): string {
  // Compiled: dist/admin/options.js -> dist/admin/ui (scripts/build-admin-ui.js writes it).
  return path.join(__dirname, "ui");
}
