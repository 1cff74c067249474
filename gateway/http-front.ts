/**
 * The gateway's HTTP port (node:http, HTTP/1.1 keep-alive): the same
 * services as the gRPC front, for clients that cannot speak HTTP/2 gRPC.
 *
 *   POST /<package.Service>/<Method>   body JSON (application/json, or no content type)
 *        -> 200 and the reply as proto3 JSON; a server-streaming or bidi
 *           method answers newline-delimited JSON (`{"result": ...}` per
 *           message, `{"error": ...}` last when it fails), as grpc-gateway
 *           does; client-streaming and bidi methods take a JSON array.
 *   POST /<package.Service>/<Method>   body gRPC-Web (application/grpc-web[-text][+proto])
 *        -> 200, data frames, then the trailers frame (grpc-status)
 *   <VERB> <path of a google.api.http binding>   (gateway/http-rules.ts)
 *        -> the method the servant's descriptors map that REST path to:
 *           path variables, query parameters and the body make the request,
 *           the reply (or its response_body field) is the JSON answer
 *   OPTIONS (any path)                 CORS preflight, from the route's `cors`
 *   GET /metrics                       Prometheus text: per route calls, errors by code, latency
 *
 * Per request, in this order, each refusal changing nothing and reaching no
 * servant: the route (routes file) must expose the service (UNIMPLEMENTED),
 * the bearer token must match (UNAUTHENTICATED, 401), the client (its
 * socket's address: a forwarded-for header is not trusted) must be within
 * the route's rateLimit (RESOURCE_EXHAUSTED, 429 + Retry-After), the body
 * within maxMessageBytes (RESOURCE_EXHAUSTED, 413; the connection is then
 * closed rather than the rest of the body read), and its bytes must keep
 * coming: a body that sends nothing for the route's bodyIdleTimeoutMs
 * (default 30 s) is DEADLINE_EXCEEDED with HTTP 408, the connection closed
 * (the backend call is opened only once the whole body is read, so no servant
 * waits on a stalled client). JSON that does not fit the
 * request message is INVALID_ARGUMENT naming the field (`field` in the body).
 * Errors in JSON mode: `{"code": <grpc number>, "message", "error": CODE,
 * "details": [], "field"?}` with the HTTP status grpc-gateway gives the code;
 * in gRPC-Web mode: HTTP 200 and the status in the trailers frame.
 *
 * Metadata: JSON mode passes `grpc-metadata-<key>` request headers on as
 * `<key>` (grpc-gateway's convention) and returns the servant's headers and
 * trailers as `grpc-metadata-<key>` / `grpc-trailer-<key>`; gRPC-Web passes
 * its headers on as they are, minus the browser's own (cookie, origin, ...).
 * `grpc-timeout` sets the deadline in both modes.
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import type { JsonValue } from "@bufbuild/protobuf";
import {
  Communicator, DeadlineExceededError, InvalidArgumentError, NotFoundError, ReflectionClient, ResourceExhaustedError, SgridError, Status, StatsRegistry,
  UnauthenticatedError, UnimplementedError, bindErrorFrom, errorToWire, getLogger, renderMetrics, renderStats, statusName, type Metadata,
} from "sgridnext";
import { answerPreflight, corsHeaders } from "./cors";
import { forwardableHeaders, forwardableMetadata, splitPath, type ForwardCall, type Forwarder } from "./forwarder";
import {
  FRAME_DATA, decodeTextBody, encodeForMode, encodeFrame, encodeGrpcMessage, grpcWebContentType, grpcWebMode, parseFrames, parseGrpcTimeout, singleMessage, trailersFrame,
  type GrpcWebMode,
} from "./grpc-web";
import { httpStatusOf } from "./http-status";
import { clientKey, RateLimiter } from "./rate-limit";
import { authorized, Routes, type RouteRule } from "./routes";
import { matchRest, restRequest, restResponse, restRoutes, type RestRoute } from "./http-rules";
import { Descriptors, type MethodTranscoder } from "./transcoder";

const log = getLogger("gateway.http");

export const HTTP_FRONT_DEFAULTS = Object.freeze({ keepAliveTimeoutMs: 65_000, restTableTtlMs: 60_000 });

export interface HttpFrontOptions {
  forwarder: Forwarder;
  /** Where the descriptors for JSON transcoding are asked (the Obj the forwarder resolves each service to). */
  communicator: Communicator;
  routes?: Routes;
  /** Idle keep-alive connections are closed after this long, ms. Default 65000. */
  keepAliveTimeoutMs?: number;
  /** Rate-limit clock (tests). Default performance.now. */
  now?: () => number;
  /** The rate limiter to use (shared with the gRPC front in `sgrid gateway`); default one of its own. */
  limiter?: RateLimiter;
  /** The services whose google.api.http bindings are served as REST paths (`sgrid gateway`: the registry's service map). Default none. */
  services?: () => readonly string[];
  /** How long the REST table (every binding of those services) is kept before it is built again, ms; a new service list rebuilds it at once. Default 60000. */
  restTableTtlMs?: number;
}

/** A gRPC method path (`/package.Service/Method`): anything else may be a REST binding. */
const METHOD_PATH = /^\/([^/]+\.[^/]+)\/([^/]+)$/;

/** Request headers of a browser or of HTTP itself: never passed on to a servant. */
const BROWSER_HEADERS = new Set([
  "cookie", "origin", "referer", "accept", "accept-language", "x-grpc-web", "x-user-agent", "cache-control", "pragma", "priority", "dnt",
]);

class BodyTooLargeError extends ResourceExhaustedError {}
/**
 * A request body that stopped coming. DEADLINE_EXCEEDED (the code a caller's gRPC library knows for "took too
 * long"), answered with HTTP 408 Request Timeout rather than the 504 grpc-gateway gives the code: the client is
 * the one that was late, not a backend (as 413 for an oversized body).
 */
class BodyStalledError extends DeadlineExceededError {}

type Mode = GrpcWebMode | "json";

export class HttpFront {
  /** Per route (scope: service, method: path) calls, errors by code and latency, every refusal included. */
  readonly stats = new StatsRegistry();
  private routes: Routes;
  private readonly forwarder: Forwarder;
  private readonly descriptors: Descriptors;
  private readonly limiter: RateLimiter;
  private readonly server: http.Server;
  private readonly services: () => readonly string[];
  private readonly restTtlMs: number;
  private restTable: { at: number; key: string; routes: Promise<RestRoute[]> } | undefined;

  constructor(options: HttpFrontOptions) {
    this.forwarder = options.forwarder;
    this.routes = options.routes ?? new Routes();
    this.limiter = options.limiter ?? new RateLimiter({ now: options.now });
    this.services = options.services ?? (() => []);
    this.restTtlMs = options.restTableTtlMs ?? HTTP_FRONT_DEFAULTS.restTableTtlMs;
    const communicator = options.communicator;
    this.descriptors = new Descriptors(async (service) => new ReflectionClient(communicator, (await this.forwarder.resolve(service)).obj));
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.keepAliveTimeout = options.keepAliveTimeoutMs ?? HTTP_FRONT_DEFAULTS.keepAliveTimeoutMs;
  }

  /** Swaps the routes: requests after this see them; open connections (keep-alive sockets) and calls in flight are not touched. */
  setRoutes(routes: Routes): void {
    this.routes = routes;
    this.limiter.clear();
  }

  currentRoutes(): Routes {
    return this.routes;
  }

  /** Listens; resolves with the bound port. BindError naming the address when it cannot. */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once("error", (err) => reject(bindErrorFrom(err as NodeJS.ErrnoException, host, port)));
      this.server.listen(port, host, () => {
        const bound = (this.server.address() as AddressInfo).port;
        log.info({ host, port: bound }, "gateway HTTP front listening");
        resolve(bound);
      });
    });
  }

  /** Stops accepting, lets calls in flight end for up to `graceMs`, then closes every connection. */
  shutdown(graceMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.server.closeAllConnections(), graceMs);
      timer.unref();
      this.server.close(() => { clearTimeout(timer); resolve(); });
      this.server.closeIdleConnections();
    });
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const path = q < 0 ? url : url.slice(0, q);
    if (req.method === "GET" && path === "/metrics") {
      this.metrics(res);
      return;
    }
    const methodPath = METHOD_PATH.test(path);
    if (req.method === "OPTIONS") {
      this.preflight(req, res, path, methodPath).catch((err: unknown) => this.fail(req, res, "json", err));
      return;
    }
    const mode: Mode = grpcWebMode(req.headers["content-type"]) ?? "json";
    const at = { path: methodPath ? path : NOT_A_METHOD };
    const started = performance.now();
    const call = methodPath && (req.method === "POST" || mode !== "json")
      ? this.call(req, res, path, mode)
      : this.rest(req, res, path, new URLSearchParams(q < 0 ? "" : url.slice(q + 1)), mode, at);
    call.then(() => this.record(at.path, started, undefined), (err: unknown) => {
      this.record(at.path, started, err);
      this.fail(req, res, mode, err);
    });
  }

  private async preflight(req: http.IncomingMessage, res: http.ServerResponse, path: string, methodPath: boolean): Promise<void> {
    let service: string | undefined = methodPath ? METHOD_PATH.exec(path)![1] : undefined;
    if (!methodPath) {
      const verb = header(req, "access-control-request-method")?.toUpperCase() ?? "";
      service = matchRest(await this.restRoutes(), verb, path)?.route.service;
    }
    answerPreflight(service === undefined ? undefined : this.routes.match(service)?.cors, req, res);
  }

  private record(path: string, started: number, err: unknown): void {
    const m = METHOD_PATH.exec(path);
    // Paths that are not methods share one entry, so random URLs cannot grow the table.
    const stats = m ? this.stats.get(m[1]!, path) : this.stats.get("(none)", NOT_A_METHOD);
    stats.record(performance.now() - started, err);
  }

  /** The route of `service` after the route's checks: exposed, bearer token, rate limit (each refusal thrown). */
  private guard(req: http.IncomingMessage, res: http.ServerResponse, service: string): RouteRule {
    const rule = this.routes.match(service);
    if (!rule) throw new UnimplementedError(`service "${service}" is not exposed by the gateway's routes`, { service });
    for (const [k, v] of Object.entries(corsHeaders(rule.cors, req.headers.origin))) res.setHeader(k, v);
    if (!authorized(rule, req.headers.authorization)) {
      res.setHeader("www-authenticate", "Bearer");
      throw new UnauthenticatedError(`service "${service}" needs a bearer token (header authorization: Bearer <token>)`, { service });
    }
    if (rule.rateLimit) {
      const waitMs = this.limiter.take(clientKey(rule, req.socket.remoteAddress), rule.rateLimit);
      if (waitMs > 0) {
        res.setHeader("retry-after", String(Math.ceil(waitMs / 1000)));
        throw new ResourceExhaustedError(`rate limit of service "${service}" reached for this client (${rule.rateLimit.perSecond}/s); retry in ${waitMs} ms`, { service, retryAfterMs: waitMs });
      }
    }
    return rule;
  }

  private forwardCall(req: http.IncomingMessage, res: http.ServerResponse, mode: Mode, rule: RouteRule): ForwardCall {
    const timeoutMs = parseGrpcTimeout(header(req, "grpc-timeout"));
    const abort = new AbortController();
    res.on("close", () => { if (!res.writableFinished) abort.abort(); });
    return {
      metadata: this.metadataOf(req, mode, rule),
      deadline: timeoutMs === undefined ? undefined : Date.now() + timeoutMs,
      signal: abort.signal,
    };
  }

  private async call(req: http.IncomingMessage, res: http.ServerResponse, path: string, mode: Mode): Promise<void> {
    if (req.method !== "POST") throw new NotFoundError(`${req.method} ${path.slice(0, 200)}: call a method with POST /package.Service/Method (or GET /metrics)`);
    const [service, method] = splitPath(path);
    const rule = this.guard(req, res, service);
    const body = await readBody(req, rule);
    const fwd = this.forwardCall(req, res, mode, rule);
    if (mode === "json") {
      const t = await this.descriptors.method(service, method);
      await this.json(res, path, t, parseJsonBody(body), fwd);
    } else {
      await this.grpcWeb(res, mode, path, body, fwd);
    }
  }

  /** Every google.api.http binding of the services, built again after restTableTtlMs or when the service list changed. */
  private restRoutes(): Promise<RestRoute[]> {
    const services = [...new Set(this.services())].sort();
    const key = services.join(",");
    const now = Date.now();
    const kept = this.restTable;
    if (kept && kept.key === key && now - kept.at < this.restTtlMs) return kept.routes;
    const routes = (async () => {
      const methods: Array<{ service: string; transcoder: MethodTranscoder }> = [];
      await Promise.all(services.map(async (service) => {
        try {
          for (const transcoder of (await this.descriptors.service(service)).values()) methods.push({ service, transcoder });
        } catch (err) {
          log.debug({ service, err: (err as Error).message }, "no descriptors for the REST table: the service's REST paths are not served until they load");
        }
      }));
      return restRoutes(methods, (what, err) => log.warn({ method: what, err: err.message }, "google.api.http binding not served: its template does not parse"));
    })();
    this.restTable = { at: now, key, routes };
    return routes;
  }

  private async rest(req: http.IncomingMessage, res: http.ServerResponse, path: string, query: URLSearchParams, mode: Mode, at: { path: string }): Promise<void> {
    const verb = (req.method ?? "GET").toUpperCase();
    const routes = await this.restRoutes();
    const match = matchRest(routes, verb, path);
    if (!match) {
      const others = [...new Set(routes.filter((r) => r.compiled.regex.test(path)).map((r) => r.binding.verb))];
      if (others.length > 0) {
        res.setHeader("allow", others.join(", "));
        throw new UnimplementedError(`${verb} ${path.slice(0, 200)}: this path takes ${others.join(", ")}`, { allow: others });
      }
      throw new NotFoundError(`${verb} ${path.slice(0, 200)}: no method is mapped to this path (google.api.http), and it is not POST /package.Service/Method`);
    }
    if (mode !== "json") throw new InvalidArgumentError(`${verb} ${path.slice(0, 200)} is a REST path: send JSON, or gRPC-Web to POST ${match.route.path}`, { field: "(content-type)" });
    const { route } = match;
    at.path = route.path;
    const rule = this.guard(req, res, route.service);
    const t = route.transcoder;
    if (t.kind === "client_stream" || t.kind === "bidi") throw new UnimplementedError(`${route.path} is a ${t.kind === "bidi" ? "bidi" : "client"}-streaming method: its REST binding is not served; call POST ${route.path} with a JSON array`);
    const body = await readBody(req, rule);
    // A binding without a body takes none (a GET's body, if any, is not read as the request).
    const parsed = route.binding.body && body.length > 0 ? parseJsonBody(body) : undefined;
    const request = restRequest(match, parsed, query);
    await this.json(res, route.path, t, request, this.forwardCall(req, res, mode, rule), (reply) => restResponse(route, reply));
  }

  private metadataOf(req: http.IncomingMessage, mode: Mode, rule: RouteRule): Metadata {
    const md: Metadata = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (typeof v !== "string") continue;
      if (mode === "json") {
        if (k.startsWith("grpc-metadata-")) md[k.slice("grpc-metadata-".length)] = v;
        else if (k === "authorization") md[k] = v;
      } else if (!BROWSER_HEADERS.has(k) && !k.startsWith("sec-") && !k.startsWith("access-control-")) {
        md[k] = v;
      }
    }
    return forwardableMetadata(md, rule.auth !== "none");
  }

  private async json(res: http.ServerResponse, path: string, t: MethodTranscoder, parsed: JsonValue, fwd: ForwardCall, answer: (reply: JsonValue) => JsonValue = (r) => r): Promise<void> {
    const many = t.kind === "client_stream" || t.kind === "bidi";
    if (many && !Array.isArray(parsed)) throw new InvalidArgumentError(`${path} takes a stream: send a JSON array of requests`, { field: "(body)" });
    const requests = many ? (parsed as JsonValue[]).map((r, i) => withIndex(i, many, () => t.requestFromJson(r))) : [t.requestFromJson(parsed)];
    const call: ForwardCall = {
      ...fwd,
      onHeaders: (h) => { if (!res.headersSent) for (const [k, v] of Object.entries(forwardableHeaders(h) ?? {})) res.setHeader(`grpc-metadata-${k}`, printable(v)); },
      onTrailers: (h) => { if (!res.headersSent) for (const [k, v] of Object.entries(h)) res.setHeader(`grpc-trailer-${k}`, printable(v)); },
    };
    const source = (async function* () { yield* requests; })();
    if (t.kind === "unary" || t.kind === "client_stream") {
      const reply = t.kind === "unary" ? await this.forwarder.unary(path, requests[0]!, call) : await this.forwarder.clientStream(path, source, call);
      const text = JSON.stringify(answer(t.responseToJson(reply)));
      res.writeHead(200, { "content-type": "application/json" }).end(text);
      return;
    }
    const stream = t.kind === "server_stream" ? this.forwarder.serverStream(path, requests[0]!, call) : this.forwarder.bidi(path, source, call);
    let started = false;
    try {
      for await (const msg of stream) {
        if (!started) { res.writeHead(200, { "content-type": "application/x-ndjson" }); started = true; }
        if (!res.write(`${JSON.stringify({ result: answer(t.responseToJson(msg)) })}\n`)) await drained(res);
      }
    } catch (err) {
      if (!started) throw err;
      // Headers are gone: the error is the last line, as grpc-gateway streams it.
      res.end(`${JSON.stringify({ error: errorBody(err) })}\n`);
      throw err;
    }
    if (!started) res.writeHead(200, { "content-type": "application/x-ndjson" });
    res.end();
  }

  private async grpcWeb(res: http.ServerResponse, mode: GrpcWebMode, path: string, body: Buffer, fwd: ForwardCall): Promise<void> {
    const message = singleMessage(parseFrames(mode === "text" ? decodeTextBody(body.toString("latin1")) : body));
    const kind = await this.forwarder.methodKind(path);
    if (kind === "client_stream" || kind === "bidi") throw new UnimplementedError(`${path} is ${kind === "bidi" ? "a bidi" : "a client"}-streaming method; gRPC-Web carries unary and server-streaming calls only`);
    let trailers: Metadata = {};
    const start = (): void => {
      if (!res.headersSent) res.writeHead(200, { "content-type": grpcWebContentType(mode) });
    };
    const call: ForwardCall = {
      ...fwd,
      onHeaders: (h) => { if (!res.headersSent) for (const [k, v] of Object.entries(forwardableHeaders(h) ?? {})) res.setHeader(k, printable(v)); },
      onTrailers: (h) => { trailers = h; },
    };
    if (kind === "unary") {
      const reply = await this.forwarder.unary(path, message, call);
      start();
      res.write(encodeForMode(mode, encodeFrame(FRAME_DATA, reply)));
    } else {
      for await (const msg of this.forwarder.serverStream(path, message, call)) {
        start();
        if (!res.write(encodeForMode(mode, encodeFrame(FRAME_DATA, msg)))) await drained(res);
      }
    }
    start();
    res.end(encodeForMode(mode, trailersFrame(Status.OK, "", printableAll(trailers))));
  }

  private fail(req: http.IncomingMessage, res: http.ServerResponse, mode: Mode, err: unknown): void {
    const wire = errorToWire(err);
    if (wire.status === Status.INTERNAL && !(err instanceof SgridError)) log.error({ err, url: req.url?.slice(0, 200) }, "gateway HTTP call failed");
    if (res.writableEnded || res.destroyed) return;
    const tooLarge = err instanceof BodyTooLargeError;
    const stalled = err instanceof BodyStalledError;
    // The rest of an oversized or stalled body is not read: the connection goes with the answer.
    if (tooLarge || stalled) res.setHeader("connection", "close");
    if (mode !== "json") {
      const extra: Record<string, string> = { "sgrid-error-code": wire.code };
      if (wire.data) extra["sgrid-error-data"] = encodeGrpcMessage(JSON.stringify(wire.data));
      if (!res.headersSent) {
        // Trailers-only: nothing was sent yet, so the status goes in the headers and the body stays empty.
        res.writeHead(200, { "content-type": grpcWebContentType(mode), "grpc-status": String(wire.status), "grpc-message": encodeGrpcMessage(wire.message), ...extra }).end();
        return;
      }
      res.end(encodeForMode(mode, trailersFrame(wire.status, wire.message, extra)));
      return;
    }
    if (res.headersSent) { res.end(); return; }
    res.writeHead(tooLarge ? 413 : stalled ? 408 : httpStatusOf(wire.status), { "content-type": "application/json" }).end(JSON.stringify(errorBody(err)));
  }

  private metrics(res: http.ServerResponse): void {
    const out: string[] = [];
    renderStats(out, "sgrid_gateway_http", "service", this.stats);
    renderMetrics().then((process) => {
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" }).end(`${out.join("\n")}\n${process}`);
    }, (err: unknown) => {
      log.error({ err }, "cannot render metrics");
      res.writeHead(500, { "content-type": "text/plain" }).end("metrics failed\n");
    });
  }
}

const NOT_A_METHOD = "(not a method path)";

function parseJsonBody(body: Buffer): JsonValue {
  try {
    return body.length === 0 ? {} : (JSON.parse(body.toString("utf8")) as JsonValue);
  } catch (err) {
    throw new InvalidArgumentError(`the body is not JSON: ${(err as Error).message}`, { field: "(body)" });
  }
}

/** The JSON error body (grpc-gateway's shape, plus the Sgrid code and the field at fault). */
function errorBody(err: unknown): Record<string, unknown> {
  const wire = errorToWire(err);
  const out: Record<string, unknown> = { code: wire.status, message: wire.message, error: wire.code || statusName(wire.status), details: [] };
  if (typeof wire.data?.field === "string") out.field = wire.data.field;
  return out;
}

function withIndex<T>(i: number, many: boolean, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (!many || !(err instanceof InvalidArgumentError)) throw err;
    const field = `[${i}].${String(err.data?.field ?? "")}`;
    throw new InvalidArgumentError(`request [${i}]: ${err.message}`, { ...err.data, field });
  }
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function printable(v: string | Buffer): string {
  return typeof v === "string" ? v : v.toString("base64");
}

function printableAll(md: Metadata): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(md)) out[k] = printable(v);
  return out;
}

function drained(res: http.ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => { res.off("drain", done); res.off("close", done); resolve(); };
    res.once("drain", done).once("close", done);
  });
}

/**
 * Reads the body up to the route's maxMessageBytes. BodyTooLargeError (RESOURCE_EXHAUSTED) as soon as the
 * declared length or the bytes read pass it, BodyStalledError (DEADLINE_EXCEEDED) when no byte came for the
 * route's bodyIdleTimeoutMs; the rest is not read in either case.
 */
function readBody(req: http.IncomingMessage, rule: RouteRule): Promise<Buffer> {
  const limit = rule.maxMessageBytes;
  const declared = Number(req.headers["content-length"] ?? NaN);
  const tooLarge = () => new BodyTooLargeError(`request body is larger than this route's limit of ${limit} bytes`, { limit });
  if (declared > limit) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (err: unknown) => {
      clearTimeout(idle);
      req.off("data", onData);
      req.pause();
      reject(err);
    };
    const idle = setTimeout(() => {
      stop(new BodyStalledError(`request body sent nothing for ${rule.bodyIdleTimeoutMs} ms (the route's bodyIdleTimeoutMs); request refused`, { idleMs: rule.bodyIdleTimeoutMs }));
    }, rule.bodyIdleTimeoutMs);
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        stop(tooLarge());
        return;
      }
      idle.refresh();
      chunks.push(c);
    };
    req.on("data", onData);
    req.once("end", () => { clearTimeout(idle); resolve(Buffer.concat(chunks)); });
    req.once("error", (err) => { clearTimeout(idle); reject(err); });
  });
}
