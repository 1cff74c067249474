/**
 * Options of the `sgrid` client channel and server transport: one typed
 * interface each, one DEFAULTS object each, validated once and frozen.
 */
import type { z } from "zod";
import { ConfigError } from "../../errors";
import { MIN_WINDOW } from "./protocol";

const MiB = 1024 * 1024;

/** PEM material accepted as Buffer or string. */
export type Pem = Buffer | string;

export interface SgridServerTlsOptions {
  /** Private key (PEM). */
  key: Pem;
  /** Certificate chain (PEM). */
  cert: Pem;
  /** CA bundle for verifying client certificates (with requestCert). */
  ca?: Pem;
  /** Ask clients for a certificate and reject those the CA does not sign. Default false. */
  requestCert?: boolean;
}

export interface SgridServerOptions {
  /** TLS key and certificate; plaintext when absent. */
  tls?: SgridServerTlsOptions;
  /** Largest frame accepted (bytes, header included). Default 16 MiB. */
  maxFrameSize?: number;
  /** Receive window granted per stream (bytes). Default 1 MiB, at least 64 KiB. */
  initialWindow?: number;
  /** Time a new connection has to send its HELLO, ms. Default 10000. */
  handshakeTimeoutMs?: number;
  /** A connection that sends no complete frame for this long is closed, ms. Default 60000 (clients ping every 15 s). */
  idleTimeoutMs?: number;
  /** A frame whose first byte arrived must be complete within this, ms. Default 30000. */
  frameTimeoutMs?: number;
  /** Output queued for a peer that does not read beyond this closes the connection (bytes). Default 64 MiB, at least maxFrameSize. */
  maxPendingOutputBytes?: number;
  /** Calls in flight per connection beyond this are refused with RESOURCE_EXHAUSTED. Default 10000. */
  maxConcurrentCalls?: number;
  /**
   * Request-stream bytes a connection may have queued for servants that have not taken them yet,
   * across all its calls; beyond it the connection is closed (`inbound_limit`). Each stream is
   * also held to its window. Default 64 MiB, at least initialWindow + maxFrameSize.
   */
  maxBufferedBytes?: number;
}

export const SGRID_SERVER_DEFAULTS = Object.freeze({
  maxFrameSize: 16 * MiB,
  initialWindow: 1 * MiB,
  handshakeTimeoutMs: 10_000,
  idleTimeoutMs: 60_000,
  frameTimeoutMs: 30_000,
  maxPendingOutputBytes: 64 * MiB,
  maxConcurrentCalls: 10_000,
  maxBufferedBytes: 64 * MiB,
});

export type ResolvedServerOptions = Readonly<{ [K in keyof typeof SGRID_SERVER_DEFAULTS]: number } & { tls?: SgridServerTlsOptions }>;

export interface SgridClientTlsOptions {
  /** CA bundle to verify the server with; default the file named by SGRID_TLS_CA, else the system roots. */
  ca?: Pem;
  /** Client certificate and key, for servers that ask for one. */
  cert?: Pem;
  key?: Pem;
  /** Verify the server certificate. Default true. */
  rejectUnauthorized?: boolean;
  /** Name to verify the certificate against; default the endpoint host. */
  servername?: string;
}

export interface SgridClientOptions {
  /** TLS settings used for `sgrids://` endpoints. */
  tls?: SgridClientTlsOptions;
  /** Largest frame accepted from servers (bytes). Default 16 MiB. */
  maxFrameSize?: number;
  /** Receive window granted per response stream (bytes). Default 1 MiB, at least 64 KiB. */
  initialWindow?: number;
  /** Time allowed to open the TCP/TLS connection, ms. Default 3000. */
  connectTimeoutMs?: number;
  /** Interval of liveness pings, ms; a connection with no frame received over two intervals is dead. Default 15000. */
  pingIntervalMs?: number;
  /** First pause after a failed connect before the next attempt, ms (doubles per failure). Default 100. */
  backoffInitialMs?: number;
  /** Longest pause between connect attempts, ms. Default 5000. */
  backoffMaxMs?: number;
  /** Socket output above this makes streaming senders wait for drain (bytes). Default 1 MiB. */
  writeHighWaterBytes?: number;
}

export const SGRID_CLIENT_DEFAULTS = Object.freeze({
  maxFrameSize: 16 * MiB,
  initialWindow: 1 * MiB,
  connectTimeoutMs: 3_000,
  pingIntervalMs: 15_000,
  backoffInitialMs: 100,
  backoffMaxMs: 5_000,
  writeHighWaterBytes: 1 * MiB,
});

export type ResolvedClientOptions = Readonly<{ [K in keyof typeof SGRID_CLIENT_DEFAULTS]: number } & { tls?: SgridClientTlsOptions }>;

/**
 * The option schemas, built (and zod loaded) when native-transport options are first resolved: index.ts
 * loads this module for every servant, and one serving only gRPC never needs them.
 */
function buildSchemas() {
  const { z } = require("zod") as typeof import("zod");
  const pem = z.union([z.string(), z.instanceof(Buffer)]);
  const positiveMs = z.number().int().positive();
  const frameSize = z.number().int().min(64 * 1024).max(0x7fffffff);
  const window = z.number().int().min(MIN_WINDOW).max(0x7fffffff);

  const serverSchema = z.strictObject({
    tls: z.strictObject({ key: pem, cert: pem, ca: pem.optional(), requestCert: z.boolean().optional() }).optional(),
    maxFrameSize: frameSize.optional(),
    initialWindow: window.optional(),
    handshakeTimeoutMs: positiveMs.optional(),
    idleTimeoutMs: positiveMs.optional(),
    frameTimeoutMs: positiveMs.optional(),
    maxPendingOutputBytes: z.number().int().positive().optional(),
    maxConcurrentCalls: z.number().int().positive().optional(),
    maxBufferedBytes: z.number().int().positive().optional(),
  });

  const clientSchema = z.strictObject({
    tls: z.strictObject({
      ca: pem.optional(), cert: pem.optional(), key: pem.optional(),
      rejectUnauthorized: z.boolean().optional(), servername: z.string().optional(),
    }).optional(),
    maxFrameSize: frameSize.optional(),
    initialWindow: window.optional(),
    connectTimeoutMs: positiveMs.optional(),
    pingIntervalMs: positiveMs.optional(),
    backoffInitialMs: positiveMs.optional(),
    backoffMaxMs: positiveMs.optional(),
    writeHighWaterBytes: z.number().int().positive().optional(),
  });
  return { serverSchema, clientSchema };
}

let schemas: ReturnType<typeof buildSchemas> | undefined;

function check<T>(schema: () => z.ZodType<T>, value: unknown, what: string): T {
  // No options (the default factories, registered when the transport module loads): nothing to check, and zod stays unloaded.
  if (value === undefined || value === null) return {} as T;
  const r = schema().safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new ConfigError(`${what}: ${issue.path.join(".") || "options"}: ${issue.message}`);
  }
  return r.data;
}

/** Validates server options and fills defaults. Throws ConfigError on a bad value. */
export function resolveServerOptions(options: SgridServerOptions | Record<string, unknown> | undefined): ResolvedServerOptions {
  const given = check(() => (schemas ??= buildSchemas()).serverSchema, options, "sgrid server options");
  const out = { ...SGRID_SERVER_DEFAULTS, ...stripUndefined(given) };
  if (out.maxPendingOutputBytes < out.maxFrameSize) {
    throw new ConfigError(`sgrid server options: maxPendingOutputBytes (${out.maxPendingOutputBytes}) must be at least maxFrameSize (${out.maxFrameSize})`);
  }
  if (out.maxBufferedBytes < out.initialWindow + out.maxFrameSize) {
    throw new ConfigError(`sgrid server options: maxBufferedBytes (${out.maxBufferedBytes}) must be at least initialWindow + maxFrameSize (${out.initialWindow + out.maxFrameSize})`);
  }
  return Object.freeze(out);
}

/** Validates client options and fills defaults. Throws ConfigError on a bad value. */
export function resolveClientOptions(options: SgridClientOptions | undefined): ResolvedClientOptions {
  const given = check(() => (schemas ??= buildSchemas()).clientSchema, options, "sgrid client options");
  const out = { ...SGRID_CLIENT_DEFAULTS, ...stripUndefined(given) };
  if (out.backoffMaxMs < out.backoffInitialMs) {
    throw new ConfigError(`sgrid client options: backoffMaxMs (${out.backoffMaxMs}) must be at least backoffInitialMs (${out.backoffInitialMs})`);
  }
  return Object.freeze(out);
}

function stripUndefined<T extends object>(o: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out as T;
}
