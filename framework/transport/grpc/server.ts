/**
 * gRPC server transport over @grpc/grpc-js: any gRPC client in any language
 * can call a servant served here.
 */
import { drainOrAbort } from "../drain";
import * as net from "node:net";
import * as grpc from "@grpc/grpc-js";
import { bindErrorFrom } from "../../errors";
import { getLogger } from "../../logger";
import type {
  BidiHandler, BoundService, ClientStreamHandler, MethodDescriptor, ServerContext, ServerStreamHandler, ServerTransport,
  ServerTransportFactory, UnaryHandler,
} from "../base";
import { fromGrpcMetadata, grpcAddress, toGrpcStatus } from "./wire";

export interface GrpcServerOptions {
  /** TLS key and certificate (PEM); plaintext when absent. */
  tls?: { key: Buffer; cert: Buffer; ca?: Buffer };
  /** Largest accepted request message, bytes. Default 16 MiB. */
  maxReceiveMessageLength?: number;
}

const log = getLogger("transport.grpc");

type AnyCall = grpc.ServerUnaryCall<any, any> | grpc.ServerReadableStream<any, any> | grpc.ServerWritableStream<any, any> | grpc.ServerDuplexStream<any, any>;

function serializerOf(method: MethodDescriptor) {
  const { requestCodec, responseCodec } = method;
  return {
    requestDeserialize: (b: Buffer) => requestCodec.decode(b),
    requestSerialize: (m: unknown) => Buffer.from(requestCodec.encode(m as never)),
    responseSerialize: (m: unknown) => {
      const u8 = responseCodec.encode(m as never);
      return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
    },
    responseDeserialize: (b: Buffer) => responseCodec.decode(b),
  };
}

/**
 * The request stream as an AsyncIterable that does NOT destroy the call when
 * iteration ends: Node's default Readable iterator destroys the whole duplex,
 * which would drop the response stream and its status.
 */
function requestsOf(call: grpc.ServerReadableStream<any, any> | grpc.ServerDuplexStream<any, any>): AsyncIterable<unknown> {
  return { [Symbol.asyncIterator]: () => (call as unknown as import("node:stream").Readable).iterator({ destroyOnReturn: false }) };
}

/** Writes every message with backpressure; resolves early if the call is cancelled. */
async function writeAll(call: grpc.ServerWritableStream<any, any> | grpc.ServerDuplexStream<any, any>, source: AsyncIterable<unknown>, signal: AbortSignal): Promise<void> {
  for await (const msg of source) {
    if (signal.aborted) return;
    if (!call.write(msg)) await drainOrAbort(call, signal);
  }
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
  private readonly conns = new Map<string, { peer: string; protocol: string; since: number }>();
  private stopping: Promise<void> | undefined;

  constructor(private readonly options: GrpcServerOptions = {}) {
    this.server = new grpc.Server({
      "grpc.max_receive_message_length": options.maxReceiveMessageLength ?? 16 * 1024 * 1024,
    });
  }

  private context(call: AnyCall, path: string): { ctx: ServerContext; done: () => void } {
    const ac = new AbortController();
    const onCancel = () => ac.abort();
    const events = call as unknown as NodeJS.EventEmitter;
    events.once("cancelled", onCancel);
    const deadlineRaw = call.getDeadline();
    const deadline = deadlineRaw instanceof Date ? deadlineRaw.getTime() : (Number.isFinite(deadlineRaw) ? Number(deadlineRaw) : undefined);
    const peer = call.getPeer();
    if (!this.conns.has(peer)) this.conns.set(peer, { peer, protocol: "grpc", since: Date.now() });
    this.inFlight++;
    const ctx: ServerContext = { method: path, metadata: fromGrpcMetadata(call.metadata), deadline, peer, signal: ac.signal, protocol: "grpc" };
    let ended = false;
    return { ctx, done: () => { if (!ended) { ended = true; this.inFlight--; events.removeListener("cancelled", onCancel); } } };
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
            const { ctx, done } = this.context(call, path);
            let p: Promise<unknown>;
            try { p = (handler as UnaryHandler)(call.request, ctx); } catch (err) { p = Promise.reject(err); }
            p.then((res) => { done(); cb(null, res); }, (err) => { done(); cb(toGrpcStatus(err, path)); });
          };
          break;
        case "client_stream":
          impl[key] = (call: grpc.ServerReadableStream<any, any>, cb: grpc.sendUnaryData<any>) => {
            const { ctx, done } = this.context(call, path);
            let p: Promise<unknown>;
            try { p = (handler as ClientStreamHandler)(requestsOf(call), ctx); } catch (err) { p = Promise.reject(err); }
            p.then((res) => { done(); cb(null, res); }, (err) => { done(); cb(toGrpcStatus(err, path)); });
          };
          break;
        case "server_stream":
          impl[key] = (call: grpc.ServerWritableStream<any, any>) => {
            const { ctx, done } = this.context(call, path);
            Promise.resolve()
              .then(() => writeAll(call, (handler as ServerStreamHandler)(call.request, ctx), ctx.signal))
              .then(() => { done(); if (!ctx.signal.aborted) call.end(); }, (err) => { done(); if (!ctx.signal.aborted) call.emit("error", toGrpcStatus(err, path)); });
          };
          break;
        default:
          impl[key] = (call: grpc.ServerDuplexStream<any, any>) => {
            const { ctx, done } = this.context(call, path);
            Promise.resolve()
              .then(() => writeAll(call, (handler as BidiHandler)(requestsOf(call), ctx), ctx.signal))
              .then(() => { done(); if (!ctx.signal.aborted) call.end(); }, (err) => { done(); if (!ctx.signal.aborted) call.emit("error", toGrpcStatus(err, path)); });
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
