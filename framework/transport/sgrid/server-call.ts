/**
 * One call on the server side: the ServerContext the servant sees, and the
 * loops that run each kind of method.
 *
 * The context is cheap until used: its AbortSignal (and the timer that fires
 * it at the deadline) is only created when the servant reads `ctx.signal`.
 * A call counts as in flight from its REQUEST until its handler has settled
 * (and, for streams, its output loop has stopped), cancelled or not; that is
 * what graceful shutdown waits for.
 */
import { DeadlineExceededError, FailedPreconditionError, InvalidArgumentError, ResourceExhaustedError } from "../../errors";
import { checkMetadata } from "../metadata";
import { MAX_TIMER_MS } from "../../primitives/timers";
import type { BidiHandler, Handler, Metadata, MethodDescriptor, ServerContext, ServerStreamHandler, UnaryHandler, UnaryOutcome } from "../base";
import { InboundStream, type InboundOwner } from "./inbound-stream";
import { HEADER_SIZE, MESSAGE_COST_OVERHEAD } from "./protocol";
import { encodeForFrame, type FrameWriter } from "./frame-writer";

export interface HandlerEntry {
  readonly method: MethodDescriptor;
  readonly handler: Handler;
}

/** What a call needs from the connection it arrived on (ServerConnection). */
export interface CallHost {
  readonly writer: FrameWriter;
  readonly peer: string;
  /** Credit the client grants per response stream. */
  readonly clientWindow: number;
  readonly clientMaxFrame: number;
  congested(): boolean;
  waitDrain(call: ServerCall): void;
  /** OK reply (`res` undefined for streams). */
  sendReply(call: ServerCall, res: unknown): void;
  /** Error reply through the transport's error boundary. */
  sendError(call: ServerCall, err: unknown): void;
  /** The call is over; unregisters it. */
  callFinished(call: ServerCall): void;
}

/** A REQUEST's u32 timeout reaches ~49.7 days: a deadline further away than MAX_TIMER_MS takes more than one timer. */
function armDeadline(call: ServerCall, ms: number): void {
  call.deadlineTimer = setTimeout(abortAtDeadline, Math.min(ms, MAX_TIMER_MS), call);
  call.deadlineTimer.unref();
}

function abortAtDeadline(call: ServerCall): void {
  call.deadlineTimer = undefined;
  const left = call.deadline === undefined ? 0 : call.deadline - Date.now();
  if (left > 0) armDeadline(call, left);
  else call.abort(new DeadlineExceededError(`call ${call.method} passed its deadline`));
}

export class ServerCall implements ServerContext, InboundOwner, UnaryOutcome {
  /** The caller is gone (CANCEL, deadline on its side, connection lost): send nothing more. */
  cancelled = false;
  /** The handler has settled and the call is unregistered. */
  done = false;
  sendCredit: number;
  inbound: InboundStream<unknown> | undefined;
  deadlineTimer: NodeJS.Timeout | undefined;
  /** Trailers the servant set, sent with the RESPONSE. */
  trailers: Metadata | undefined;
  /** Headers or a message went out: no more sendHeaders. */
  headersSent = false;
  private ac: AbortController | undefined;
  private abortReason: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(
    readonly conn: CallHost,
    readonly id: number,
    readonly entry: HandlerEntry,
    readonly method: string,
    readonly metadata: Readonly<Metadata>,
    readonly deadline: number | undefined,
  ) {
    this.sendCredit = conn.clientWindow;
  }

  get peer(): string {
    return this.conn.peer;
  }

  get protocol(): string {
    return "sgrid";
  }

  get signal(): AbortSignal {
    let ac = this.ac;
    if (ac === undefined) {
      ac = this.ac = new AbortController();
      if (this.abortReason !== undefined) {
        ac.abort(this.abortReason);
      } else if (this.deadline !== undefined && !this.done) {
        const ms = this.deadline - Date.now();
        if (ms <= 0) ac.abort(new DeadlineExceededError(`call ${this.method} passed its deadline`));
        else armDeadline(this, ms);
      }
    }
    return ac.signal;
  }

  get endedBy(): Error | undefined {
    return this.abortReason;
  }

  sendHeaders(headers: Metadata): void {
    if (this.headersSent) throw new FailedPreconditionError(`call ${this.method}: response headers were sent already`);
    checkMetadata(headers, `response headers of ${this.method}`);
    this.headersSent = true;
    if (!this.cancelled && !this.done) this.conn.writer.headers(this.id, headers);
  }

  setTrailers(trailers: Metadata): void {
    checkMetadata(trailers, `trailers of ${this.method}`);
    this.trailers = this.trailers === undefined ? { ...trailers } : Object.assign(this.trailers, trailers);
  }

  /** Fires ctx.signal (once). */
  abort(reason: Error): void {
    if (this.abortReason !== undefined) return;
    this.abortReason = reason;
    if (this.ac !== undefined) this.ac.abort(reason);
  }

  /** The caller is gone: fire the signal, end the request stream, stop the output loop. Idempotent. */
  cancel(reason: Error): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.abort(reason);
    if (this.inbound !== undefined) this.inbound.end(reason);
    this.wakeUp();
  }

  // ---- UnaryOutcome (unary and client-streaming calls) ---------------------------------
  /** The handler's response. Never throws. */
  resolved(res: unknown): void {
    try {
      if (!this.cancelled) this.conn.sendReply(this, res);
    } catch (err) {
      this.conn.sendError(this, err);
    } finally {
      this.finish();
    }
  }

  /** The handler's error. Never throws. */
  rejected(err: unknown): void {
    if (!this.cancelled) this.conn.sendError(this, err);
    this.finish();
  }

  addCredit(increment: number): void {
    this.sendCredit += increment;
    this.wakeUp();
  }

  wakeUp(): void {
    const w = this.wake;
    if (w !== undefined) {
      this.wake = undefined;
      w();
    }
  }

  /** Resolves when the call may send again (credit, socket drained) or was cancelled. */
  waitWritable(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.wake = resolve;
      if (this.sendCredit > 0) this.conn.waitDrain(this);
    });
  }

  /** Unregisters the call; called once, when its handler and output loop are over. */
  finish(): void {
    if (this.done) return;
    this.done = true;
    if (this.deadlineTimer !== undefined) clearTimeout(this.deadlineTimer);
    if (this.inbound !== undefined) this.inbound.discard();
    this.conn.callFinished(this);
  }

  // ---- InboundOwner (the request stream) ---------------------------------------------
  grant(increment: number): void {
    if (!this.cancelled && !this.done) this.conn.writer.window(this.id, increment);
  }

  consumerGone(): void {
    // The servant stopped reading its requests; later ones are discarded (credit still returned).
  }

  decodeFailed(_err: unknown): Error {
    return new InvalidArgumentError(`a request message of ${this.method} could not be decoded`);
  }
}

/**
 * Unary and client-streaming methods: one reply (or error) when the handler
 * settles. A servant's handler (servant/dispatch.ts) takes the call as its
 * outcome (`into`): the method's own promise is the only one per call. A
 * plain handler's promise gets one then(). Not an async function: this runs
 * for every call, and an async function's frame and await cost several
 * hundred bytes of garbage each time.
 */
export function runUnary(call: ServerCall, arg: unknown): void {
  const handler = call.entry.handler as UnaryHandler;
  let p: Promise<unknown>;
  try {
    if (handler.into !== undefined) {
      handler.into(arg, call, call);
      return;
    }
    p = handler(arg, call);
  } catch (err) {
    call.rejected(err);
    return;
  }
  p.then((res) => call.resolved(res), (err: unknown) => call.rejected(err));
}

/**
 * Server-streaming and bidi methods: pulls the servant's messages only while
 * the caller grants credit and the socket is not congested, so a slow caller
 * slows the servant instead of growing a buffer.
 */
export async function runStreamOut(call: ServerCall, arg: unknown): Promise<void> {
  const conn = call.conn;
  const codec = call.entry.method.responseCodec;
  let it: AsyncIterator<unknown> | undefined;
  try {
    it = (call.entry.handler as ServerStreamHandler & BidiHandler)(arg as AsyncIterable<unknown>, call)[Symbol.asyncIterator]();
    for (;;) {
      while (!call.cancelled && (call.sendCredit <= 0 || conn.congested())) await call.waitWritable();
      if (call.cancelled) break;
      const r = await it.next();
      if (call.cancelled) break;
      if (r.done) {
        it = undefined;
        conn.sendReply(call, undefined);
        break;
      }
      const bytes = encodeForFrame(codec, r.value as never);
      if (bytes.length + HEADER_SIZE > conn.clientMaxFrame) {
        throw new ResourceExhaustedError(`reply message of ${bytes.length} bytes exceeds the caller's frame limit of ${conn.clientMaxFrame} bytes`);
      }
      conn.writer.message(call.id, bytes);
      call.headersSent = true;
      call.sendCredit -= bytes.length + MESSAGE_COST_OVERHEAD;
    }
  } catch (err) {
    if (!call.cancelled) call.conn.sendError(call, err);
  } finally {
    if (it !== undefined && it.return !== undefined) {
      try {
        await it.return();
      } catch {
        // the servant's generator failed while stopping; the call is over either way
      }
    }
    call.finish();
  }
}

/** Starts the right loop for the method's kind. Never throws. */
export function dispatch(call: ServerCall, request: unknown): void {
  switch (call.entry.method.kind) {
    case "unary":
      runUnary(call, request);
      return;
    case "server_stream":
      void runStreamOut(call, request);
      return;
    case "client_stream":
      runUnary(call, call.inbound);
      return;
    default:
      void runStreamOut(call, call.inbound);
  }
}
