/**
 * Spans for calls, through the OpenTelemetry API when the application has it
 * installed (`@opentelemetry/api`, an optional peer dependency, loaded once
 * something registered a tracer provider, i.e. an SDK): a SERVER span for every call a servant serves, a CLIENT span
 * for every proxy call, children of whatever is current, so any OTel exporter
 * shows the call tree. The W3C `traceparent` goes out with every proxy call
 * and is read from every incoming one, on both transports (traceparent.ts;
 * the OTel global propagator is not needed, nor used).
 *
 * Without the API, no span is made and an incoming traceparent (and
 * tracestate) is passed on unchanged to the calls a servant makes while
 * serving, so a trace started elsewhere still crosses a Sgrid hop.
 */
import type * as OtelApi from "@opentelemetry/api";
import { frameworkVersion } from "../agent/version";
import { SgridError } from "../errors";
import { Status } from "../status";
import type { Endpoint } from "../endpoint";
import type { Metadata, OutgoingCall, ServerContext } from "../transport/base";
import { formatTraceparent, parseTraceparent, traceHeaders, TRACEPARENT, TRACESTATE } from "./traceparent";

type Api = typeof OtelApi;

let api: Api | null | undefined;

/** The OpenTelemetry API if installed, else null (looked up once). */
function otel(): Api | null {
  if (api === undefined) {
    try {
      api = require("@opentelemetry/api") as Api;
    } catch {
      api = null;
    }
  }
  return api;
}

/** Where @opentelemetry/api 1.x keeps what was registered globally (`trace` is set by trace.setGlobalTracerProvider, i.e. by an SDK). */
const OTEL_GLOBAL = Symbol.for("opentelemetry.js.api.1");

let tracerNow: OtelApi.Tracer | undefined;
let noopProvider: OtelApi.TracerProvider | undefined;

/**
 * The API when a tracer provider (an SDK) is registered, else null: with the API installed but no SDK, every span
 * would be a no-op, so calls skip them (and pass trace headers on as without the API).
 */
function recording(): Api | null {
  // Nothing registered a tracer provider yet (API 1.x keeps it under this global symbol): no SDK, so no spans, and the
  // API is not even loaded (44 modules a servant or the node agent would otherwise carry for no span at all).
  if (api === undefined && (globalThis as Record<symbol, { trace?: unknown } | undefined>)[OTEL_GLOBAL]?.trace === undefined) return null;
  const a = otel();
  if (!a) return null;
  noopProvider ??= new a.ProxyTracerProvider().getDelegate();
  const global = a.trace.getTracerProvider() as Partial<OtelApi.ProxyTracerProvider>;
  return typeof global.getDelegate === "function" && global.getDelegate() === noopProvider ? null : a;
}

/** Sgrid's tracer (the API's proxy tracer: it follows whatever provider is registered, now or later). */
function tracer(a: Api): OtelApi.Tracer {
  return (tracerNow ??= a.trace.getTracer("sgridnext", frameworkVersion()));
}

/** For tests: forget the lookup (null = behave as if the API were not installed). */
export function setOtelApiForTests(value: unknown): void {
  api = value as Api | null | undefined;
  tracerNow = undefined;
}

/** The OTel context of each call being served, so the proxy calls made while serving are its children. */
const serving = new WeakMap<ServerContext, OtelApi.Context>();

/** Server spans are errors for the codes OpenTelemetry's RPC conventions call server faults. */
const SERVER_FAULTS: ReadonlySet<Status> = new Set([Status.UNKNOWN, Status.DEADLINE_EXCEEDED, Status.UNIMPLEMENTED, Status.INTERNAL, Status.UNAVAILABLE, Status.DATA_LOSS]);

function statusOf(err: unknown): Status {
  if (err === undefined) return Status.OK;
  return err instanceof SgridError ? err.status : Status.UNKNOWN;
}

function rpcSystem(protocol: string): string {
  return protocol === "sgrid" ? "sgrid" : "grpc";
}

function attributes(path: string, protocol: string | undefined): OtelApi.Attributes {
  const slash = path.lastIndexOf("/");
  const a: OtelApi.Attributes = { "rpc.service": path.slice(1, slash), "rpc.method": path.slice(slash + 1) };
  if (protocol !== undefined) a["rpc.system"] = rpcSystem(protocol);
  return a;
}

function finish(a: Api, span: OtelApi.Span, err: unknown, faults?: ReadonlySet<Status>): void {
  const status = statusOf(err);
  span.setAttribute("rpc.grpc.status_code", status);
  if (err !== undefined && (faults === undefined || faults.has(status))) {
    span.setStatus({ code: a.SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
  }
  span.end();
}

/** The remote parent carried by a call's metadata, as an OTel context; undefined when there is none. */
function remoteParent(a: Api, md: Readonly<Metadata>): OtelApi.Context | undefined {
  const tp = parseTraceparent(md[TRACEPARENT]);
  if (!tp) return undefined;
  const ts = md[TRACESTATE];
  return a.trace.setSpanContext(a.ROOT_CONTEXT, { ...tp, isRemote: true, ...(typeof ts === "string" && ts ? { traceState: a.createTraceState(ts) } : {}) });
}

export interface ServerTrace {
  /** Runs `fn` with the call's span current. */
  run<T>(fn: () => T): T;
  /** Ends the span (idempotent); `err` undefined for success. */
  end(err: unknown): void;
}

/** A SERVER span for a call being served (child of the caller's traceparent); undefined without the OTel API and an SDK. */
export function traceServerCall(ctx: ServerContext): ServerTrace | undefined {
  const a = recording();
  if (!a) return undefined;
  const parent = remoteParent(a, ctx.metadata) ?? a.ROOT_CONTEXT;
  const span = tracer(a).startSpan(ctx.method.slice(1), { kind: a.SpanKind.SERVER, attributes: attributes(ctx.method, ctx.protocol) }, parent);
  const active = a.trace.setSpan(parent, span);
  serving.set(ctx, active);
  let ended = false;
  return {
    run: (fn) => a.context.with(active, fn),
    end: (err) => { if (!ended) { ended = true; finish(a, span, err, SERVER_FAULTS); } },
  };
}

export interface ClientTrace {
  /** The call to send: its metadata carries the traceparent. */
  readonly call: OutgoingCall;
  /** Ends the span (idempotent); `err` undefined for success. */
  end(err?: unknown): void;
  /** Names the endpoint an attempt goes to (rpc.system from its protocol, server.address, server.port); the last attempt's stays. */
  to(ep: Endpoint): void;
}

const NO_END = (): void => undefined;
const NO_TRACE = (call: OutgoingCall): ClientTrace => ({ call, end: NO_END, to: NO_END });

/**
 * A CLIENT span for a proxy call, child of the current span (or of the call
 * being served), with its traceparent in the call's metadata. Without the OTel
 * API, the incoming call's trace headers are passed on unchanged.
 * A traceparent the caller put in the metadata is left alone.
 */
export function traceClientCall(path: string, call: OutgoingCall, incoming: ServerContext | undefined): ClientTrace {
  return clientSpan(path, call, incoming) ?? NO_TRACE(call);
}

/**
 * traceClientCall, or undefined when there is nothing to trace and the call goes out as it is (no span, no
 * trace headers to pass on): a unary call then makes no ClientTrace object.
 */
export function clientSpan(path: string, call: OutgoingCall, incoming: ServerContext | undefined): ClientTrace | undefined {
  if (call.metadata[TRACEPARENT] !== undefined) return undefined;
  const a = recording();
  if (!a) {
    const passOn = incoming && traceHeaders(incoming.metadata);
    return passOn ? NO_TRACE({ ...call, metadata: { ...call.metadata, ...passOn } }) : undefined;
  }
  let parent = a.context.active();
  if (!a.trace.getSpan(parent) && incoming) parent = serving.get(incoming) ?? remoteParent(a, incoming.metadata) ?? parent;
  const span = tracer(a).startSpan(path.slice(1), { kind: a.SpanKind.CLIENT, attributes: attributes(path, undefined) }, parent);
  const sc = span.spanContext();
  let out = call;
  if (a.trace.isSpanContextValid(sc)) {
    const headers: Metadata = { [TRACEPARENT]: formatTraceparent(sc) };
    const ts = sc.traceState?.serialize();
    if (ts) headers[TRACESTATE] = ts;
    out = { ...call, metadata: { ...call.metadata, ...headers } };
  }
  let ended = false;
  return {
    call: out,
    end: (err) => { if (!ended) { ended = true; finish(a, span, err); } },
    to: (ep) => { span.setAttributes({ "rpc.system": rpcSystem(ep.protocol), "server.address": ep.host, "server.port": ep.port }); },
  };
}
