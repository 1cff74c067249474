/**
 * The `sgrid` client channel: one per endpoint, shared by every proxy that
 * calls it, holding at most one connection at a time.
 *
 * Connection policy: opened on first use; when it closes (or the server sends
 * GOAWAY) the next call opens a new one. A failed connect fails the calls
 * waiting on it with UNAVAILABLE (never delivered, so the proxy retries them
 * elsewhere), and further calls fail at once with UNAVAILABLE until a backoff
 * pause (backoffInitialMs, doubling up to backoffMaxMs) has passed.
 */
import { endpointKey, type Endpoint } from "../../endpoint";
import { Backoff } from "../../primitives";
import { CancelledError, DeadlineExceededError, InvalidArgumentError, ResourceExhaustedError, UnavailableError } from "../../errors";
import type { ClientChannel, ClientTransportFactory, DeepPartial, MethodDescriptor, OutgoingCall, UnaryOutcome } from "../base";
import { ClientCall } from "./client-call";
import { ClientConnection, type ConnectionOwner } from "./client-connection";
import { encodeForFrame } from "./frame-writer";
import { resolveClientOptions, type ResolvedClientOptions, type SgridClientOptions } from "./options";

// A promise's resolve/reject, handed out by one shared executor: no closure per call.
let nextResolve: ((value: any) => void) | undefined;
let nextReject: ((err: Error) => void) | undefined;
function captureResolvers(resolve: (value: any) => void, reject: (err: Error) => void): void {
  nextResolve = resolve;
  nextReject = reject;
}

/** A promise settled by the call `c`. */
function promiseOf<T>(c: ClientCall): Promise<T> {
  const p = new Promise<T>(captureResolvers);
  c.resolveFn = nextResolve;
  c.rejectFn = nextReject;
  nextResolve = undefined;
  nextReject = undefined;
  return p;
}

/** An iterator that fails on first use: how stream calls report errors found before sending. */
function failedStream<T>(err: Error): AsyncIterableIterator<T> {
  return {
    next: () => Promise.reject(err),
    return: () => Promise.resolve({ value: undefined, done: true }),
    [Symbol.asyncIterator]() { return this; },
  };
}

/** begin()'s request when the call sends `payload` (or nothing) rather than a message to encode into its frame. */
const NO_REQUEST: unique symbol = Symbol("no request");

function encodeFailed(method: MethodDescriptor, err: unknown): Error {
  return new InvalidArgumentError(`request of ${method.path} could not be encoded: ${(err as Error)?.message ?? String(err)}`);
}

export class SgridChannel implements ClientChannel, ConnectionOwner {
  readonly options: ResolvedClientOptions;
  private readonly key: string;
  private conn: ClientConnection | undefined;
  /** Connections that received GOAWAY and still finish their calls. */
  private readonly draining = new Set<ClientConnection>();
  private failures = 0;
  private backoff: Backoff | undefined;
  private retryAt = 0;
  private lastFailure = "";
  private closed = false;

  constructor(readonly endpoint: Endpoint, options?: SgridClientOptions) {
    this.options = resolveClientOptions(options);
    this.key = endpointKey(endpoint);
  }

  isReady(): boolean {
    return !this.closed && this.failures === 0;
  }

  /** The live connection, opening one if needed. Throws UnavailableError during a backoff pause or after close(). */
  private acquire(): ClientConnection {
    const c = this.conn;
    if (c !== undefined) return c;
    if (this.closed) throw new UnavailableError(`channel to ${this.key} is closed`, { endpoint: this.key });
    const now = Date.now();
    if (now < this.retryAt) {
      throw new UnavailableError(`cannot connect to ${this.key}: ${this.lastFailure} (next attempt in ${this.retryAt - now} ms)`, { endpoint: this.key });
    }
    const conn = new ClientConnection(this, this.endpoint, this.options);
    this.conn = conn;
    return conn;
  }

  // ---- ConnectionOwner ----------------------------------------------------------
  onEstablished(_conn: ClientConnection): void {
    this.failures = 0;
    this.backoff?.reset();
    this.retryAt = 0;
  }

  onClosed(conn: ClientConnection, established: boolean, reason: string): void {
    if (this.conn === conn) this.conn = undefined;
    this.draining.delete(conn);
    if (!established && !this.closed) {
      this.failures++;
      this.backoff ??= new Backoff({ initialMs: this.options.backoffInitialMs, maxMs: Math.max(this.options.backoffInitialMs, this.options.backoffMaxMs), jitter: 0 });
      const pause = this.backoff.next();
      this.retryAt = Date.now() + pause;
      this.lastFailure = reason;
    }
  }

  onGoaway(conn: ClientConnection): void {
    if (this.conn === conn) this.conn = undefined;
    if (!conn.closed) this.draining.add(conn);
  }

  // ---- calls -----------------------------------------------------------------------
  /**
   * Common checks, then registers and sends the call. Returns the started
   * call, or the error to report (nothing was sent). A started call cannot
   * complete before the caller's synchronous code has run, so the caller
   * attaches its promise callbacks afterwards.
   */
  private begin(method: MethodDescriptor, payload: Uint8Array | undefined, call: OutgoingCall, streamOut: boolean, now?: number, request: unknown = NO_REQUEST): ClientCall | Error {
    const signal = call.signal;
    if (signal !== undefined && signal.aborted) return new CancelledError(`call ${method.path} cancelled by the caller`);
    // Infinity (no deadline) stays Infinity: no timer, no timeout on the wire.
    const remaining = call.deadline - (now ?? Date.now());
    if (!(remaining > 0)) return new DeadlineExceededError(`call ${method.path} exceeded its deadline before it was sent`);
    let conn: ClientConnection;
    try {
      conn = this.acquire();
    } catch (err) {
      // A request that can never be encoded says so, rather than UNAVAILABLE (which a caller would retry elsewhere).
      if (request !== NO_REQUEST) {
        try {
          encodeForFrame(method.requestCodec, request as never);
        } catch (encodeErr) {
          return encodeFailed(method, encodeErr);
        }
      }
      return err as Error;
    }
    const c = new ClientCall(conn, method);
    if (call.onHeaders !== undefined || call.onTrailers !== undefined) {
      c.onHeaders = call.onHeaders;
      c.onTrailers = call.onTrailers;
    }
    if (streamOut) c.openInbound(this.options.initialWindow, this.options.initialWindow + this.options.maxFrameSize);
    let sent: boolean;
    try {
      sent = request === NO_REQUEST
        ? conn.start(c, payload, call.metadata, Math.ceil(remaining), call.deadline, signal)
        : conn.start(c, undefined, call.metadata, Math.ceil(remaining), call.deadline, signal, method.requestCodec, request);
    } catch (err) {
      if (request === NO_REQUEST) throw err; // not an encode: bytes were given
      return encodeFailed(method, err);
    }
    if (!sent) {
      return new ResourceExhaustedError(`request of ${method.path} (${conn.writer.refusedBytes} bytes) exceeds the frame limit of ${conn.peerMaxFrame} bytes`);
    }
    return c;
  }

  private encode(method: MethodDescriptor, request: unknown): Uint8Array | Error {
    try {
      // Copied into the connection's output before anything else encodes (begin() writes the frame).
      return encodeForFrame(method.requestCodec, request as never);
    } catch (err) {
      return encodeFailed(method, err);
    }
  }

  // Unary requests are encoded into their frame by begin() (FrameWriter.requestMessage): no copy of the bytes.
  unary<Req, Res>(method: MethodDescriptor<Req, Res>, request: DeepPartial<Req>, call: OutgoingCall): Promise<Res> {
    const c = this.begin(method, undefined, call, false, undefined, request);
    if (c instanceof Error) return Promise.reject(c);
    return promiseOf<Res>(c);
  }

  unaryInto<Req, Res>(method: MethodDescriptor<Req, Res>, request: DeepPartial<Req>, call: OutgoingCall, out: UnaryOutcome): void {
    const c = this.begin(method, undefined, call, false, out.clock, request);
    if (c instanceof Error) out.rejected(c);
    else c.out = out;
  }

  serverStream<Req, Res>(method: MethodDescriptor<Req, Res>, request: DeepPartial<Req>, call: OutgoingCall): AsyncIterable<Res> {
    return {
      [Symbol.asyncIterator]: (): AsyncIterator<Res> => {
        const payload = this.encode(method, request);
        if (payload instanceof Error) return failedStream<Res>(payload);
        const c = this.begin(method, payload, call, true);
        if (c instanceof Error) return failedStream<Res>(c);
        return c.inbound as AsyncIterator<Res>;
      },
    };
  }

  clientStream<Req, Res>(method: MethodDescriptor<Req, Res>, requests: AsyncIterable<DeepPartial<Req>>, call: OutgoingCall): Promise<Res> {
    const c = this.begin(method, undefined, call, false);
    if (c instanceof Error) return Promise.reject(c);
    const p = promiseOf<Res>(c);
    void c.pumpRequests(requests);
    return p;
  }

  bidi<Req, Res>(method: MethodDescriptor<Req, Res>, requests: AsyncIterable<DeepPartial<Req>>, call: OutgoingCall): AsyncIterable<Res> {
    return {
      [Symbol.asyncIterator]: (): AsyncIterator<Res> => {
        const c = this.begin(method, undefined, call, true);
        if (c instanceof Error) return failedStream<Res>(c);
        void c.pumpRequests(requests);
        return c.inbound as AsyncIterator<Res>;
      },
    };
  }

  /** Calls in flight on this channel (all its connections). */
  inflight(): number {
    let n = this.conn?.size() ?? 0;
    for (const d of this.draining) n += d.size();
    return n;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const conns = [...this.draining];
    if (this.conn !== undefined) conns.push(this.conn);
    this.conn = undefined;
    this.draining.clear();
    for (const c of conns) c.destroy("channel closed");
  }
}

/** The factory registered for protocol `sgrid`. Options are validated once, here. */
export function sgridClientFactory(options?: SgridClientOptions): ClientTransportFactory {
  const resolved = resolveClientOptions(options);
  return { protocol: "sgrid", createChannel: (endpoint) => new SgridChannel(endpoint, resolved) };
}
