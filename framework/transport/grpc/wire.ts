/**
 * The one place where gRPC statuses and Sgrid errors meet (both directions),
 * plus metadata conversion.
 */
import * as grpc from "@grpc/grpc-js";
import { errorFromWire, errorToWire, type SgridError } from "../../errors";
import { getLogger } from "../../logger";
import { formatHostPort } from "../../endpoint";
import type { Metadata } from "../base";

export const ERROR_CODE_KEY = "sgrid-error-code";
export const ERROR_DATA_KEY = "sgrid-error-data";

const log = getLogger("transport.grpc");

// grpc-js' own diagnostics go to our structured log (debug level) instead of raw stderr.
grpc.setLogger({
  error: (...args: unknown[]) => log.debug({ grpc: args.join(" ") }, "grpc-js"),
  info: (...args: unknown[]) => log.trace({ grpc: args.join(" ") }, "grpc-js"),
  debug: (...args: unknown[]) => log.trace({ grpc: args.join(" ") }, "grpc-js"),
} as Partial<Console> as Console);

/** Server side: a thrown value -> the status object grpc-js sends. Unexpected errors are logged here, not sent. */
export function toGrpcStatus(err: unknown, path: string): Partial<grpc.StatusObject> & { code: grpc.status } {
  const wire = errorToWire(err);
  if (wire.code === "INTERNAL" && !(err as { code?: unknown })?.code) {
    log.error({ err, method: path }, "servant method threw an unexpected error; caller gets INTERNAL");
  }
  const md = new grpc.Metadata();
  md.set(ERROR_CODE_KEY, wire.code);
  if (wire.data !== undefined) md.set(ERROR_DATA_KEY, JSON.stringify(wire.data));
  return { code: wire.status as number as grpc.status, details: wire.message, metadata: md };
}

/** Client side: a grpc-js ServiceError -> the same SgridError class the servant threw. */
export function fromGrpcError(err: unknown): SgridError {
  const e = err as Partial<grpc.ServiceError>;
  return fromGrpcStatus(typeof e.code === "number" ? e.code : grpc.status.UNKNOWN, e.details ?? e.message ?? "unknown error", e.metadata);
}

/** Client side: a call's status (code, details, trailers) -> the same SgridError class the servant threw. */
export function fromGrpcStatus(code: number, details: string, metadata: grpc.Metadata | undefined): SgridError {
  const sgridCode = metadata?.get(ERROR_CODE_KEY)[0];
  const rawData = metadata?.get(ERROR_DATA_KEY)[0];
  let data: Record<string, unknown> | undefined;
  if (typeof rawData === "string") {
    try { data = JSON.parse(rawData) as Record<string, unknown>; } catch { data = undefined; }
  }
  return errorFromWire(code, details, typeof sgridCode === "string" ? sgridCode : undefined, data);
}

/** Checked metadata (checkMetadata) -> grpc-js metadata; `-bin` values are Buffers. */
export function toGrpcMetadata(md: Metadata): grpc.Metadata {
  const out = new grpc.Metadata();
  for (const key in md) {
    const v = md[key]!;
    out.set(key, typeof v === "string" || Buffer.isBuffer(v) ? v : Buffer.from(v));
  }
  return out;
}

/** Received metadata, `-bin` values as Buffers; the first value of a repeated key; Sgrid's own error keys left out. */
export function fromGrpcMetadata(md: grpc.Metadata): Metadata {
  const out: Metadata = {};
  const map = md.getMap();
  for (const key in map) {
    if (key === ERROR_CODE_KEY || key === ERROR_DATA_KEY) continue;
    out[key] = map[key]!;
  }
  return out;
}

export function grpcAddress(host: string, port: number): string {
  return formatHostPort(host, port);
}
