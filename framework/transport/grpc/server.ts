/**
 * gRPC server transport over @grpc/grpc-js: any gRPC client in any language
 * can call a servant served here.
 */
import { drainOrAbort } from "../drain";
import type { Http2Session } from "node:http2";
import * as net from "node:net";
import * as grpc from "@grpc/grpc-js";
import { bindErrorFrom } from "../../errors";
import { getLogger } from "../../logger";
import type {
  BidiHandler, BoundService, ClientStreamHandler, MethodDescriptor, ServerStreamHandler, ServerTransport, ServerTransportFactory, UnaryHandler, UnaryOutcome,
} from "../base";
import { GrpcServerContext, http2StreamOf, type AnyServerCall } from "./server-call";
import { grpcAddress, toGrpcStatus } from "./wire";

export interface GrpcServerOptions {
  /** TLS key and certificate (PEM); plaintext when absent. */
  tls?: { key: Buffer; cert: Buffer; ca?: Buffer };
  /** Largest accepted request message, bytes. Default 16 MiB. */
  maxReceiveMessageLength?: number;
  /**
   * Streams one client connection may have open at once (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS). Default 1000: Node's
   * HTTP/2 closes a connection whose peer resets more than 1,000 streams in a burst, so a client that may hold more opens
   * another connection (Sgrid's proxies hold at most 900 calls per connection). Calls past the limit wait in the client.
   */
  maxConcurrentStreams?: number;
  /** Memory one connection's HTTP/2 session may use before new streams are refused, MiB. Default 32 (Node's own: 10). */
  maxSessionMemoryMb?: number;
}

export const GRPC_SERVER_DEFAULTS = Object.freeze({ maxReceiveMessageLength: 16 * 1024 * 1024, maxConcurrentStreams: 1000, maxSessionMemoryMb: 32 });

const log = getLogger("transport.grpc");

function serializerOf(method: MethodDescriptor) {
  const { requestCodec, responseCodec } = method;
  return {
    requestDeserialize: (b: Buffer) => requestCodec.decode(b),
    requestSerialize: (m: unknown) => Buffer.from(requestCodec.encode(m as never)),
    // A view of the codec's shared writer where it has one: grpc-js copies it into its framed
    // message at once (serializeMessage), before anything else can encode.
    responseSerialize: (m: unknown) => {
      const u8 = responseCodec.encodeTransient !== undefined ? responseCodec.encodeTransient(m as never) : responseCodec.encode(m as never);
      return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
    },
    responseDeserialize: (b: Buffer) => responseCodec.decode(b),
  };
}

/** The grpc-js server options of a Sgrid gRPC adapter with these options; `npm run bench grpc` gives its plain grpc-js baseline the same. */
export function grpcServerOptions(options: GrpcServerOptions = {}): grpc.ServerOptions {
  return {
    "grpc.max_receive_message_length": options.maxReceiveMessageLength ?? GRPC_SERVER_DEFAULTS.maxReceiveMessageLength,
    "grpc.max_concurrent_streams": options.maxConcurrentStreams ?? GRPC_SERVER_DEFAULTS.maxConcurrentStreams,
    "grpc-node.max_session_memory": options.maxSessionMemoryMb ?? GRPC_SERVER_DEFAULTS.maxSessionMemoryMb,
  };
}

/** Writes every message with backpressure; resolves early if the call is cancelled. */
async function writeAll(call: grpc.ServerWritableStream<any, any> | grpc.ServerDuplexStream<any, any>, source: AsyncIterable<unknown>, ctx: GrpcServerContext): Promise<void> {
  for await (const msg of source) {
    if (ctx.aborted) return;
    ctx.headersSent = true;
    if (!call.write(msg)) await drainOrAbort(call, ctx.signal);
  }
}

/** Ends a response stream: OK with the servant's trailers, or its error; nothing once the caller is gone. */
function endStream(call: grpc.ServerWritableStream<any, any> | grpc.ServerDuplexStream<any, any>, ctx: GrpcServerContext, err: unknown, failed: boolean): void {
  if (ctx.aborted) return;
  if (!failed) { call.end(ctx.trailersFor()); return; }
  const status = toGrpcStatus(err, ctx.method);
  call.emit("error", { ...status, metadata: ctx.trailersFor(status.metadata) });
}

/** Tries to listen on host:port with node:net; resolves with the error, or undefined if it worked. */
function probeBind(host: string, port: number): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once("error", (e: NodeJS.ErrnoException) => resolve(e));
    srv.listen(port, host, () => srv.close(() => resolve(undefined)));
  });
}

export class GrpcServerTransport implements ServerTransport {
  readonly protocol = "grpc";
  private readonly server: grpc.Server;
  private inFlight = 0;
  /** Open client connections, by HTTP/2 session (by peer address if grpc-js ever hides the session), forgotten when they close. */
  private readonly conns = new Map<Http2Session | string, { peer: string; protocol: string; since: number }>();
  private stopping: Promise<void> | undefined;

  constructor(private readonly options: GrpcServerOptions = {}) {
    for (const k of ["maxReceiveMessageLength", "maxConcurrentStreams", "maxSessionMemoryMb"] as const) {
      const v = options[k];
      if (v !== undefined && !(Number.isInteger(v) && v > 0)) throw new TypeError(`gRPC server option ${k} must be a positive integer, got ${String(v)}`);
    }
    this.server = new grpc.Server(grpcServerOptions(options));
  }

  private context(call: AnyServerCall, path: string): GrpcServerContext {
    const ctx = new GrpcServerContext(call, path);
    const session = http2StreamOf(call)?.session;
    if (session === undefined) {
      const peer = ctx.peer;
      if (!this.conns.has(peer)) this.conns.set(peer, { peer, protocol: "grpc", since: Date.now() });
    } else if (!this.conns.has(session)) {
      this.seen(session, ctx.peer);
    }
    this.inFlight++;
    return ctx;
  }

  /** A connection's first call: listed until the connection closes. */
  private seen(session: Http2Session, peer: string): void {
    this.conns.set(session, { peer, protocol: "grpc", since: Date.now() });
    session.once("close", () => this.conns.delete(session));
  }

  private finished(ctx: GrpcServerContext): void {
    this.inFlight--;
    ctx.done();
  }

  /** The unary / client-streaming reply: the result with the servant's trailers, or its error. */
  /** Where a unary or client-streaming call's outcome goes: grpc-js' callback, with the trailers. */
  private outcome(ctx: GrpcServerContext, cb: grpc.sendUnaryData<any>): UnaryOutcome {
    return {
      resolved: (res) => { this.finished(ctx); cb(null, res, ctx.trailersFor()); },
      rejected: (err) => {
        this.finished(ctx);
        const status = toGrpcStatus(err, ctx.method);
        cb({ ...status, metadata: ctx.trailersFor(status.metadata) });
      },
    };
  }

  /** Runs a unary or client-streaming handler: into its outcome when it takes one (a servant's), else through its promise. */
  private reply(ctx: GrpcServerContext, cb: grpc.sendUnaryData<any>, handler: UnaryHandler | ClientStreamHandler, arg: unknown): void {
    const out = this.outcome(ctx, cb);
    let p: Promise<unknown>;
    try {
      if (handler.into !== undefined) {
        handler.into(arg, ctx, out);
        return;
      }
      p = handler(arg as never, ctx);
    } catch (err) {
      out.rejected(err);
      return;
    }
    p.then(out.resolved, out.rejected);
  }

  addService(service: BoundService): void {
    const definition: Record<string, grpc.MethodDefinition<any, any>> = {};
    const impl: grpc.UntypedServiceImplementation = {};
    for (const [path, { method, handler }] of service.handlers) {
      const key = method.name;
      definition[key] = {
        path,
        requestStream: method.kind === "client_stream" || method.kind === "bidi",
        responseStream: method.kind === "server_stream" || method.kind === "bidi",
        originalName: key,
        ...serializerOf(method),
      } as grpc.MethodDefinition<any, any>;
      switch (method.kind) {
        case "unary":
          impl[key] = (call: grpc.ServerUnaryCall<any, any>, cb: grpc.sendUnaryData<any>) => {
            const ctx = this.context(call, path);
            this.reply(ctx, cb, handler as UnaryHandler, call.request);
          };
          break;
        case "client_stream":
          impl[key] = (call: grpc.ServerReadableStream<any, any>, cb: grpc.sendUnaryData<any>) => {
            const ctx = this.context(call, path);
            this.reply(ctx, cb, handler as ClientStreamHandler, ctx.requests());
          };
          break;
        case "server_stream":
          impl[key] = (call: grpc.ServerWritableStream<any, any>) => {
            const ctx = this.context(call, path);
            Promise.resolve()
              .then(() => writeAll(call, (handler as ServerStreamHandler)(call.request, ctx), ctx))
              .then(() => { this.finished(ctx); endStream(call, ctx, undefined, false); }, (err) => { this.finished(ctx); endStream(call, ctx, err, true); });
          };
          break;
        default:
          impl[key] = (call: grpc.ServerDuplexStream<any, any>) => {
            const ctx = this.context(call, path);
            Promise.resolve()
              .then(() => writeAll(call, (handler as BidiHandler)(ctx.requests(), ctx), ctx))
              .then(() => { this.finished(ctx); endStream(call, ctx, undefined, false); }, (err) => { this.finished(ctx); endStream(call, ctx, err, true); });
          };
      }
    }
    this.server.addService(definition as grpc.ServiceDefinition, impl);
  }

  listen(host: string, port: number): Promise<number> {
    const creds = this.options.tls
      ? grpc.ServerCredentials.createSsl(this.options.tls.ca ?? null, [{ private_key: this.options.tls.key, cert_chain: this.options.tls.cert }], false)
      : grpc.ServerCredentials.createInsecure();
    return new Promise((resolve, reject) => {
      this.server.bindAsync(grpcAddress(host, port), creds, (err, bound) => {
        if (err) {
          // grpc-js reports only "No address added": find the reason by trying the port ourselves.
          void probeBind(host, port).then((cause) => reject(bindErrorFrom(cause ?? (Object.assign(new Error(err.message), { code: "EUNKNOWN" }) as NodeJS.ErrnoException), host, port)));
          return;
        }
        log.debug({ host, port: bound }, "gRPC adapter listening");
        resolve(bound);
      });
    });
  }

  inflight(): number {
    return this.inFlight;
  }

  connections(): Array<{ peer: string; protocol: string; since: number }> {
    return [...this.conns.values()];
  }

  shutdown(graceMs: number): Promise<void> {
    this.stopping ??= new Promise<void>((resolve) => {
      const timer = setTimeout(() => { this.server.forceShutdown(); resolve(); }, graceMs);
      timer.unref();
      this.server.tryShutdown(() => { clearTimeout(timer); resolve(); });
    });
    return this.stopping;
  }
}

export function grpcServerFactory(): ServerTransportFactory {
  return { protocol: "grpc", createServer: (options) => new GrpcServerTransport(options as GrpcServerOptions) };
}
