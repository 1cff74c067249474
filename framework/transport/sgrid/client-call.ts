/**
 * One call on the client side, whatever its kind. Allocation-light by
 * design: the call object is the abort-signal listener (handleEvent) and the
 * owner of its response stream, and it has no timer of its own (its
 * connection checks deadlines with one timer for all calls), so a unary call
 * costs this object, its promise and its frames.
 *
 * Lifecycle: created by the channel, registered on a connection by start(),
 * ended exactly once by succeed() or fail() (idempotent), which unregisters it,
 * removes its abort listener and stops its request pump.
 */
import { CancelledError, DeadlineExceededError, InternalError, InvalidArgumentError, ResourceExhaustedError, type SgridError } from "../../errors";
import { Status } from "../../status";
import type { Metadata, MethodDescriptor, UnaryOutcome } from "../base";
import { encodeForFrame, type FrameWriter } from "./frame-writer";
import { InboundStream, type InboundOwner } from "./inbound-stream";
import { FrameType, HEADER_SIZE, MESSAGE_COST_OVERHEAD } from "./protocol";

/** What a call needs from the connection it runs on (ClientConnection). */
export interface CallConnection {
  readonly writer: FrameWriter;
  readonly closed: boolean;
  readonly peerMaxFrame: number;
  congested(): boolean;
  /** Unregisters a call that has ended. */
  forget(call: ClientCall): void;
  /** Wakes the call (wakeUp) when the socket drains. */
  waitDrain(call: ClientCall): void;
}

export class ClientCall implements InboundOwner {
  id = 0;
  done = false;
  /** Request bytes the server still accepts on this stream (request-streaming calls). */
  sendCredit = 0;
  resolveFn: ((value: any) => void) | undefined;
  rejectFn: ((err: Error) => void) | undefined;
  /** Where a unary call made with unaryInto reports (instead of resolveFn / rejectFn). */
  out: UnaryOutcome | undefined;
  inbound: InboundStream<unknown> | undefined;
  /** Absolute deadline, epoch ms (Infinity for none). */
  deadline = Infinity;
  signal: AbortSignal | undefined;
  /** The caller's callbacks for response headers and trailers (OutgoingCall), when it gave any. */
  onHeaders: ((headers: Metadata) => void) | undefined;
  onTrailers: ((trailers: Metadata) => void) | undefined;
  private wake: (() => void) | undefined;
  private requestIt: AsyncIterator<unknown> | undefined;

  constructor(readonly conn: CallConnection, readonly method: MethodDescriptor) {}

  /** AbortSignal listener: the caller cancelled. */
  handleEvent(): void {
    this.fail(new CancelledError(`call ${this.method.path} cancelled by the caller`), true);
  }

  /** Opens a response stream for server-streaming and bidi calls. */
  openInbound(window: number, limit: number): InboundStream<unknown> {
    const codec = this.method.responseCodec;
    this.inbound = new InboundStream<unknown>((b) => codec.decode(b), window, limit, this);
    return this.inbound;
  }

  // ---- InboundOwner -----------------------------------------------------------
  grant(increment: number): void {
    if (!this.done) this.conn.writer.window(this.id, increment);
  }

  consumerGone(): void {
    this.fail(new CancelledError(`call ${this.method.path}: the caller stopped reading`), true);
  }

  decodeFailed(_err: unknown): Error {
    const err = new InternalError(`a reply message of ${this.method.path} could not be decoded`);
    this.fail(err, true);
    return err;
  }

  // ---- events from the connection ------------------------------------------------
  /** OK status; `buf[start, end)` is the reply of unary and client-streaming calls (`buf` undefined: none came). */
  succeed(buf: Uint8Array | undefined, start: number, end: number): void {
    if (this.done) return;
    if (this.inbound !== undefined) {
      this.cleanup();
      this.inbound.end();
      return;
    }
    if (buf === undefined) {
      this.fail(new InternalError(`call ${this.method.path}: the server sent no reply message`), false);
      return;
    }
    let value: unknown;
    try {
      const codec = this.method.responseCodec;
      value = codec.decodeRange !== undefined ? codec.decodeRange(buf, start, end) : codec.decode(buf.subarray(start, end));
    } catch {
      this.fail(new InternalError(`the reply of ${this.method.path} could not be decoded`), false);
      return;
    }
    this.cleanup();
    const out = this.out;
    if (out !== undefined) out.resolved(value);
    else this.resolveFn!(value);
  }

  /**
   * Ends the call with an error. `local` (cancelled, deadline passed, bad
   * reply) tells the server to stop working on it and drops response messages
   * not yet read; otherwise (the server's error, connection lost) messages
   * already received are still read before the error. Idempotent.
   */
  fail(err: SgridError | Error, local: boolean): void {
    if (this.done) return;
    if (local && this.id !== 0 && !this.conn.closed) this.conn.writer.cancel(this.id, err instanceof DeadlineExceededError ? Status.DEADLINE_EXCEEDED : Status.CANCELLED);
    this.cleanup();
    if (this.inbound !== undefined) this.inbound.end(err, local);
    else if (this.out !== undefined) this.out.rejected(err);
    else this.rejectFn!(err);
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

  private cleanup(): void {
    this.done = true;
    this.conn.forget(this);
    if (this.signal !== undefined) this.signal.removeEventListener("abort", this);
    this.wakeUp();
    this.stopRequests();
  }

  private stopRequests(): void {
    const it = this.requestIt;
    if (it === undefined) return;
    this.requestIt = undefined;
    try {
      const r = it.return?.();
      if (r && typeof (r as Promise<unknown>).catch === "function") (r as Promise<unknown>).catch(() => undefined);
    } catch {
      // the caller's iterator failed to stop; nothing more to do
    }
  }

  /** Resolves when the call may send again (credit, socket drained) or has ended. */
  private waitWritable(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.wake = resolve;
      if (this.sendCredit > 0) this.conn.waitDrain(this);
    });
  }

  /**
   * Sends the caller's request stream, honouring the server's credit and the
   * socket's backpressure; half-closes at the end. A failing iterable cancels
   * the call (CANCELLED), as on the gRPC path.
   */
  async pumpRequests(requests: AsyncIterable<unknown>): Promise<void> {
    const codec = this.method.requestCodec;
    let it: AsyncIterator<unknown>;
    try {
      it = requests[Symbol.asyncIterator]();
    } catch (err) {
      this.fail(new CancelledError(`request stream of ${this.method.path} failed: ${(err as Error)?.message ?? String(err)}`), true);
      return;
    }
    this.requestIt = it;
    try {
      while (!this.done) {
        if (this.sendCredit <= 0 || this.conn.congested()) {
          await this.waitWritable();
          continue;
        }
        const r = await it.next();
        if (this.done) return;
        if (r.done) {
          this.requestIt = undefined;
          this.conn.writer.empty(FrameType.END, this.id);
          return;
        }
        let bytes: Uint8Array;
        try {
          bytes = encodeForFrame(codec, r.value as never);
        } catch (err) {
          this.fail(new InvalidArgumentError(`a request message of ${this.method.path} could not be encoded: ${(err as Error).message}`), true);
          return;
        }
        if (bytes.length + HEADER_SIZE > this.conn.peerMaxFrame) {
          this.fail(new ResourceExhaustedError(`request message of ${bytes.length} bytes exceeds the frame limit of ${this.conn.peerMaxFrame} bytes`), true);
          return;
        }
        this.conn.writer.message(this.id, bytes);
        this.sendCredit -= bytes.length + MESSAGE_COST_OVERHEAD;
      }
    } catch (err) {
      this.requestIt = undefined;
      this.fail(new CancelledError(`request stream of ${this.method.path} failed: ${(err as Error)?.message ?? String(err)}`), true);
    }
  }
}

/** The call's deadline passed (found by its connection's deadline sweep). */
export function onDeadline(call: ClientCall): void {
  call.fail(new DeadlineExceededError(`call ${call.method.path} exceeded its deadline`), true);
}
