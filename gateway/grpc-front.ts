/**
 * The gateway's gRPC port: accepts a call for any method, of any kind, and
 * hands it to the Forwarder.
 *
 * grpc-js has no public unknown-service handler. This file is the one place
 * that reaches into its internals: the server's private `handlers` map gets a
 * `get` that answers every unregistered path with one generic handler of type
 * `bidi` with passthrough (de)serializers (every kind of call is the same on
 * the wire: a stream of length-prefixed messages each way). A path the
 * forwarder already knows as unary gets a generic handler of type `unary`
 * instead (the fast path: grpc-js reads the one message and takes one
 * callback; no duplex stream, no request iterator, no drain wait). A grpc-js upgrade
 * that renames the map fails `installCatchAll` at start, loudly, and the test
 * test/gateway/grpc-front.test.ts. The same goes for the one other internal
 * used: the HTTP/2 session of a call, closed when a client stops reading.
 *
 * Per call: the route (routes file) must expose the service (else
 * UNIMPLEMENTED naming it), its bearer token must match (UNAUTHENTICATED),
 * the client (by address) must be within the route's rateLimit
 * (RESOURCE_EXHAUSTED with a `grpc-retry-pushback-ms` trailer), a
 * request message over the route's maxMessageBytes ends the call with
 * RESOURCE_EXHAUSTED, a second request message on a unary or
 * server-streaming method with UNIMPLEMENTED (as grpc-js and gRPC servers do). The backend's response headers are sent as they
 * arrive (before the first message), its trailers and status at the end.
 * A client that does not read its responses for `stallTimeoutMs` has its
 * call cancelled and its connection closed; until then at most the
 * stream's buffer (16 messages) plus the HTTP/2 window is held per call,
 * since the backend is read only as fast as the client takes.
 */
import * as grpc from "@grpc/grpc-js";
import type * as http2 from "node:http2";
import { CancelledError, InvalidArgumentError, ResourceExhaustedError, SgridError, Status, UnauthenticatedError, UnimplementedError, bindErrorFrom, getLogger, type Metadata } from "sgridnext";
import { fromGrpcMetadata, grpcAddress, toGrpcMetadata, toGrpcStatus } from "sgridnext/internal/transport/grpc/wire";
import { forwardableHeaders, forwardableMetadata, splitPath, type ForwardCall, type Forwarder } from "./forwarder";
import { clientKey, RateLimiter } from "./rate-limit";
import { authorized, Routes, type RouteRule } from "./routes";

const log = getLogger("gateway.grpc");

export const GRPC_FRONT_DEFAULTS = Object.freeze({ stallTimeoutMs: 10_000, hardMaxMessageBytes: 64 * 1024 * 1024 });

export interface GrpcFrontOptions {
  forwarder: Forwarder;
  routes?: Routes;
  /** A client that takes no response message for this long loses its call and connection, ms. Default 10000. */
  stallTimeoutMs?: number;
  /** The server's own limit on a request message, above every route's (grpc-js refuses larger ones itself). Default 64 MiB. */
  hardMaxMessageBytes?: number;
  /** The per-client rate limiter of the routes' `rateLimit` (shared with the HTTP front in `sgrid gateway`); default one of its own. */
  limiter?: RateLimiter;
}

type AnyCall = grpc.ServerDuplexStream<Buffer, Buffer>;
type UnaryCall = grpc.ServerUnaryCall<Buffer, Buffer>;
type UnaryCallback = (err: grpc.ServerErrorResponse | Partial<grpc.StatusObject> | null, value?: Buffer | null, trailer?: grpc.Metadata) => void;
interface GenericHandler {
  func: ((call: AnyCall) => void) | ((call: UnaryCall, callback: UnaryCallback) => void);
  serialize: (b: Buffer) => Buffer;
  deserialize: (b: Buffer) => Buffer;
  type: "bidi" | "unary";
  path: string;
}

/** The unary fast path of installCatchAll: which paths take it, and their handler. */
export interface UnaryCatchAll {
  isUnary(path: string): boolean;
  handler(call: UnaryCall, callback: UnaryCallback): void;
}

const same = (b: Buffer) => b;

/**
 * Makes `server` answer every path no service registered with `handler` (a grpc-js internal: its `handlers` Map),
 * or with `unary.handler` where `unary.isUnary(path)`. Throws when that internal is not there, so a grpc-js that
 * changed it fails at start, not at the first call.
 */
export function installCatchAll(server: grpc.Server, handler: (call: AnyCall) => void, unary?: UnaryCatchAll): void {
  const handlers = (server as unknown as { handlers?: unknown }).handlers;
  if (!(handlers instanceof Map)) throw new Error("grpc-js internals changed: Server#handlers is not a Map; the gateway's catch-all handler cannot be installed");
  const map = handlers as Map<string, unknown>;
  const generic = new Map<string, GenericHandler>();
  const unaries = new Map<string, GenericHandler>();
  const get = map.get.bind(map);
  map.get = (path: string) => {
    const own = get(path);
    if (own !== undefined) return own;
    const fast = unary !== undefined && unary.isUnary(path);
    const table = fast ? unaries : generic;
    let h = table.get(path);
    if (!h) {
      h = fast
        ? { func: (call: UnaryCall, cb: UnaryCallback) => unary.handler(call, cb), serialize: same, deserialize: same, type: "unary", path }
        : { func: handler, serialize: same, deserialize: same, type: "bidi", path };
      if (table.size > 10_000) table.clear();
      table.set(path, h);
    }
    return h;
  };
}

/** The HTTP/2 session a call came on (a grpc-js internal), or undefined when it cannot be found. */
export function sessionOf(call: AnyCall): http2.ServerHttp2Session | undefined {
  let c = (call as unknown as { call?: unknown }).call as { stream?: http2.ServerHttp2Stream; nextCall?: unknown } | undefined;
  for (let i = 0; c && i < 8; i++) {
    if (c.stream?.session) return c.stream.session as http2.ServerHttp2Session;
    c = c.nextCall as typeof c;
  }
  return undefined;
}

/** The call's request messages, pulled one at a time (backpressure), each checked against the size limit. */
function requestsOf(call: AnyCall, maxBytes: number, onTooLarge: (err: SgridError) => void): AsyncIterable<Buffer> & { first(): Promise<Buffer | undefined> } {
  let ended = false;
  let failed: unknown;
  // grpc-js emits "cancelled" at the end of every call, after its status: the error is made only when read.
  let cancelled = false;
  let wake: (() => void) | undefined;
  const notify = () => { const w = wake; wake = undefined; w?.(); };
  call.on("readable", notify);
  call.once("end", () => { ended = true; notify(); });
  call.once("error", (err) => { failed = err; notify(); });
  call.once("cancelled", () => { cancelled = true; notify(); });
  async function next(): Promise<Buffer | undefined> {
    for (;;) {
      if (failed === undefined && cancelled) failed = new CancelledError("cancelled by the client");
      if (failed !== undefined) throw failed;
      const msg = call.read() as Buffer | null;
      if (msg !== null) {
        if (msg.length > maxBytes) {
          const err = new ResourceExhaustedError(`request message of ${msg.length} bytes is over the route's limit of ${maxBytes} bytes`, { size: msg.length, limit: maxBytes });
          failed = err;
          onTooLarge(err);
          throw err;
        }
        return msg;
      }
      if (ended) return undefined;
      await new Promise<void>((r) => { wake = r; });
    }
  }
  return {
    first: next,
    [Symbol.asyncIterator]: () => ({
      next: async () => {
        const v = await next();
        return v === undefined ? { done: true, value: undefined } : { done: false, value: v };
      },
      return: async () => ({ done: true, value: undefined }),
    }),
  };
}

export class GrpcFront {
  private readonly server: grpc.Server;
  private readonly forwarder: Forwarder;
  private routes: Routes;
  /** path -> its route under `routes` (made anew with them). */
  private paths = new Map<string, PathRoute>();
  private readonly stallTimeoutMs: number;
  private readonly limiter: RateLimiter;
  private inFlight = 0;
  private stopping: Promise<void> | undefined;
  /** Connections closed because their client stopped reading (tests, diagnostics). */
  stalledConnectionsClosed = 0;

  constructor(options: GrpcFrontOptions) {
    this.forwarder = options.forwarder;
    this.routes = options.routes ?? new Routes();
    this.stallTimeoutMs = options.stallTimeoutMs ?? GRPC_FRONT_DEFAULTS.stallTimeoutMs;
    this.limiter = options.limiter ?? new RateLimiter();
    const hard = options.hardMaxMessageBytes ?? GRPC_FRONT_DEFAULTS.hardMaxMessageBytes;
    this.server = new grpc.Server({
      "grpc.max_receive_message_length": hard,
      "grpc.max_send_message_length": -1,
      "grpc.max_concurrent_streams": 1000,
      "grpc-node.max_session_memory": 32,
    });
    installCatchAll(
      this.server,
      (call) => { this.handle(call).catch((err: unknown) => log.warn({ err }, "gateway call handler failed")); },
      { isUnary: (path) => this.forwarder.kindNow(path) === "unary", handler: (call, cb) => this.unary(call, cb) },
    );
  }

  /** Swaps the routes: calls after this see them; open connections and calls in flight are not touched. */
  setRoutes(routes: Routes): void {
    this.routes = routes;
    this.paths = new Map();
    this.limiter.clear();
  }

  /** The route of a method path under the routes in use (cached per path); INVALID_ARGUMENT for a path that is not one. */
  private routeOf(path: string): PathRoute {
    let r = this.paths.get(path);
    if (r === undefined) {
      const [service] = splitPath(path);
      const rule = this.routes.match(service);
      r = { service, rule, dropAuthorization: rule !== undefined && rule.auth !== "none" };
      if (this.paths.size >= 10_000) this.paths.clear();
      this.paths.set(path, r);
    }
    return r;
  }

  /**
   * The route's checks of a call before it is forwarded: the service is exposed (else UNIMPLEMENTED), the
   * bearer token matches (UNAUTHENTICATED), the client is within the route's rate (RESOURCE_EXHAUSTED, its
   * `grpc-retry-pushback-ms` trailer handed to `pushback`). A refusal is counted in the route's stats (an
   * unexposed service under the one `(not exposed)` entry) and thrown.
   */
  private admit(path: string, authorization: unknown, call: { getPeer(): string }, pushback: (trailers: Metadata) => void): PathRoute & { readonly rule: RouteRule } {
    const r = this.routeOf(path);
    const rule = r.rule;
    let refusal: SgridError | undefined;
    if (!rule) {
      refusal = new UnimplementedError(`service "${r.service}" is not exposed by this gateway`, { service: r.service });
    } else if (!authorized(rule, typeof authorization === "string" ? authorization : undefined)) {
      refusal = new UnauthenticatedError(`service "${r.service}" needs a bearer token (metadata authorization: Bearer <token>)`, { service: r.service });
    } else if (rule.rateLimit) {
      const waitMs = this.limiter.take(clientKey(rule, call.getPeer()), rule.rateLimit);
      if (waitMs > 0) {
        // gRPC's server pushback: a client with a retry policy for RESOURCE_EXHAUSTED waits this long.
        pushback({ "grpc-retry-pushback-ms": String(waitMs) });
        refusal = new ResourceExhaustedError(`rate limit of service "${r.service}" reached for this client (${rule.rateLimit.perSecond}/s); retry in ${waitMs} ms`, { service: r.service, retryAfterMs: waitMs });
      }
    }
    if (refusal !== undefined) {
      this.forwarder.refused(rule ? path : undefined, refusal);
      throw refusal;
    }
    return r as PathRoute & { readonly rule: RouteRule };
  }

  /**
   * A unary call of a path the forwarder has resolved (installCatchAll's fast path): the same checks, refusal
   * counts and pass-through as handle(), with grpc-js holding the one request message and taking the one
   * answer. The backend's headers are sent when it has any of its own; its trailers go with the status.
   */
  private unary(call: UnaryCall, callback: UnaryCallback): void {
    const path = call.getPath();
    let abort: AbortController | undefined;
    let finished = false;
    let trailers: Metadata | undefined;
    const onCancel = () => { if (!finished) abort?.abort(new CancelledError("cancelled by the client")); };
    const fail = (err: unknown) => {
      if (finished) return;
      finished = true;
      this.inFlight--;
      call.off("cancelled", onCancel);
      if (call.cancelled) return;
      const status = toGrpcStatus(err, path);
      if (trailers !== undefined) for (const k in trailers) status.metadata!.set(k, trailers[k]!);
      callback(status);
    };
    this.inFlight++;
    try {
      const incoming = call.metadata.getMap() as Metadata;
      const r = this.admit(path, incoming.authorization, call, (t) => { trailers = t; });
      const rule = r.rule;
      const req = call.request;
      if (req.length > rule.maxMessageBytes) {
        throw new ResourceExhaustedError(`request message of ${req.length} bytes is over the route's limit of ${rule.maxMessageBytes} bytes`, { size: req.length, limit: rule.maxMessageBytes });
      }
      abort = new AbortController();
      call.once("cancelled", onCancel);
      const deadline = call.getDeadline();
      const d = deadline instanceof Date ? deadline.getTime() : deadline;
      const fc: ForwardCall = {
        metadata: forwardableMetadata(incoming, r.dropAuthorization),
        deadline: Number.isFinite(d) ? d : undefined,
        signal: abort.signal,
        onHeaders: (h) => {
          if (finished) return;
          const own = forwardableHeaders(h);
          if (own !== undefined) call.sendMetadata(toGrpcMetadata(own));
        },
        onTrailers: (t) => { trailers = t; },
      };
      this.forwarder.unary(path, req, fc).then((res) => {
        if (finished) return;
        finished = true;
        this.inFlight--;
        call.off("cancelled", onCancel);
        if (abort!.signal.aborted) return;
        callback(null, res, trailers === undefined ? undefined : toGrpcMetadata(trailers));
      }, fail);
    } catch (err) {
      fail(err);
    }
  }

  currentRoutes(): Routes {
    return this.routes;
  }

  inflight(): number {
    return this.inFlight;
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.bindAsync(grpcAddress(host, port), grpc.ServerCredentials.createInsecure(), (err, bound) => {
        if (err) reject(bindErrorFrom(Object.assign(err, { code: /in use/i.test(err.message) ? "EADDRINUSE" : (err as NodeJS.ErrnoException).code }), host, port));
        else resolve(bound);
      });
    });
  }

  /** Stops taking calls, waits for those in flight up to graceMs, then forces. Idempotent. */
  shutdown(graceMs: number): Promise<void> {
    this.stopping ??= new Promise<void>((resolve) => {
      const timer = setTimeout(() => { this.server.forceShutdown(); resolve(); }, graceMs);
      timer.unref?.();
      this.server.tryShutdown(() => { clearTimeout(timer); resolve(); });
    });
    return this.stopping;
  }

  private async handle(call: AnyCall): Promise<void> {
    this.inFlight++;
    const abort = new AbortController();
    const onCancel = () => abort.abort(new CancelledError("cancelled by the client"));
    call.once("cancelled", onCancel);
    let headersSent = false;
    let trailers: Metadata = {};
    let finished = false;
    // Admitted but not yet handed to the forwarder: an error is the gateway's refusal (counted here, not there).
    let admitted = false;
    let forwarding = false;
    const fail = (err: unknown) => {
      if (finished) return;
      finished = true;
      if (abort.signal.aborted && call.cancelled) return;
      const status = toGrpcStatus(err, call.getPath());
      const md = status.metadata ?? new grpc.Metadata();
      for (const [k, v] of Object.entries(trailers)) md.set(k, v);
      call.emit("error", { ...status, metadata: md });
    };
    try {
      const path = call.getPath();
      const incoming = fromGrpcMetadata(call.metadata);
      const r = this.admit(path, incoming.authorization, call, (t) => { trailers = t; });
      const rule = r.rule;
      admitted = true;
      const deadline = call.getDeadline();
      const d = deadline instanceof Date ? deadline.getTime() : deadline;
      const fc: ForwardCall = {
        metadata: forwardableMetadata(incoming, r.dropAuthorization),
        deadline: Number.isFinite(d) ? d : undefined,
        signal: abort.signal,
        onHeaders: (h) => {
          if (headersSent || finished) return;
          headersSent = true;
          // The backend's own headers; a stream's are sent even when empty, so the client has them before the first message.
          call.sendMetadata(toGrpcMetadata(forwardableHeaders(h) ?? {}));
        },
        onTrailers: (t) => { trailers = t; },
      };
      const kind = await this.forwarder.methodKind(path);
      forwarding = true;
      const requests = requestsOf(call, rule.maxMessageBytes, (err) => { fail(err); abort.abort(err); });
      if (kind === "unary" || kind === "server_stream") {
        const req = await requests.first();
        if (req === undefined) throw new InvalidArgumentError(`${path}: the call ended without a request message`);
        // A second message is gRPC's request cardinality violation (grpc/grpc doc/statuscodes.md): the call fails at
        // once, UNIMPLEMENTED, as grpc-js answers on the unary fast path and the servants' transports do; the backend
        // call is cancelled. (The read ends with the call: its end, or the "cancelled" grpc-js emits after a status.)
        requests.first().then((more) => {
          if (more === undefined) return;
          const err = new UnimplementedError(`${path} received a second request message (a ${kind} method takes one)`);
          fail(err);
          abort.abort(err);
        }, () => undefined);
        if (kind === "unary") {
          const res = await this.forwarder.unary(path, req, fc);
          await this.send(call, res, abort);
        } else {
          for await (const res of this.forwarder.serverStream(path, req, fc)) await this.send(call, res, abort);
        }
      } else if (kind === "client_stream") {
        const res = await this.forwarder.clientStream(path, requests, fc);
        await this.send(call, res, abort);
      } else {
        for await (const res of this.forwarder.bidi(path, requests, fc)) await this.send(call, res, abort);
      }
      if (!finished && !abort.signal.aborted) {
        finished = true;
        call.end(toGrpcMetadata(trailers));
      }
    } catch (err) {
      // A service no Obj serves is counted with the unexposed ones: made-up names must not grow the stats.
      if (admitted && !forwarding) this.forwarder.refused(err instanceof SgridError && err.status === Status.UNIMPLEMENTED ? undefined : call.getPath(), err);
      fail(err);
    } finally {
      call.off("cancelled", onCancel);
      this.inFlight--;
    }
  }

  /** Writes one response; waits for the client to take it, up to stallTimeoutMs, then gives up on the client. */
  private async send(call: AnyCall, msg: Buffer, abort: AbortController): Promise<void> {
    if (abort.signal.aborted) throw abort.signal.reason instanceof Error ? abort.signal.reason : new CancelledError("cancelled");
    if (call.write(msg)) return;
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        call.off("drain", onDrain);
        abort.signal.removeEventListener("abort", onAbort);
        if (err) reject(err); else resolve();
      };
      const onDrain = () => done();
      const onAbort = () => done(new CancelledError("cancelled by the client"));
      const timer = setTimeout(() => {
        const err = new ResourceExhaustedError(`client took no response message for ${this.stallTimeoutMs} ms; call cancelled and connection closed`);
        abort.abort(err);
        this.stalledConnectionsClosed++;
        log.warn({ method: call.getPath(), peer: call.getPeer() }, "gateway client stopped reading; closing its connection");
        const session = sessionOf(call);
        if (session) session.destroy(); else call.destroy(err);
        done(err);
      }, this.stallTimeoutMs);
      call.once("drain", onDrain);
      abort.signal.addEventListener("abort", onAbort, { once: true });
    });
  }
}

interface PathRoute {
  readonly service: string;
  readonly rule: RouteRule | undefined;
  /** The route takes a bearer token: `authorization` is not forwarded (forwardableMetadata). */
  readonly dropAuthorization: boolean;
}

