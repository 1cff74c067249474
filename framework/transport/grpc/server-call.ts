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
import type { Readable } from "node:stream";
import * as grpc from "@grpc/grpc-js";
import { CancelledError, DeadlineExceededError, FailedPreconditionError } from "../../errors";
import type { Metadata, ServerContext } from "../base";
import { checkMetadata } from "../metadata";
import { fromGrpcMetadata, toGrpcMetadata } from "./wire";

export type AnyServerCall = grpc.ServerUnaryCall<any, any> | grpc.ServerReadableStream<any, any> | grpc.ServerWritableStream<any, any> | grpc.ServerDuplexStream<any, any>;

/**
 * A cancel that arrives this close to the deadline (or after it) is the deadline's: the client cancels
 * when its own clock reaches the deadline, which the server computed later (on receipt).
 */
const DEADLINE_SLACK_MS = 250;

export class GrpcServerContext implements ServerContext {
  readonly protocol = "grpc";
  readonly metadata: Readonly<Metadata>;
  readonly deadline: number | undefined;
  readonly peer: string;
  /** Why the call ended before the servant finished (cancel, deadline); undefined while the caller waits. */
  endedBy: Error | undefined;
  /** The servant has written a message or headers: no more sendHeaders. */
  headersSent = false;
  private ac: AbortController | undefined;
  private trailers: grpc.Metadata | undefined;
  private listening = true;
  private readonly onCancel = (): void => {
    const d = this.deadline;
    this.endedBy = d !== undefined && Date.now() >= d - DEADLINE_SLACK_MS
      ? new DeadlineExceededError(`call ${this.method} passed its deadline`)
      : new CancelledError(`call ${this.method} cancelled by the caller`);
    this.ac?.abort(this.endedBy);
  };

  constructor(readonly call: AnyServerCall, readonly method: string) {
    (call as unknown as NodeJS.EventEmitter).once("cancelled", this.onCancel);
    const raw = call.getDeadline();
    this.deadline = raw instanceof Date ? raw.getTime() : Number.isFinite(raw) ? Number(raw) : undefined;
    this.peer = call.getPeer();
    this.metadata = fromGrpcMetadata(call.metadata);
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
   */
  requests(): AsyncIterable<unknown> {
    const readable = this.call as unknown as Readable;
    return {
      [Symbol.asyncIterator]: () => {
        const it = readable.iterator({ destroyOnReturn: false });
        return {
          next: async () => {
            if (this.endedBy !== undefined) throw this.endedBy;
            let r: IteratorResult<unknown>;
            try {
              r = await it.next();
            } catch (err) {
              throw this.endedBy ?? err;
            }
            if (r.done && (this.endedBy !== undefined || (readable as { cancelled?: boolean }).cancelled === true)) {
              if (this.endedBy === undefined) this.onCancel();
              throw this.endedBy!;
            }
            return r;
          },
          return: (value?: unknown) => it.return!(value),
        };
      },
    };
  }
}
