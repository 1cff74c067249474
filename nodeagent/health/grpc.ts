/**
 * gRPC health check: calls `grpc.health.v1.Health/Check` and is healthy only
 * on SERVING. Any gRPC server in any language that implements the standard
 * health service can be checked; one that does not answers UNIMPLEMENTED,
 * which is reported as such (and is a failure).
 *
 * The two messages have one field each, so they are encoded by hand rather
 * than generated:
 *   HealthCheckRequest  { string service = 1; }
 *   HealthCheckResponse { ServingStatus status = 1; }  UNKNOWN=0 SERVING=1 NOT_SERVING=2 SERVICE_UNKNOWN=3
 * A fresh channel per check (closed after it), so a check never reports on
 * a connection to a process that has since been replaced.
 */
import * as grpc from "@grpc/grpc-js";
import { address, messageOf, type HealthCheck, type HealthResult, type HealthTarget } from "./base";

export const HEALTH_CHECK_METHOD = "/grpc.health.v1.Health/Check";

export const SERVING_STATUS = Object.freeze({ UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 } as const);
const STATUS_NAMES = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"];

function encodeVarint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

/** Encodes HealthCheckRequest{service}. */
export function encodeHealthRequest(req: { service?: string }): Buffer {
  const service = Buffer.from(req.service ?? "", "utf8");
  if (service.length === 0) return Buffer.alloc(0);
  return Buffer.concat([Buffer.from([0x0a, ...encodeVarint(service.length)]), service]);
}

/** Decodes HealthCheckResponse, skipping unknown fields. Throws on malformed input. */
export function decodeHealthResponse(buf: Buffer): { status: number } {
  let pos = 0;
  let status = 0;
  const varint = (): number => {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= buf.length) throw new Error("truncated varint");
      const b = buf[pos++];
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 128;
    }
    throw new Error("varint too long");
  };
  while (pos < buf.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    switch (wire) {
      case 0: {
        const v = varint();
        if (field === 1) status = v;
        break;
      }
      case 1:
        pos += 8;
        break;
      case 2: {
        const len = varint(); // read before adding: `pos += varint()` would add to the pre-varint pos
        pos += len;
        break;
      }
      case 5:
        pos += 4;
        break;
      default:
        throw new Error(`unsupported wire type ${wire}`);
    }
    if (pos > buf.length) throw new Error("truncated field");
  }
  return { status };
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
