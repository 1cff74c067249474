/**
 * The health check family's interface. A check probes one endpoint of an
 * instance and says whether it is healthy.
 *
 * Contract for every implementation: `check` never throws and never
 * rejects; it resolves within about `timeoutMs` (a probe that takes longer
 * is a failure), with a short human-readable `detail` either way.
 */
import { formatHostPort } from "sgridnext";

/** What a check probes. */
export interface HealthTarget {
  host: string;
  port: number;
  /** HTTP path to GET (http only). Default "/". */
  path?: string;
  /** gRPC service name to ask about (grpc only). Default "" (the server as a whole). */
  service?: string;
}

export interface HealthResult {
  ok: boolean;
  /** e.g. "HTTP 200", "connected", "SERVING", "connect ECONNREFUSED 127.0.0.1:1", "timed out after 2000 ms". */
  detail: string;
}

export interface HealthCheck {
  /** Registry name ("http", "tcp", "grpc", or a registered one). */
  readonly name: string;
  check(target: HealthTarget, timeoutMs: number): Promise<HealthResult>;
}

/** `host:port`, with brackets around an IPv6 host. */
export function address(target: HealthTarget): string {
  return formatHostPort(target.host, target.port);
}

/** The message of anything thrown, for a `detail`. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
