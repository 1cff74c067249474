/**
 * "Try a call": an operator calls one method of an Obj with a JSON request
 * and sees the reply, status, response headers, trailers and latency.
 *
 * GET  /api/try/methods?obj=App.Server.Obj  -> {obj, endpoint, services: [{name, methods: [{name, kind, requestType, responseType, skeleton}]}]}
 * POST /api/try/call {obj, method, request, timeoutMs?}
 *   -> 200 {status: {code, name, message}, reply | messages, truncated, headers, trailers, latencyMs, endpoint}
 *      for every call that was sent, whatever the servant answered;
 *   -> 400 (field "request") when the JSON does not fit the message, 404 for an
 *      unknown method, 503 NO_ENDPOINT when the Obj has no active endpoint.
 *
 * The registry decides who may (Admin.PrepareTryCall, operator on the Obj's
 * application) and where (the Obj's active endpoints, gRPC ones first); the
 * methods come from the servant's server reflection; the admin process
 * makes the call itself. Every call, failed or not, goes to the event log
 * (Admin.RecordTryCall): actor, Obj, method, endpoint, status, latency,
 * never the request or the reply.
 */
import { z } from "zod";
import type { JsonValue } from "@bufbuild/protobuf";
import { NoEndpointError, ReflectionClient, SgridError, Status, type Metadata } from "sgridnext";
import { body, check } from "../body";
import { asUser, type AdminContext, type AdminRouter } from "../context";

export const TRY_CALL_LIMITS = Object.freeze({
  /** Deadline of a call when the request gives none, ms. */
  defaultTimeoutMs: 5_000,
  maxTimeoutMs: 60_000,
  /** Messages of a server stream (or bidi) shown; the call is cancelled after them. */
  maxMessages: 100,
});

/** Services every framework servant hosts; not what an operator came to try. */
const HIDDEN_SERVICES = /^grpc\.reflection\./;

const ObjQuery = z.object({ obj: z.string().trim().min(1, "obj is required (App.Server.Obj)") });

const CallBody = z.object({
  obj: z.string().trim().min(1, "obj is required (App.Server.Obj)"),
  method: z.string().trim().min(1, "method is required (package.Service/Method)").max(300),
  request: z.unknown().refine((v) => v !== undefined, "request is required (JSON; an array for a client stream)"),
  timeoutMs: z.number({ message: "timeoutMs must be a number of ms" }).int().min(1, "timeoutMs must be at least 1")
    .max(TRY_CALL_LIMITS.maxTimeoutMs, `timeoutMs is at most ${TRY_CALL_LIMITS.maxTimeoutMs}`).default(TRY_CALL_LIMITS.defaultTimeoutMs),
});

/** The endpoint to call: the registry's first active one (a gRPC adapter when there is one). */
async function resolve(ctx: AdminContext, obj: string): Promise<{ obj: string; target: string }> {
  const reply = await ctx.admin.registry.admin.prepareTryCall({ obj }, asUser(ctx));
  const ep = reply.active[0];
  if (!ep) throw new NoEndpointError(`${reply.obj} has no active endpoint: start an instance of it first`);
  return { obj: reply.obj, target: `${ep.host}:${ep.port}` };
}

function metadataJson(md: Metadata | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(md ?? {})) out[k] = typeof v === "string" ? v : `base64:${Buffer.from(v).toString("base64")}`;
  return out;
}

export function tryCallRoutes(router: AdminRouter): void {
  router.get("/api/try/methods", async (ctx) => {
    const q = check(ObjQuery, ctx.query);
    const { obj, target } = await resolve(ctx, q.obj);
    const rc = new ReflectionClient(ctx.admin.tryCaller.communicator, target);
    const services = [];
    for (const name of (await rc.listServices()).filter((s) => !HIDDEN_SERVICES.test(s)).sort()) {
      const svc = await rc.describeService(name);
      const methods = [];
      for (const m of svc.methods) {
        methods.push({ name: m.name, fullName: `${svc.name}/${m.name}`, kind: m.kind, requestType: m.requestType, responseType: m.responseType, skeleton: await rc.requestSkeleton(`${svc.name}/${m.name}`) });
      }
      services.push({ name: svc.name, methods });
    }
    ctx.body = { obj, endpoint: target, services };
  });

  router.post("/api/try/call", async (ctx) => {
    const input = await body(ctx, CallBody, ctx.admin.options.maxJsonBytes);
    const { obj, target } = await resolve(ctx, input.obj);
    const rc = new ReflectionClient(ctx.admin.tryCaller.communicator, target);
    const request = input.request as JsonValue;
    const record = (status: string, message: string, latencyMs: number) =>
      ctx.admin.registry.admin.recordTryCall({ obj, method: input.method, status, message, latencyMs, endpoint: target }, asUser(ctx));
    try {
      await rc.checkRequest(input.method, request);
    } catch (err) {
      const e = err instanceof SgridError ? err : new SgridError("INTERNAL", String(err));
      await record(Status[e.status] ?? "UNKNOWN", e.message, 0);
      throw err;
    }
    const method = await rc.describeMethod(input.method);
    let headers: Metadata | undefined;
    let trailers: Metadata | undefined;
    const started = process.hrtime.bigint();
    let result: JsonValue | JsonValue[] | undefined;
    let error: SgridError | undefined;
    try {
      result = await rc.call(input.method, request, {
        timeoutMs: input.timeoutMs, maxMessages: TRY_CALL_LIMITS.maxMessages,
        onHeaders: (h) => (headers = h), onTrailers: (t) => (trailers = t),
      });
    } catch (err) {
      error = err instanceof SgridError ? err : new SgridError("INTERNAL", (err as Error).message ?? String(err));
    }
    const latencyMs = Number(process.hrtime.bigint() - started) / 1e6;
    const name = error ? Status[error.status] ?? "UNKNOWN" : "OK";
    await record(name, error?.message ?? "", latencyMs);
    const streamed = method.kind === "server_stream" || method.kind === "bidi";
    ctx.body = {
      obj, method: input.method, kind: method.kind, endpoint: target, latencyMs,
      status: { name, code: error ? error.code : "OK", message: error?.message ?? "" },
      ...(streamed ? { messages: (result as JsonValue[] | undefined) ?? [], truncated: Array.isArray(result) && result.length >= TRY_CALL_LIMITS.maxMessages } : { reply: result ?? null }),
      headers: metadataJson(headers), trailers: metadataJson(trailers),
    };
  });
}
