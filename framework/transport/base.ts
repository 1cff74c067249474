/**
 * The small interface generated servants and proxies are written against.
 *
 * Generated code only ever sees {@link ServiceDescriptor}s and the
 * {@link ClientChannel} / {@link ServerTransport} contracts below; gRPC
 * (grpc-js) and the native framed-TCP transport both implement them, so no
 * generated file changes when a service moves between protocols.
 */
import type { Endpoint } from "../endpoint";

export type MethodKind = "unary" | "server_stream" | "client_stream" | "bidi";

/** Encodes and decodes one message type; wraps ts-proto's generated codecs. */
export interface MessageCodec<T> {
  /** Accepts a partial message (missing fields take their defaults). Never mutates its input. */
  encode(message: DeepPartial<T>): Uint8Array;
  /**
   * Like encode, but the bytes may be the codec's own buffer, valid only until the next encode by any codec: for a
   * caller that copies them at once (the native transport's frame writer). Optional; encode is used without it.
   */
  encodeTransient?(message: DeepPartial<T>): Uint8Array;
  /**
   * Encodes straight into `target` from `offset` and returns where the bytes end, for a caller that frames them
   * there (the native transport's frame writer: no copy); bytes past `offset` may be overwritten either way. A
   * message that does not fit before target's end comes back as encodeTransient's bytes instead. Optional.
   */
  encodeAt?(message: DeepPartial<T>, target: Uint8Array, offset: number): number | Uint8Array;
  decode(bytes: Uint8Array): T;
  /**
   * Decodes `bytes[start, end)` (a message inside a larger buffer, such as a socket chunk) as decode would its
   * view. Optional; decode of a view is used without it.
   */
  decodeRange?(bytes: Uint8Array, start: number, end: number): T;
}

export interface MethodDescriptor<Req = any, Res = any> {
  /** Method name as in the .proto (`SayHello`). */
  readonly name: string;
  /** Wire path, identical on both transports: `/demo.Greeter/SayHello`. */
  readonly path: string;
  readonly kind: MethodKind;
  readonly requestCodec: MessageCodec<Req>;
  readonly responseCodec: MessageCodec<Res>;
  /** From `option idempotency_level = IDEMPOTENT | NO_SIDE_EFFECTS`: the proxy may retry it on any failure. */
  readonly idempotent: boolean;
}

export interface ServiceDescriptor {
  /** Service name (`Greeter`). */
  readonly name: string;
  /** Fully qualified service name (`demo.Greeter`). */
  readonly fullName: string;
  /**
   * Compiled descriptors of the service's .proto file and its imports (serialized FileDescriptorProto, base64, imports
   * first, the service's own file last), embedded by `sgrid gen`; server reflection answers from them. Absent for a
   * hand-written descriptor: reflection then lists the service but cannot describe it.
   */
  readonly protoFiles?: readonly string[];
  /** Methods by their camelCase local name (`sayHello`). */
  readonly methods: Readonly<Record<string, MethodDescriptor>>;
}

export type Primitive = string | number | boolean | bigint | undefined | null | Date | Uint8Array;
/** Recursive Partial used for request and response arguments (ts-proto `fromPartial` semantics). */
export type DeepPartial<T> = T extends Primitive
  ? T
  : T extends Array<infer U>
    ? Array<DeepPartial<U>>
    : T extends ReadonlyArray<infer U>
      ? ReadonlyArray<DeepPartial<U>>
      : T extends { $case: string }
        ? { [K in keyof Omit<T, "$case">]?: DeepPartial<T[K]> } & { $case: T["$case"] }
        : T extends object
          ? { [K in keyof T]?: DeepPartial<T[K]> }
          : Partial<T>;

/**
 * Call metadata, lower-case keys (`framework/transport/metadata.ts` has the rules): keys ending in
 * `-bin` carry binary values (a Buffer), every other key a string of printable ASCII.
 */
export type Metadata = Record<string, string | Buffer>;

/** What the proxy hands a channel for one call. */
export interface OutgoingCall {
  /** Absolute deadline, epoch milliseconds; `Infinity` for none. */
  readonly deadline: number;
  /** Checked already (checkMetadata). */
  readonly metadata: Metadata;
  readonly signal?: AbortSignal;
  /** Called with the servant's response headers, before the first message or the result. */
  readonly onHeaders?: (headers: Metadata) => void;
  /** Called with the trailers the servant set (empty when none), when the call ends, before its result or error. */
  readonly onTrailers?: (trailers: Metadata) => void;
  /** `gzip` compresses the request messages (gRPC; the native transport ignores it). */
  readonly compression?: Compression;
}

/** Message compression of a call (gRPC transport). */
export type Compression = "gzip" | "identity";

/**
 * One logical connection to one endpoint. Created once per endpoint and
 * reused by every proxy that calls it. Failures are reported as SgridError
 * (UnavailableError when the call never reached the servant, so the proxy
 * may retry elsewhere).
 */
export interface ClientChannel {
  readonly endpoint: Endpoint;
  unary<Req, Res>(method: MethodDescriptor<Req, Res>, request: DeepPartial<Req>, call: OutgoingCall): Promise<Res>;
  /**
   * The same call as unary(), its outcome reported to `out` instead of a promise (none is made): `resolved`
   * with the reply or `rejected` with the error, exactly once; an error found before anything was sent may be
   * reported before unaryInto returns. `resolved` may run inside the transport's socket callback. Optional; the
   * proxies use it when present (proxy/invoker.ts).
   */
  unaryInto?<Req, Res>(method: MethodDescriptor<Req, Res>, request: DeepPartial<Req>, call: OutgoingCall, out: UnaryOutcome): void;
  serverStream<Req, Res>(method: MethodDescriptor<Req, Res>, request: DeepPartial<Req>, call: OutgoingCall): AsyncIterable<Res>;
  clientStream<Req, Res>(method: MethodDescriptor<Req, Res>, requests: AsyncIterable<DeepPartial<Req>>, call: OutgoingCall): Promise<Res>;
  bidi<Req, Res>(method: MethodDescriptor<Req, Res>, requests: AsyncIterable<DeepPartial<Req>>, call: OutgoingCall): AsyncIterable<Res>;
  /** True while the channel believes its endpoint is reachable (no recent connect failure). */
  isReady(): boolean;
  /** Closes the channel; calls in flight fail with CANCELLED or UNAVAILABLE. Idempotent. */
  close(): void;
}

/** Opens channels for one protocol. */
export interface ClientTransportFactory {
  readonly protocol: string;
  createChannel(endpoint: Endpoint): ClientChannel;
}

/** What a servant method sees about the call it is serving. */
export interface ServerContext {
  /** Wire path of the method (`/demo.Greeter/SayHello`). */
  readonly method: string;
  /** Request metadata, lower-case keys. */
  readonly metadata: Readonly<Metadata>;
  /** Absolute deadline (epoch ms) set by the caller, if any. Outgoing proxy calls made while serving inherit it. */
  readonly deadline: number | undefined;
  /** Caller address, `host:port`. */
  readonly peer: string;
  /** Fires when the caller cancels, the deadline passes, or the connection drops; its reason is `endedBy`. */
  readonly signal: AbortSignal;
  /**
   * Why the call ended before the servant finished: CancelledError, DeadlineExceededError, or
   * UnavailableError (connection lost); undefined while the caller waits. A request stream ends by
   * throwing it.
   */
  readonly endedBy: Error | undefined;
  /** Protocol the call arrived on (`grpc` or `sgrid`). */
  readonly protocol: string;
  /**
   * Sends the response headers now, before any message (at most once; without it, empty headers go with
   * the first message or the status). Throws InvalidArgumentError for a key or value gRPC would not carry.
   */
  sendHeaders(headers: Metadata): void;
  /** Adds trailers, sent with the call's status whether it succeeds or fails. Same rules as sendHeaders. */
  setTrailers(trailers: Metadata): void;
}

/** Where a unary or client-streaming call's outcome goes when the transport hands one to the handler (UnaryHandler.into). */
export interface UnaryOutcome {
  /** The method's response (or null/undefined, which the transport refuses). Never throws. */
  resolved(res: unknown): void;
  /** The method's error. Never throws. */
  rejected(err: unknown): void;
  /**
   * A Date.now() read in the synchronous run that is starting this attempt (the one its deadline was
   * computed from), for the channel to use instead of reading the clock again; undefined when time may
   * have passed since (a retry, an attempt after an asynchronous endpoint pick).
   */
  readonly clock?: number;
}

/**
 * A unary method (a client-streaming one likewise). `into`, when present, runs the same
 * method and reports to `out` instead of returning a promise: the transport's
 * call object is the outcome, so a call costs one promise (the method's own)
 * and no chain after it (servant/dispatch.ts provides it; the native
 * transport uses it, framework/transport/sgrid/server-call.ts).
 */
export type UnaryHandler = WithOutcome<(request: any, ctx: ServerContext) => Promise<any>>;
export type ServerStreamHandler = (request: any, ctx: ServerContext) => AsyncIterable<any>;
export type ClientStreamHandler = WithOutcome<(requests: AsyncIterable<any>, ctx: ServerContext) => Promise<any>>;
type WithOutcome<F> = F & { into?: (request: any, ctx: ServerContext, out: UnaryOutcome) => void };
export type BidiHandler = (requests: AsyncIterable<any>, ctx: ServerContext) => AsyncIterable<any>;
export type Handler = UnaryHandler | ServerStreamHandler | ClientStreamHandler | BidiHandler;

/** A service bound to its implementation, ready for a server transport. */
export interface BoundService {
  readonly descriptor: ServiceDescriptor;
  /** By wire path. */
  readonly handlers: ReadonlyMap<string, { method: MethodDescriptor; handler: Handler }>;
}

/** Serves bound services on one listening address. */
export interface ServerTransport {
  readonly protocol: string;
  addService(service: BoundService): void;
  /** Binds and starts serving. Resolves with the bound port; rejects with BindError naming the port. */
  listen(host: string, port: number): Promise<number>;
  /** Stops accepting new calls and waits for in-flight ones, up to graceMs; then forces. Idempotent. */
  shutdown(graceMs: number): Promise<void>;
  /** Number of calls in flight. */
  inflight(): number;
  /** Open connections, for `sgrid.connections`. */
  connections(): Array<{ peer: string; protocol: string; since: number }>;
}

export interface ServerTransportFactory {
  readonly protocol: string;
  createServer(options?: Record<string, unknown>): ServerTransport;
}
