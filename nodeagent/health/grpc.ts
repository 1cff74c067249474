/**
 * gRPC health check: calls `grpc.health.v1.Health/Check` and is healthy only
 * on SERVING. Any gRPC server in any language that implements the standard
 * health service can be checked; one that does not answers UNIMPLEMENTED,
 * which is reported as such (and is a failure).
 *
 * The messages are the generated ones of proto/grpc/health/v1 (the same the
 * framework's own health servant uses).
 * A fresh channel per check (closed after it), so a check never reports on
 * a connection to a process that has since been replaced.
 */
import * as grpc from "@grpc/grpc-js";
import { HealthCheckRequest, HealthCheckResponse } from "sgridnext/gen/grpc/health/v1/health";
import { address, messageOf, type HealthCheck, type HealthResult, type HealthTarget } from "./base";

export const HEALTH_CHECK_METHOD = "/grpc.health.v1.Health/Check";

export const SERVING_STATUS = Object.freeze({ UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 } as const);
const STATUS_NAMES = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"];

/** Encodes HealthCheckRequest{service} (generated codec of proto/grpc/health/v1). */
export function encodeHealthRequest(req: { service?: string }): Buffer {
  const bytes = HealthCheckRequest.encode({ service: req.service ?? "" }).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Decodes HealthCheckResponse, skipping unknown fields. Throws on malformed input. */
export function decodeHealthResponse(buf: Buffer): { status: number } {
  try {
    return { status: HealthCheckResponse.decode(buf).status };
  } catch (err) {
    throw new Error(`truncated or malformed HealthCheckResponse: ${messageOf(err)}`);
  }
}

export const grpcCheck: HealthCheck = {
  name: "grpc",
  check(target: HealthTarget, timeoutMs: number): Promise<HealthResult> {
    return new Promise((resolve) => {
      let client: grpc.Client | undefined;
      let settled = false;
      const finish = (r: HealthResult): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        client?.close();
        resolve(r);
      };
      // The deadline below normally fires first; this is a backstop in case the channel never reports.
      const timer = setTimeout(() => finish({ ok: false, detail: `timed out after ${timeoutMs} ms` }), timeoutMs + 250);
      try {
        client = new grpc.Client(address(target), grpc.credentials.createInsecure(), { "grpc.enable_retries": 0 });
        client.makeUnaryRequest(
          HEALTH_CHECK_METHOD, encodeHealthRequest, decodeHealthResponse, { service: target.service ?? "" },
          new grpc.Metadata(), { deadline: Date.now() + timeoutMs },
          (err: grpc.ServiceError | null, res?: { status: number }) => {
            if (err) {
              const why = err.code === grpc.status.DEADLINE_EXCEEDED ? `timed out after ${timeoutMs} ms`
                : err.code === grpc.status.UNIMPLEMENTED ? "server does not implement grpc.health.v1.Health"
                  : err.code === grpc.status.NOT_FOUND ? `service "${target.service ?? ""}" unknown to the server`
                    : `${grpc.status[err.code] ?? err.code}: ${err.details}`;
              finish({ ok: false, detail: why });
              return;
            }
            const status = res?.status ?? 0;
            finish({ ok: status === SERVING_STATUS.SERVING, detail: STATUS_NAMES[status] ?? `status ${status}` });
          },
        );
      } catch (err) {
        finish({ ok: false, detail: messageOf(err) });
      }
    });
  },
};
