/**
 * The gateway's routes file (`gateway.yaml` in the config center, or a local
 * file): which services are exposed, and per route its auth and limits.
 *
 * ```yaml
 * defaults:                      # every route's values unless it sets its own
 *   auth: none                   # none | { bearer: [token, ...] }
 *   maxMessageBytes: 4194304     # largest request message (gRPC) / body (HTTP)
 *   rateLimit: { perSecond: 100, burst: 200 }   # per client address (gRPC and HTTP fronts)
 *   cors: { origins: ["https://app.example"] }  # HTTP front
 *   bodyIdleTimeoutMs: 30000     # HTTP front: a request body that sends no byte for this long is refused (408 / DEADLINE_EXCEEDED); 1 to 2147483647
 * routes:
 *   - service: demo.echo.v1.Echo # exact name, `pkg.*` (a package and its sub-packages) or `*`
 *     obj: Demo.EchoServer.EchoObj   # optional: fixed Obj (else the registry's service map)
 *     auth: { bearer: [s3cret] }
 * ```
 *
 * No file, or a file without `routes`: every service is exposed with the
 * defaults. With `routes`, a service no route matches is not exposed
 * (UNIMPLEMENTED). The first matching route wins. A file that does not parse
 * or fails the schema is refused with CONFIG_INVALID naming the field, and
 * the routes in use stay.
 */
import crypto from "node:crypto";
import { ConfigError } from "sgridnext";
import { MAX_TIMER_MS } from "sgridnext/internal/primitives/timers";
import YAML from "yaml";
import { z } from "zod";

const Auth = z.union([z.literal("none"), z.strictObject({ bearer: z.array(z.string().min(1)).min(1) })]);
const RateLimit = z.strictObject({ perSecond: z.number().positive(), burst: z.number().int().positive().optional() });
const Cors = z.strictObject({ origins: z.array(z.string().min(1)), headers: z.array(z.string()).optional(), maxAgeSeconds: z.number().int().nonnegative().optional() });
/** Up to MAX_TIMER_MS: a longer timer fires after 1 ms, and would refuse every request body at once. */
const timeoutMsError = (iss: { input?: unknown }): string =>
  `must be a whole number of milliseconds from 1 to ${MAX_TIMER_MS}, got ${typeof iss.input === "string" ? JSON.stringify(iss.input) : String(iss.input)}`;
const TimeoutMs = z.number({ error: timeoutMsError }).int({ error: timeoutMsError }).min(1, { error: timeoutMsError }).max(MAX_TIMER_MS, { error: timeoutMsError });
const Limits = {
  auth: Auth.optional(),
  maxMessageBytes: z.number().int().positive().optional(),
  rateLimit: RateLimit.optional(),
  cors: Cors.optional(),
  bodyIdleTimeoutMs: TimeoutMs.optional(),
};
const SERVICE_PATTERN = /^(\*|[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*(\.\*)?)$/;
const RouteSchema = z.strictObject({
  service: z.string().regex(SERVICE_PATTERN, "a fully qualified service name, pkg.* or *"),
  obj: z.string().regex(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, "App.Server.Obj").optional(),
  ...Limits,
});
const FileSchema = z.strictObject({
  defaults: z.strictObject(Limits).optional(),
  routes: z.array(RouteSchema).optional(),
});

export type RouteAuth = z.infer<typeof Auth>;
export type RateLimitRule = z.infer<typeof RateLimit>;
export type CorsRule = z.infer<typeof Cors>;

/** A route with the defaults filled in. */
export interface RouteRule {
  readonly service: string;
  readonly obj?: string;
  readonly auth: RouteAuth;
  readonly maxMessageBytes: number;
  readonly rateLimit?: RateLimitRule;
  readonly cors?: CorsRule;
  /** HTTP front: the longest time a request body may send nothing before the request is refused, ms. */
  readonly bodyIdleTimeoutMs: number;
}

export const ROUTE_DEFAULTS = Object.freeze({ maxMessageBytes: 4 * 1024 * 1024, bodyIdleTimeoutMs: 30_000 });

export class Routes {
  private readonly rules: RouteRule[];
  /** False when the file lists no routes: every service is exposed with the defaults. */
  readonly restricted: boolean;
  private readonly fallback: RouteRule;

  constructor(file: z.infer<typeof FileSchema> = {}, readonly version = "") {
    const d = file.defaults ?? {};
    const base = { auth: d.auth ?? "none", maxMessageBytes: d.maxMessageBytes ?? ROUTE_DEFAULTS.maxMessageBytes, rateLimit: d.rateLimit, cors: d.cors, bodyIdleTimeoutMs: d.bodyIdleTimeoutMs ?? ROUTE_DEFAULTS.bodyIdleTimeoutMs } as const;
    this.fallback = { service: "*", ...base };
    this.restricted = file.routes !== undefined;
    this.rules = (file.routes ?? []).map((r) => ({
      service: r.service, obj: r.obj,
      auth: r.auth ?? base.auth, maxMessageBytes: r.maxMessageBytes ?? base.maxMessageBytes,
      rateLimit: r.rateLimit ?? base.rateLimit, cors: r.cors ?? base.cors, bodyIdleTimeoutMs: r.bodyIdleTimeoutMs ?? base.bodyIdleTimeoutMs,
    }));
  }

  /** The route for a fully qualified service, or undefined when it is not exposed. */
  match(service: string): RouteRule | undefined {
    for (const r of this.rules) if (matches(r.service, service)) return r;
    return this.restricted ? undefined : this.fallback;
  }

  /** Fixed service -> Obj entries (routes with an exact service and an `obj`). */
  fixedObjs(): Map<string, string> {
    const out = new Map<string, string>();
    for (const r of this.rules) if (r.obj && !r.service.includes("*") && !out.has(r.service)) out.set(r.service, r.obj);
    return out;
  }

  /** The largest maxMessageBytes of any route (the gRPC server's own hard limit is set above it). */
  largestMessageBytes(): number {
    return Math.max(this.fallback.maxMessageBytes, ...this.rules.map((r) => r.maxMessageBytes));
  }

  all(): readonly RouteRule[] {
    return this.rules;
  }
}

function matches(pattern: string, service: string): boolean {
  if (pattern === "*") return true;
  if (pattern.endsWith(".*")) return service.startsWith(pattern.slice(0, -1));
  return pattern === service;
}

/** Parses a routes file (YAML or JSON text). CONFIG_INVALID naming the field on any mistake. */
export function parseRoutes(text: string, version = "", source = "gateway routes"): Routes {
  let raw: unknown;
  try {
    raw = text.trim() === "" ? {} : YAML.parse(text);
  } catch (err) {
    throw new ConfigError(`${source}: not valid YAML/JSON: ${(err as Error).message}`);
  }
  return routesFrom(raw ?? {}, version, source);
}

/** Checks an already parsed routes document (what the config loader gives). */
export function routesFrom(raw: unknown, version = "", source = "gateway routes"): Routes {
  const r = FileSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const field = issue.path.join(".") || "(top level)";
    throw new ConfigError(`${source}: ${field}: ${issue.message}`, { field });
  }
  return new Routes(r.data, version);
}

/** True when the request metadata carries one of the route's bearer tokens (always, for auth none). */
export function authorized(rule: RouteRule, authorization: string | undefined): boolean {
  if (rule.auth === "none") return true;
  if (authorization === undefined) return false;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  if (m === null) return false;
  const given = Buffer.from(m[1]!);
  let ok = false;
  for (const token of rule.auth.bearer) {
    const want = Buffer.from(token);
    // Constant time per token of the same length: the comparison does not tell how much of a token was right.
    if (want.length === given.length && crypto.timingSafeEqual(want, given)) ok = true;
  }
  return ok;
}
