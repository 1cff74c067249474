/**
 * One call served over gRPC: the ServerContext a servant sees (metadata in,
 * headers and trailers out, cancellation), and the request stream that tells
 * a cancelled or expired call from a normal end.
 *
 * grpc-js reports the end of a call the same way whether the client
 * half-closed, cancelled, or the deadline passed (the request stream just
 * ends), and emits "cancelled" after every call, finished or not. So the
 * context listens for "cancelled" only while the handler runs, and the
 * request stream, when it ends, throws the reason if the call was cut short.
 */
import type { ServerHttp2Stream } from "node:http2";
import type { Readable } from "node:stream";
import * as grpc from "@grpc/grpc-js";
import { CancelledError, DeadlineExceededError, FailedPreconditionError } from "../../errors";
import type { Metadata, ServerContext } from "../base";
import { checkMetadata } from "../metadata";
import { type MessageResult, PUSH_READ, type PushReadable, waitOf } from "../../primitives/each-message";
import { fromGrpcMetadata, toGrpcMetadata } from "./wire";

export type AnyServerCall = grpc.ServerUnaryCall<any, any> | grpc.ServerReadableStream<any, any> | grpc.ServerWritableStream<any, any> | grpc.ServerDuplexStream<any, any>;

/**
 * A cancel that arrives this close to the deadline (or after it) is the deadline's: the client cancels
 * when its own clock reaches the deadline, which the server computed later (on receipt).
 */
const DEADLINE_SLACK_MS = 250;

/**
 * True when the call's HTTP/2 stream was reset (RST_STREAM: the client cancelled, or its deadline
 * passed). grpc-js ends the request stream on a reset exactly as on a half-close and reports the
 * cancel a tick later, so the request stream's end asks the HTTP/2 stream itself, which knows
 * (Node sets rstCode before it ends the readable side). grpc-js keeps it on its internal call
 * object (`call.call`, behind any interceptors' `nextCall`); if a grpc-js version moves it, this
 * answers false and the cancel is still seen when grpc-js reports it.
 */
function resetByPeer(call: AnyServerCall): boolean {
  const code = http2StreamOf(call)?.rstCode;
  return typeof code === "number" && code !== 0;
}

export function http2StreamOf(call: AnyServerCall): ServerHttp2Stream | undefined {
  let c = (call as unknown as { call?: unknown }).call as { nextCall?: unknown; stream?: ServerHttp2Stream } | undefined;
  for (let depth = 0; c !== undefined && c.stream === undefined && depth < 8; depth++) c = c.nextCall as typeof c;
  return c?.stream;
}

/** Longest wait for the PING answer below; a peer that does not answer PINGs gets its end as it is. */
const PING_WAIT_MS = 1000;

/**
 * Resolves once the peer has answered a PING sent now (or the stream closed, or PING_WAIT_MS passed).
 * A Node client (grpc-js) cancels by half-closing and then, one turn of its event loop later,
 * resetting the stream; it sends the reset before it can read this PING, so by the time the answer
 * arrives (same connection, in order) the reset has been seen. One round trip, at the end of a
 * request stream only.
 */
function peerCaughtUp(call: AnyServerCall): Promise<void> {
  const stream = http2StreamOf(call);
  const session = stream?.session;
  if (stream === undefined || session === undefined || stream.closed || session.destroyed) return Promise.resolve();
  return new Promise<void>((resolve) => {
    let settled = false;
    const done = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      stream.removeListener("close", done);
      resolve();
    };
    const timer = setTimeout(done, PING_WAIT_MS);
    timer.unref();
    stream.once("close", done);
    try {
      if (!session.ping(done)) done();
    } catch {
      done();
    }
  });
}

export class GrpcServerContext implements ServerContext {
  readonly protocol = "grpc";
  private md: Readonly<Metadata> | undefined;
  readonly deadline: number | undefined;
  private peerNow: string | undefined;
  /** Why the call ended before the servant finished (cancel, deadline); undefined while the caller waits. */
  endedBy: Error | undefined;
  /** The servant has written a message or headers: no more sendHeaders. */
  headersSent = false;
  private ac: AbortController | undefined;
  private trailers: grpc.Metadata | undefined;
  private listening = true;
  private readonly onCancel = (): void => {
    if (this.endedBy !== undefined) return;
    const d = this.deadline;
    this.endedBy = d !== undefined && Date.now() >= d - DEADLINE_SLACK_MS
      ? new DeadlineExceededError(`call ${this.method} passed its deadline`)
      : new CancelledError(`call ${this.method} cancelled by the caller`);
    this.ac?.abort(this.endedBy);
  };

  constructor(readonly call: AnyServerCall, readonly method: string) {
    // on, not once (no wrapper per call): done() removes it, and a second "cancelled" changes nothing.
    (call as unknown as NodeJS.EventEmitter).on("cancelled", this.onCancel);
    const raw = call.getDeadline();
    this.deadline = raw instanceof Date ? raw.getTime() : Number.isFinite(raw) ? Number(raw) : undefined;
  }

  /** Caller address, `host:port`, asked of grpc-js on first read (most calls never read it). */
  get peer(): string {
    return (this.peerNow ??= this.call.getPeer());
  }

  /** The request metadata, converted on first read: most calls (no tracing, no servant that looks) never read it. */
  get metadata(): Readonly<Metadata> {
    return (this.md ??= fromGrpcMetadata(this.call.metadata));
  }

  get signal(): AbortSignal {
    if (this.ac === undefined) {
      this.ac = new AbortController();
      if (this.endedBy !== undefined) this.ac.abort(this.endedBy);
    }
    return this.ac.signal;
  }

  /** True when the caller is gone (fires no event: for loops that poll). */
  get aborted(): boolean {
    return this.endedBy !== undefined;
  }

  sendHeaders(headers: Metadata): void {
    if (this.headersSent) throw new FailedPreconditionError(`call ${this.method}: response headers were sent already`);
    checkMetadata(headers, `response headers of ${this.method}`);
    this.headersSent = true;
    this.call.sendMetadata(toGrpcMetadata(headers));
  }

  setTrailers(trailers: Metadata): void {
    checkMetadata(trailers, `trailers of ${this.method}`);
    const t = (this.trailers ??= new grpc.Metadata());
    for (const key in trailers) t.set(key, trailers[key]!);
  }

  /** The trailers the servant set, merged into `into` (the error status' metadata) when given. */
  trailersFor(into?: grpc.Metadata): grpc.Metadata | undefined {
    const t = this.trailers;
    if (t === undefined) return into;
    if (into === undefined) return t;
    into.merge(t);
    return into;
  }

  /** True when grpc-js or the HTTP/2 stream already knows the call was cancelled. */
  private cutShort(): boolean {
    return (this.call as { cancelled?: boolean }).cancelled === true || resetByPeer(this.call);
  }

  /** The handler is over: later "cancelled" events are grpc-js' normal end of call. */
  done(): void {
    if (!this.listening) return;
    this.listening = false;
    (this.call as unknown as NodeJS.EventEmitter).removeListener("cancelled", this.onCancel);
  }

  /**
   * The request stream. It does not destroy the call when iteration stops early (Node's default
   * Readable iterator destroys the whole duplex, which would drop the response stream and its
   * status), and it ends by throwing CANCELLED / DEADLINE_EXCEEDED when the call was cut short.
   * It can also be read by push (framework/primitives/each-message.ts): the same order, end and
   * errors, with no promise per message; reading by push continues after what an iterator read.
   */
  requests(): PushReadable<unknown> {
    const readable = this.call as unknown as Readable;
    let current: AsyncIterator<unknown> | undefined;
    return {
      [Symbol.asyncIterator]: () => {
        const it = readable.iterator({ destroyOnReturn: false });
        current = it;
        return {
          next: async () => {
            if (this.endedBy !== undefined) throw this.endedBy;
            let r: IteratorResult<unknown>;
            try {
              r = await it.next();
            } catch (err) {
              throw this.endedBy ?? err;
            }
            if (r.done) await this.checkEnd();
            return r;
          },
          return: (value?: unknown) => it.return!(value),
        };
      },
      [PUSH_READ]: async (onMessage) => {
        // Node's iterator keeps listeners on the stream (and would read ahead) until it is returned.
        if (current !== undefined) await current.return?.();
        current = undefined;
        return this.pushRead(readable, onMessage);
      },
    };
  }

  /** At the request stream's end: throws CANCELLED / DEADLINE_EXCEEDED when the call was cut short. */
  private async checkEnd(): Promise<void> {
    // A Node client's cancel half-closes before it resets: make sure no reset is on its way.
    if (this.endedBy === undefined && !this.cutShort()) await peerCaughtUp(this.call);
    if (this.endedBy !== undefined || this.cutShort()) {
      if (this.endedBy === undefined) this.onCancel();
      throw this.endedBy!;
    }
  }

  /**
   * Reads the request stream by push: each buffered message goes to onMessage at once; while a
   * promise it returned is pending nothing is read, so the Readable's buffer fills, grpc-js stops
   * asking for messages (its _read) and HTTP/2 flow control holds the client back, as with an
   * iterator that is not pulled.
   */
  private pushRead(readable: Readable, onMessage: (message: unknown) => MessageResult): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let waiting = false;
      let ending = false;
      let settled = false;
      const settle = (err?: unknown): void => {
        if (settled) return;
        settled = true;
        readable.off("readable", pump);
        readable.off("end", onEnd);
        readable.off("error", onError);
        readable.off("close", onClose);
        if (err === undefined) resolve();
        else reject(err);
      };
      const resume = (): void => {
        waiting = false;
        pump();
      };
      const fail = (err: unknown): void => settle(this.endedBy ?? err);
      function pump(this: void): void {
        while (!waiting && !settled) {
          const m: unknown = readable.read();
          if (m === null) return;
          try {
            const wait = waitOf(onMessage(m));
            if (wait !== undefined) {
              waiting = true;
              wait.then(resume, fail);
            }
          } catch (err) {
            fail(err);
            return;
          }
        }
      }
      const onEnd = (): void => {
        ending = true;
        this.checkEnd().then(() => settle(), fail);
      };
      const onError = (err: unknown): void => fail(err);
      // Destroyed without an end (grpc-js destroys the stream when the call is cancelled, after "cancelled").
      const onClose = (): void => {
        if (!ending) fail(new CancelledError(`call ${this.method}: the request stream closed before its end`));
      };
      if (this.endedBy !== undefined) return settle(this.endedBy);
      if (readable.readableEnded) return onEnd();
      if (readable.destroyed) return onClose();
      readable.on("readable", pump);
      readable.on("end", onEnd);
      readable.on("error", onError);
      readable.on("close", onClose);
      pump();
    });
  }
}
