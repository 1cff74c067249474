/**
 * W3C Trace Context (`traceparent`, `tracestate`) in request metadata: the
 * same header on both transports, so a trace crosses gRPC and native hops
 * and any W3C-speaking peer (grpc-go, Envoy, a Java agent) joins it.
 */
import type { Metadata } from "../transport/base";

export const TRACEPARENT = "traceparent";
export const TRACESTATE = "tracestate";

export interface TraceParent {
  /** 32 lower-case hex digits, not all zero. */
  readonly traceId: string;
  /** 16 lower-case hex digits, not all zero. */
  readonly spanId: string;
  /** Trace flags (bit 0: sampled). */
  readonly traceFlags: number;
}

const TRACEPARENT_RE = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/** Parses a traceparent value; undefined for anything the spec says to ignore (bad shape, version ff, zero ids). */
export function parseTraceparent(value: string | Buffer | undefined): TraceParent | undefined {
  if (typeof value !== "string") return undefined;
  const m = TRACEPARENT_RE.exec(value.trim());
  if (!m) return undefined;
  const [, version, traceId, spanId, flags, rest] = m;
  if (version === "ff" || (version === "00" && rest !== undefined)) return undefined;
  if (/^0+$/.test(traceId!) || /^0+$/.test(spanId!)) return undefined;
  return { traceId: traceId!, spanId: spanId!, traceFlags: parseInt(flags!, 16) };
}

export function formatTraceparent(t: TraceParent): string {
  return `00-${t.traceId}-${t.spanId}-${(t.traceFlags & 0xff).toString(16).padStart(2, "0")}`;
}

/** The trace headers of an incoming call, to pass on unchanged when no tracer records a span of ours. */
export function traceHeaders(md: Readonly<Metadata>): Metadata | undefined {
  const tp = md[TRACEPARENT];
  if (typeof tp !== "string" || parseTraceparent(tp) === undefined) return undefined;
  const ts = md[TRACESTATE];
  return typeof ts === "string" && ts ? { [TRACEPARENT]: tp, [TRACESTATE]: ts } : { [TRACEPARENT]: tp };
}
