/**
 * gRPC client channel over @grpc/grpc-js: one grpc-js Client (one HTTP/2
 * connection) per endpoint, shared by every proxy that calls it.
 */
import { drainOrAbort } from "../drain";
import * as grpc from "@grpc/grpc-js";
import type { Endpoint } from "../../endpoint";
import { CancelledError } from "../../errors";
import type { ClientChannel, ClientTransportFactory, DeepPartial, MethodDescriptor, OutgoingCall } from "../base";
import { deliverMetadata, isEmptyMetadata } from "../metadata";
import { envRootCerts } from "../tls-ca";
import { ConnectionPool, type ConnectionLimits, type Lease, type Slot } from "./connection-pool";
import { fromGrpcError, fromGrpcMetadata, fromGrpcStatus, grpcAddress, toGrpcMetadata } from "./wire";

export interface GrpcClientOptions {
  /** PEM CA bundle for TLS endpoints; default the file named by SGRID_TLS_CA, else the system roots. */
  rootCerts?: Buffer;
  /** Extra grpc-js channel options. */
  channelOptions?: grpc.ChannelOptions;
  /** Calls per connection and connections per endpoint (see ConnectionPool). */
  limits?: ConnectionLimits;
}

interface Codecs {
  serialize: (m: unknown) => Buffer;
  deserialize: (b: Buffer) => unknown;
}

const codecCache = new WeakMap<MethodDescriptor, Codecs>();
function codecsOf(method: MethodDescriptor): Codecs {
  let c = codecCache.get(method);
  if (!c) {
    const { requestCodec, responseCodec } = method;
    c = {
      serialize: (m: unknown) => {
        const u8 = requestCodec.encode(m as never);
        return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
      },
      deserialize: (b: Buffer) => responseCodec.decode(b),
    };
    codecCache.set(method, c);
  }
  return c;
}

async function pump<T>(source: AsyncIterable<T>, stream: grpc.ClientWritableStream<T> | grpc.ClientDuplexStream<T, unknown>, stop: { done: boolean }): Promise<void> {
  try {
    for await (const msg of source) {
      if (stop.done) return;
      if (!stream.write(msg)) await drainOrAbort(stream);
    }
    if (!stop.done) stream.end();
  } catch (err) {
    // The caller's input failed: cancel the call; its result reports CANCELLED.
    (stream as grpc.ClientWritableStream<T>).cancel();
    throw err;
  }
}

/** Subscribes a call's headers / trailers callbacks (only when the caller gave any: no listener otherwise). */
function observe(grpcCall: NodeJS.EventEmitter, call: OutgoingCall): void {
  const { onHeaders, onTrailers } = call;
  if (onHeaders !== undefined) grpcCall.once("metadata", (md: grpc.Metadata) => deliverMetadata(onHeaders, fromGrpcMetadata(md)));
  if (onTrailers !== undefined) grpcCall.once("status", (st: grpc.StatusObject) => deliverMetadata(onTrailers, st.metadata ? fromGrpcMetadata(st.metadata) : {}));
}

/** A call on a grpc-js Channel, below the Client's interceptor layer, and what it reports to. */
type ChannelCall = ReturnType<grpc.Channel["createCall"]>;
type CallListener = Parameters<ChannelCall["start"]>[1];

/**
 * The request metadata of a call that sets none. Shared by every such call: grpc-js clones the
 * metadata a call starts with (ResolvingCall.start) before any filter adds to it.
 */
const NO_METADATA = new grpc.Metadata();
/** The per-message context grpc-js' own unary calls send with (no flags, no callback); read only. */
const MESSAGE_CONTEXT = Object.freeze({});

/**
 * One unary call made on the channel directly (what grpc-js' makeUnaryRequest does, without its
 * per-call EventEmitter, interceptor chain, listener wrappers and the Error it makes for a stack
 * trace): it holds the connection's slot until the status arrives and settles the caller's promise
 * from there. Semantics as makeUnaryRequest's: an OK status without a response message is
 * UNIMPLEMENTED ("No message received"), an undecodable message INTERNAL; one message is read.
 */
class UnaryCall<Res> implements CallListener {
  private response: Res | undefined;
  private received = false;
  private parseError: string | undefined;
  private settled = false;
  private onAbort: (() => void) | undefined;
  grpcCall!: ChannelCall;

  constructor(
    private readonly pool: ConnectionPool,
    private readonly slot: Slot,
    private readonly deserialize: (b: Buffer) => unknown,
    private readonly call: OutgoingCall,
    private readonly resolve: (res: Res) => void,
    private readonly reject: (err: unknown) => void,
  ) {}

  /** Cancels on the caller's signal (CANCELLED, as grpc-js' call.cancel()). */
  watch(signal: AbortSignal): void {
    if (this.settled) return;
    this.onAbort = () => this.grpcCall.cancelWithStatus(grpc.status.CANCELLED, "Cancelled on client");
    signal.addEventListener("abort", this.onAbort, { once: true });
  }

  onReceiveMetadata(md: grpc.Metadata): void {
    const onHeaders = this.call.onHeaders;
    if (onHeaders !== undefined) deliverMetadata(onHeaders, fromGrpcMetadata(md));
  }

  onReceiveMessage(message: Buffer): void {
    if (this.received) {
      this.grpcCall.cancelWithStatus(grpc.status.UNIMPLEMENTED, "Too many responses received");
      return;
    }
    this.received = true;
    try {
      this.response = this.deserialize(message) as Res;
    } catch (e) {
      this.parseError = `Response message parsing error: ${e instanceof Error ? e.message : String(e)}`;
      this.grpcCall.cancelWithStatus(grpc.status.INTERNAL, this.parseError);
    }
  }

  onReceiveStatus(status: grpc.StatusObject): void {
    if (this.settled) return;
    this.settled = true;
    this.pool.give(this.slot);
    if (this.onAbort !== undefined) this.call.signal!.removeEventListener("abort", this.onAbort);
    const onTrailers = this.call.onTrailers;
    if (onTrailers !== undefined) deliverMetadata(onTrailers, status.metadata ? fromGrpcMetadata(status.metadata) : {});
    if (this.parseError !== undefined) this.reject(fromGrpcStatus(grpc.status.INTERNAL, this.parseError, undefined));
    else if (status.code !== grpc.status.OK) this.reject(fromGrpcStatus(status.code, status.details, status.metadata));
    else if (!this.received) this.reject(fromGrpcStatus(grpc.status.UNIMPLEMENTED, "No message received", status.metadata));
    else this.resolve(this.response as Res);
  }
}

/**
 * The HTTP/2 receive window a gRPC connection announces (stream and connection), bytes. grpc-js
 * keeps HTTP/2's 64 KiB by default: a peer may then have only 64 KiB in flight and waits a round
 * trip (through both event loops) for each WINDOW_UPDATE, so a large response stream (a 50 MB
 * package download, `npm run bench fanout`) ran at ~25 MB/s with both processes mostly idle, and
 * slower still when the machine was busy. 4 MiB keeps a busy link full; it is what a connection
 * may buffer when its reader stops reading, next to the 64 MiB a single message may have.
 */
export const GRPC_CLIENT_FLOW_WINDOW_BYTES = 4 * 1024 * 1024;

/**
 * The grpc-js channel options of every Sgrid gRPC connection (GrpcClientOptions.channelOptions
 * adds to them, and each connection also gets its own subchannel pool). `npm run bench grpc` gives
 * its plain grpc-js baseline the same.
 */
export const GRPC_CHANNEL_OPTIONS: Readonly<grpc.ChannelOptions> = Object.freeze({
  "grpc.keepalive_time_ms": 30_000,
  "grpc.keepalive_timeout_ms": 10_000,
  // grpc-js backs off reconnects up to 120 s; a restarted servant (or registry) would then wait
  // that long for traffic even after its probe pause (EndpointHealth) or the registry says it is
  // back. 2 s bounds it, so that one reconnect attempt always falls inside the config loader's
  // 5 s retry window; a refused connect costs next to nothing.
  "grpc.max_reconnect_backoff_ms": 2_000,
  "grpc.max_receive_message_length": 64 * 1024 * 1024,
  "grpc-node.flow_control_window": GRPC_CLIENT_FLOW_WINDOW_BYTES,
});

export class GrpcChannel implements ClientChannel {
  private readonly plain: ConnectionPool;
  /** Connections whose request messages are gzip-compressed, opened on the first call that asks for it. */
  private gzip: ConnectionPool | undefined;
  private closed = false;
  private readonly address: string;
  private readonly creds: grpc.ChannelCredentials;
  private readonly channelOptions: grpc.ChannelOptions;

  constructor(readonly endpoint: Endpoint, options: GrpcClientOptions = {}) {
    const creds = endpoint.tls ? grpc.credentials.createSsl(options.rootCerts ?? envRootCerts() ?? null) : grpc.credentials.createInsecure();
    this.address = grpcAddress(endpoint.host, endpoint.port);
    this.creds = creds;
    this.channelOptions = { ...GRPC_CHANNEL_OPTIONS, ...options.channelOptions };
    this.limits = options.limits;
    this.plain = this.pool(this.channelOptions, "");
  }

  private readonly limits: ConnectionLimits | undefined;

  /** Connections with these options, each its own HTTP/2 connection (a local subchannel pool), counted per call. */
  private pool(channelOptions: grpc.ChannelOptions, what: string): ConnectionPool {
    const opts = { ...channelOptions, "grpc.use_local_subchannel_pool": 1 };
    return new ConnectionPool(() => new grpc.Client(this.address, this.creds, opts), `gRPC ${what}connection to ${this.address}`, this.limits);
  }

  /** The connections a call goes through: grpc-js compresses per channel, so gzip calls have connections of their own, opened on first use. */
  private poolFor(call: OutgoingCall): ConnectionPool {
    if (call.compression !== "gzip") return this.plain;
    return (this.gzip ??= this.pool({ ...this.channelOptions, "grpc.default_compression_algorithm": grpc.compressionAlgorithms.gzip }, "gzip "));
  }

  /** A connection for a call, held until its status arrives. */
  private clientFor(call: OutgoingCall): Lease {
    return this.poolFor(call).acquire();
  }

  /** Starts a call on a leased connection; the lease ends with the call's status (or a throw while starting). */
  private start<C extends grpc.Call>(call: OutgoingCall, make: (client: grpc.Client) => C): C {
    const lease = this.clientFor(call);
    try {
      const c = make(lease.client);
      c.once("status", lease.release);
      return c;
    } catch (err) {
      lease.release();
      throw err;
    }
  }

  /** Calls in flight per connection (tests, diagnostics). */
  callsPerConnection(): number[] {
    return this.plain.callsPerConnection();
  }

  isReady(): boolean {
    const s = this.plain.first().getChannel().getConnectivityState(false);
    return s !== grpc.connectivityState.TRANSIENT_FAILURE && s !== grpc.connectivityState.SHUTDOWN;
  }

  unary<Req, Res>(method: MethodDescriptor<Req, Res>, request: DeepPartial<Req>, call: OutgoingCall): Promise<Res> {
    const signal = call.signal;
    if (signal?.aborted) return Promise.reject(new CancelledError(`call ${method.path} cancelled by the caller`));
    const c = codecsOf(method);
    const pool = this.poolFor(call);
    return new Promise<Res>((resolve, reject) => {
      let slot: Slot;
      let grpcCall: ChannelCall;
      try {
        slot = pool.take();
      } catch (err) {
        reject(err);
        return;
      }
      try {
        grpcCall = slot.client.getChannel().createCall(method.path, call.deadline, undefined, null, undefined);
      } catch (err) {
        pool.give(slot);
        reject(err);
        return;
      }
      const receiver = new UnaryCall<Res>(pool, slot, c.deserialize, call, resolve, reject);
      receiver.grpcCall = grpcCall;
      grpcCall.start(isEmptyMetadata(call.metadata) ? NO_METADATA : toGrpcMetadata(call.metadata), receiver);
      grpcCall.startRead();
      let bytes: Buffer;
      try {
        bytes = c.serialize(request);
      } catch (e) {
        grpcCall.cancelWithStatus(grpc.status.INTERNAL, `Request message serialization failure: ${e instanceof Error ? e.message : String(e)}`);
        return;
      }
      grpcCall.sendMessageWithContext(MESSAGE_CONTEXT, bytes);
      grpcCall.halfClose();
      if (signal) receiver.watch(signal);
    });
  }

  serverStream<Req, Res>(method: MethodDescriptor<Req, Res>, request: DeepPartial<Req>, call: OutgoingCall): AsyncIterable<Res> {
    return {
      [Symbol.asyncIterator]: () => {
        const c = codecsOf(method);
        const stream = this.start(call, (client) => client.makeServerStreamRequest<unknown, Res>(method.path, c.serialize, c.deserialize as (b: Buffer) => Res, request, toGrpcMetadata(call.metadata), { deadline: call.deadline }));
        if (call.onHeaders !== undefined || call.onTrailers !== undefined) observe(stream, call);
        return this.read<Res>(stream, call);
      },
    };
  }

  clientStream<Req, Res>(method: MethodDescriptor<Req, Res>, requests: AsyncIterable<DeepPartial<Req>>, call: OutgoingCall): Promise<Res> {
    const c = codecsOf(method);
    return new Promise<Res>((resolve, reject) => {
      const stop = { done: false };
      const signal = call.signal;
      let onAbort: (() => void) | undefined;
      let stream: grpc.ClientWritableStream<unknown>;
      try {
        stream = this.start(call, (client) => client.makeClientStreamRequest<unknown, Res>(method.path, c.serialize, c.deserialize as (b: Buffer) => Res, toGrpcMetadata(call.metadata), { deadline: call.deadline },
          (err, res) => {
            stop.done = true;
            if (onAbort) signal!.removeEventListener("abort", onAbort);
            if (err) reject(fromGrpcError(err)); else resolve(res as Res);
          }));
      } catch (err) {
        reject(err);
        return;
      }
      if (call.onHeaders !== undefined || call.onTrailers !== undefined) observe(stream, call);
      if (signal) {
        onAbort = () => stream.cancel();
        if (signal.aborted) onAbort(); else signal.addEventListener("abort", onAbort, { once: true });
      }
      pump(requests, stream, stop).catch(() => undefined);
    });
  }

  bidi<Req, Res>(method: MethodDescriptor<Req, Res>, requests: AsyncIterable<DeepPartial<Req>>, call: OutgoingCall): AsyncIterable<Res> {
    return { [Symbol.asyncIterator]: () => this.bidiCall(method, requests, call) };
  }

  private async *bidiCall<Req, Res>(method: MethodDescriptor<Req, Res>, requests: AsyncIterable<DeepPartial<Req>>, call: OutgoingCall): AsyncGenerator<Res> {
    const c = codecsOf(method);
    const stream = this.start(call, (client) => client.makeBidiStreamRequest<unknown, Res>(method.path, c.serialize, c.deserialize as (b: Buffer) => Res, toGrpcMetadata(call.metadata), { deadline: call.deadline }));
    if (call.onHeaders !== undefined || call.onTrailers !== undefined) observe(stream, call);
    const stop = { done: false };
    pump(requests, stream, stop).catch(() => undefined);
    try {
      yield* this.read<Res>(stream, call);
    } finally {
      stop.done = true;
    }
  }

  /** Reads a response stream; cancels the call if the consumer stops early or the signal fires. */
  private async *read<Res>(stream: grpc.ClientReadableStream<Res> | grpc.ClientDuplexStream<unknown, Res>, call: OutgoingCall): AsyncGenerator<Res> {
    const onAbort = () => stream.cancel();
    const signal = call.signal;
    if (signal) {
      if (signal.aborted) onAbort(); else signal.addEventListener("abort", onAbort, { once: true });
    }
    let finished = false;
    try {
      for await (const msg of stream) yield msg as Res;
      finished = true;
    } catch (err) {
      finished = true;
      throw fromGrpcError(err);
    } finally {
      signal?.removeEventListener("abort", onAbort);
      if (!finished) stream.cancel();
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.plain.close();
    this.gzip?.close();
  }
}

export function grpcClientFactory(options: GrpcClientOptions = {}): ClientTransportFactory {
  return { protocol: "grpc", createChannel: (endpoint) => new GrpcChannel(endpoint, options) };
}
