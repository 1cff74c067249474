/**
 * One accepted connection on the server side.
 *
 *   handshake --valid HELLO--> open --shutdown: GOAWAY--> draining --last call done--> closed
 *       |                       |                           |
 *       +-- garbage, timeout, --+-- protocol breach, idle, --+--> closed (reason counted and logged)
 *           bad HELLO               slow reader, peer gone
 *
 * Anything the peer does wrong closes only this connection, with a reason
 * (see CloseReason) that is logged and counted by the transport; a call to an
 * unknown method, with an undecodable request or with a second request
 * message on a method that takes one is answered with an error and the
 * connection stays. Memory per connection is bounded by one frame
 * being gathered (at most maxFrameSize), request-stream messages not yet taken
 * by servants (each stream's window, and maxBufferedBytes in all), the method
 * table (MAX_METHOD_ID paths), and maxPendingOutputBytes of output for a
 * peer that does not read.
 */
import type { Socket } from "node:net";
import {
  CancelledError, DeadlineExceededError, errorToWire, InvalidArgumentError, ResourceExhaustedError, SgridError, UnavailableError, UnimplementedError,
} from "../../errors";
import { Status } from "../../status";
import { formatHostPort } from "../../endpoint";
import type { Metadata } from "../base";
import { CallTable } from "./call-table";
import { BodyCursor, FrameReader, ProtocolViolation, view, type FrameSink } from "./frame-reader";
import { FrameWriter } from "./frame-writer";
import { InboundStream, Pushed, type InboundBudget } from "./inbound-stream";
import type { ResolvedServerOptions } from "./options";
import {
  Flag, FrameType, PING_ACK, HELLO_BODY_SIZE, MAGIC, MAX_METHOD_ID, MAX_PATH_LENGTH, MIN_WINDOW, VERSION, type CloseReason,
} from "./protocol";
import { dispatch, ServerCall, type HandlerEntry } from "./server-call";

/** What a connection needs from its transport. */
export interface ConnectionHost {
  readonly options: ResolvedServerOptions;
  lookup(path: string): HandlerEntry | undefined;
  callStarted(): void;
  callFinished(): void;
  connectionClosed(conn: ServerConnection, reason: CloseReason, detail: string): void;
  /** Logs a servant failure that the caller only sees as INTERNAL. */
  logUnexpected(err: unknown, method: string): void;
}

interface MethodSlot {
  readonly path: string;
  readonly entry: HandlerEntry | undefined;
}

const EMPTY_METADATA: Readonly<Metadata> = Object.freeze({});
/** Largest frame accepted before the handshake: a HELLO is 23 bytes, leave room for later versions. */
const HANDSHAKE_FRAME_LIMIT = 256;
/** Longest error data (JSON characters) sent; longer data is dropped, code and message still go. */
const MAX_ERROR_DATA = 16 * 1024;
/** Socket output above which streaming replies wait for drain. */
const WRITE_HIGH_WATER = 1024 * 1024;

export class ServerConnection implements FrameSink {
  readonly since = Date.now();
  readonly peer: string;
  readonly writer: FrameWriter;
  private readonly reader: FrameReader;
  private readonly cursor = new BodyCursor();
  private readonly calls = new CallTable<ServerCall>();
  private methods: Array<MethodSlot | undefined> = [];
  private drainWaiters: ServerCall[] = [];
  state: "handshake" | "open" | "draining" | "closed" = "handshake";
  lastReadAt = Date.now();
  clientMaxFrame = MIN_WINDOW;
  clientWindow = MIN_WINDOW;
  private lastId = 0;
  /** Request-stream bytes queued for servants across this connection's calls. */
  private readonly budget: InboundBudget;
  private ending = false;

  constructor(private readonly host: ConnectionHost, readonly socket: Socket) {
    const addr = socket.remoteAddress ?? "unknown";
    this.peer = formatHostPort(addr, socket.remotePort ?? 0);
    socket.setNoDelay(true);
    this.writer = new FrameWriter(socket);
    this.writer.onFlush = () => {
      if (this.socket.writableLength > this.host.options.maxPendingOutputBytes) {
        this.close("slow_reader", `${this.socket.writableLength} bytes of output are waiting for a peer that does not read (limit ${this.host.options.maxPendingOutputBytes})`);
      }
    };
    this.reader = new FrameReader(this, HANDSHAKE_FRAME_LIMIT);
    this.budget = { used: 0, limit: host.options.maxBufferedBytes };
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("drain", () => this.onDrain());
    socket.on("end", () => {
      if (this.reader.hasPartial()) this.close("truncated_frame", "the peer closed its side in the middle of a frame");
    });
    socket.on("error", (err: NodeJS.ErrnoException) => {
      // A peer that vanishes (killed, network reset) is routine; other socket errors are worth a warning.
      if (err.code === "ECONNRESET" || err.code === "EPIPE") this.close("peer_closed", `the peer went away (${err.code})`);
      else this.close("socket_error", err.code ?? err.message);
    });
    socket.on("close", () => {
      if (this.ending) this.close("shutdown", "closed after GOAWAY");
      else this.close("peer_closed", "the peer closed the connection");
    });
  }

  /** Calls in flight on this connection. */
  size(): number {
    return this.calls.size;
  }

  hasPartialFrame(): boolean {
    return this.reader.hasPartial();
  }

  partialSince(): number {
    return this.reader.partialSince;
  }

  congested(): boolean {
    return this.writer.pendingBytes() > WRITE_HIGH_WATER;
  }

  waitDrain(call: ServerCall): void {
    this.drainWaiters.push(call);
  }

  private onDrain(): void {
    const waiters = this.drainWaiters;
    if (waiters.length === 0) return;
    this.drainWaiters = [];
    for (const c of waiters) c.wakeUp();
  }

  private onData(chunk: Buffer): void {
    this.lastReadAt = Date.now();
    if (this.state === "closed") return;
    try {
      this.reader.push(chunk);
    } catch (err) {
      if (err instanceof ProtocolViolation) this.close(this.state === "handshake" ? "bad_handshake" : err.reason, err.message);
      else this.close("protocol_error", `internal error while reading: ${(err as Error).message}`);
    }
  }

  onFrame(type: number, flags: number, id: number, buf: Buffer, start: number, end: number): void {
    if (this.state === "handshake") {
      this.onHello(type, buf, start, end);
      return;
    }
    switch (type) {
      case FrameType.REQUEST:
        this.onRequest(flags, id, buf, start, end);
        return;
      case FrameType.MESSAGE: {
        const call = this.calls.get(id);
        if (call === undefined || call.cancelled) return; // finished or cancelled: late messages are dropped
        if (call.inbound === undefined) {
          this.secondRequest(call);
          return;
        }
        const pushed = call.inbound.push(view(buf, start, end));
        if (pushed === Pushed.OVER_WINDOW) throw new ProtocolViolation("protocol_error", `the peer overran the window of call ${id}`);
        if (pushed === Pushed.OVER_BUDGET) {
          throw new ProtocolViolation("inbound_limit", `request messages not yet taken by servants exceed ${this.host.options.maxBufferedBytes} bytes on this connection`);
        }
        return;
      }
      case FrameType.END: {
        const call = this.calls.get(id);
        if (call?.inbound !== undefined) call.inbound.end();
        return;
      }
      case FrameType.CANCEL: {
        const call = this.calls.get(id);
        if (call !== undefined) {
          const deadline = end > start && buf[start] === Status.DEADLINE_EXCEEDED;
          call.cancel(deadline ? new DeadlineExceededError(`call ${call.method} passed its deadline`) : new CancelledError(`call ${call.method} cancelled by the caller`));
        }
        return;
      }
      case FrameType.WINDOW: {
        const call = this.calls.get(id);
        const inc = this.cursor.reset(buf, start, end).u32();
        if (call !== undefined) call.addCredit(inc);
        return;
      }
      case FrameType.PING:
        if (end - start < 8) throw new ProtocolViolation("protocol_error", "short PING");
        if ((flags & PING_ACK) === 0) this.writer.ping(true, buf.subarray(start, start + 8));
        return;
      default:
        throw new ProtocolViolation("protocol_error", `frame type ${type} is not valid from a client`);
    }
  }

  private onHello(type: number, buf: Buffer, start: number, end: number): void {
    if (type !== FrameType.HELLO || end - start < HELLO_BODY_SIZE || buf.compare(MAGIC, 0, 4, start, start + 4) !== 0) {
      throw new ProtocolViolation("bad_handshake", "the first frame is not a sgrid HELLO");
    }
    if (buf[start + 4] !== VERSION) throw new ProtocolViolation("bad_handshake", `unsupported protocol version ${buf[start + 4]}`);
    const maxFrame = buf.readUInt32BE(start + 5);
    const window = buf.readUInt32BE(start + 9);
    if (window < MIN_WINDOW || maxFrame < MIN_WINDOW) throw new ProtocolViolation("bad_handshake", `window ${window} or frame limit ${maxFrame} below the minimum`);
    this.clientMaxFrame = maxFrame;
    this.clientWindow = window;
    this.state = "open";
    this.reader.maxFrameSize = this.host.options.maxFrameSize;
    this.writer.hello(this.host.options.maxFrameSize, this.host.options.initialWindow);
  }

  private onRequest(flags: number, id: number, buf: Buffer, start: number, end: number): void {
    const c = this.cursor.reset(buf, start, end);
    const methodId = c.u16();
    let slot: MethodSlot | undefined;
    if ((flags & Flag.METHOD_DEF) !== 0) {
      const len = c.u16();
      if (len > MAX_PATH_LENGTH) throw new ProtocolViolation("protocol_error", `method path of ${len} bytes is too long`);
      const path = c.str(len);
      if (methodId > MAX_METHOD_ID) throw new ProtocolViolation("protocol_error", `method id ${methodId} is above ${MAX_METHOD_ID}`);
      slot = { path, entry: this.host.lookup(path) };
      if (methodId !== 0) this.methods[methodId] = slot;
    } else {
      slot = this.methods[methodId];
      if (slot === undefined) throw new ProtocolViolation("protocol_error", `REQUEST names method id ${methodId}, which was never defined`);
    }
    const timeoutMs = c.u32();
    const metadata = (flags & Flag.METADATA) !== 0 ? c.metadata() : EMPTY_METADATA;
    if (this.calls.get(id) !== undefined) throw new ProtocolViolation("protocol_error", `stream id ${id} is already in use`);
    if (this.state !== "open") {
      this.writer.error(id, Status.UNAVAILABLE, "the server is shutting down", "UNAVAILABLE", undefined);
      return;
    }
    const entry = slot.entry;
    if (entry === undefined) {
      this.writer.error(id, Status.UNIMPLEMENTED, `method ${slot.path} is not implemented by this server`, "UNIMPLEMENTED", undefined);
      return;
    }
    if (this.calls.size >= this.host.options.maxConcurrentCalls) {
      this.writeError(id, new ResourceExhaustedError(`more than ${this.host.options.maxConcurrentCalls} calls in flight on one connection`));
      return;
    }
    const kind = entry.method.kind;
    const single = kind === "unary" || kind === "server_stream";
    if (single !== ((flags & Flag.END) !== 0)) {
      this.writeError(id, new InvalidArgumentError(`call of ${slot.path} does not match its kind (${kind})`));
      return;
    }
    let request: unknown;
    if (single) {
      try {
        const codec = entry.method.requestCodec;
        request = codec.decodeRange !== undefined ? codec.decodeRange(buf, c.pos, end) : codec.decode(c.rest());
      } catch {
        this.writeError(id, new InvalidArgumentError(`the request of ${slot.path} could not be decoded`));
        return;
      }
    }
    if (id > this.lastId) this.lastId = id;
    // The deadline runs from the read that brought the frame (frames are handled within that read's onData):
    // one clock read per chunk, not one per call.
    const call = new ServerCall(this, id, entry, slot.path, metadata, timeoutMs > 0 ? this.lastReadAt + timeoutMs : undefined);
    if (!single) {
      const opts = this.host.options;
      call.inbound = new InboundStream<unknown>((b) => entry.method.requestCodec.decode(b), opts.initialWindow, opts.initialWindow + opts.maxFrameSize, call, this.budget);
    }
    this.calls.insert(call);
    this.host.callStarted();
    dispatch(call, request);
  }

  /**
   * A MESSAGE on a unary or server-streaming call, whose one request came in its REQUEST. gRPC calls this a request
   * cardinality violation and fails the call at once with UNIMPLEMENTED (grpc/grpc doc/statuscodes.md; grpc-js answers
   * "Received a second request message"); so does this transport, without closing the connection: the peer's other
   * calls on it are not at fault. The servant's signal fires; later frames of the call are dropped (it is cancelled).
   */
  private secondRequest(call: ServerCall): void {
    const err = new UnimplementedError(`${call.method} received a second request message (a ${call.entry.method.kind} method takes one)`);
    call.cancel(err);
    this.writeError(call.id, err, call.trailers);
  }

  // ---- replies ------------------------------------------------------------------------
  /** An OK reply: `res` is the message of unary / client-streaming calls, undefined for streams. */
  sendReply(call: ServerCall, res: unknown): void {
    if (this.state === "closed") return;
    const kind = call.entry.method.kind;
    if (kind === "server_stream" || kind === "bidi") {
      this.writer.ok(call.id, undefined, call.trailers);
      return;
    }
    if (res == null) {
      this.sendError(call, new InvalidArgumentError(`method ${call.method} returned no response`));
      return;
    }
    // Encoded straight into the RESPONSE frame (FrameWriter.okMessage), which is written only when it fits.
    let sent: boolean;
    try {
      sent = this.writer.okMessage(call.id, call.entry.method.responseCodec, res as never, call.trailers, this.clientMaxFrame);
    } catch (err) {
      this.sendError(call, err);
      return;
    }
    if (!sent) {
      this.sendError(call, new ResourceExhaustedError(`reply of ${this.writer.refusedBytes} bytes exceeds the caller's frame limit of ${this.clientMaxFrame} bytes`));
      return;
    }
    // The only call in flight (a caller making one call at a time): nothing else will join this write, so it goes
    // now instead of after the turn's other callbacks (see FrameWriter: ~3 µs of a ~100 µs round trip here).
    if (this.calls.size === 1) this.writer.flush();
  }

  /** The one server-side error boundary of this transport: a thrown value -> status, code, message, data. */
  sendError(call: ServerCall, err: unknown): void {
    if (this.state === "closed") return;
    // Past its deadline, the call ends DEADLINE_EXCEEDED whatever the servant threw on seeing ctx.signal (as a gRPC
    // server answers): its caller, whose own deadline came first, must not see a CANCELLED that won the race.
    if (call.endedBy instanceof DeadlineExceededError) err = call.endedBy;
    else if (!(err instanceof SgridError)) this.host.logUnexpected(err, call.method);
    this.writeError(call.id, err, call.trailers);
  }

  private writeError(id: number, err: unknown, trailers?: Metadata): void {
    const wire = errorToWire(err);
    let data: string | undefined;
    if (wire.data !== undefined) {
      try { data = JSON.stringify(wire.data); } catch { data = undefined; }
      // Error data is meant to be small; an oversized one would break the caller's frame limit.
      if (data !== undefined && data.length > MAX_ERROR_DATA) data = undefined;
    }
    this.writer.error(id, wire.status, wire.message, wire.code, data, trailers);
  }

  callFinished(call: ServerCall): void {
    this.calls.delete(call);
    this.host.callFinished();
    if (this.state === "draining" && this.calls.size === 0) this.end();
  }

  // ---- lifecycle ------------------------------------------------------------------------
  /** Shutdown, step 1: no new calls here; close once the calls in flight are done. */
  goaway(reason: string): void {
    if (this.state === "handshake") {
      this.close("shutdown", reason);
      return;
    }
    if (this.state !== "open") return;
    this.state = "draining";
    this.writer.goaway(this.lastId, reason);
    if (this.calls.size === 0) this.end();
  }

  /** Closes after flushing what is queued. */
  end(): void {
    if (this.state === "closed" || this.ending) return;
    this.ending = true;
    this.writer.flush();
    this.socket.end();
    const timer = setTimeout(() => this.close("shutdown", "the peer did not close after the server ended the connection"), 2000);
    timer.unref();
  }

  /** Closes now, with a reason; calls in flight see ctx.signal fire. Idempotent. */
  close(reason: CloseReason, detail: string): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.socket.destroy();
    const err = new UnavailableError(`connection from ${this.peer} closed: ${detail}`);
    for (const call of this.calls.values()) call.cancel(err);
    this.onDrain();
    this.host.connectionClosed(this, reason, detail);
  }
}
