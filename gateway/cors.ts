/**
 * CORS for the HTTP front: which origins may call, and the headers of a
 * preflight (OPTIONS) answer and of an actual answer. The policy comes from
 * the gateway's route config (`cors`); without it no CORS header is sent, so
 * a browser page on another origin cannot read the answers.
 */
import type * as http from "node:http";
import { GRPC_WEB_ALLOWED_HEADERS, GRPC_WEB_EXPOSED_HEADERS } from "./grpc-web";

/** A route's `cors` (routes.ts CorsRule). */
export interface CorsPolicy {
  /** Origins allowed (`https://app.example.com`), or `["*"]` for any. */
  readonly origins: readonly string[];
  /** Request headers allowed beyond the ones gRPC-Web clients send. */
  readonly headers?: readonly string[];
  /** Seconds a browser may cache a preflight answer. Default 600. */
  readonly maxAgeSeconds?: number;
}

export const CORS_DEFAULTS = Object.freeze({ maxAgeSeconds: 600 });

/** The value for Access-Control-Allow-Origin, or undefined when the origin is not allowed (or there is no policy). */
export function allowedOrigin(policy: CorsPolicy | undefined, origin: string | undefined): string | undefined {
  if (!policy || !origin) return undefined;
  if (policy.origins.includes("*")) return "*";
  return policy.origins.includes(origin) ? origin : undefined;
}

/** Headers of an actual (non-preflight) answer to a request from `origin`. */
export function corsHeaders(policy: CorsPolicy | undefined, origin: string | undefined): Record<string, string> {
  const allow = allowedOrigin(policy, origin);
  if (!allow) return {};
  const h: Record<string, string> = { "access-control-allow-origin": allow, "access-control-expose-headers": GRPC_WEB_EXPOSED_HEADERS };
  if (allow !== "*") h.vary = "Origin";
  return h;
}

/**
 * Answers a preflight: 204 with the allow headers when the origin is
 * allowed, 403 without them when it is not (the browser then refuses the
 * call itself; nothing reaches a servant either way).
 */
export function answerPreflight(policy: CorsPolicy | undefined, req: http.IncomingMessage, res: http.ServerResponse): void {
  const origin = req.headers.origin;
  const allow = allowedOrigin(policy, origin);
  if (!allow) {
    res.writeHead(403, { "content-type": "text/plain" }).end(`origin ${origin ?? "(none)"} is not allowed by the gateway's cors config\n`);
    return;
  }
  const extra = policy!.headers ?? [];
  res.writeHead(204, {
    "access-control-allow-origin": allow,
    "access-control-allow-methods": "POST, OPTIONS",
    "access-control-allow-headers": [GRPC_WEB_ALLOWED_HEADERS, ...extra].join(", "),
    "access-control-max-age": String(policy!.maxAgeSeconds ?? CORS_DEFAULTS.maxAgeSeconds),
    ...(allow !== "*" ? { vary: "Origin" } : {}),
  }).end();
}
