/**
 * One TCP (or TLS) connection from a client channel to a server, carrying
 * any number of calls at once.
 *
 *   connecting --HELLO received--> established --GOAWAY--> draining
 *        |                              |                     |
 *        +--------- socket closed ------+---------------------+--> closed
 *
 * Frames may be written while connecting (the socket queues them), so the
 * first calls do not wait for the handshake. On close every call still
 * registered fails with UNAVAILABLE: "could not connect" when the server
 * never answered the handshake (the call was never delivered), "connection
 * lost" otherwise. Liveness: a PING every `pingIntervalMs`; when a whole
 * interval passes after a ping with nothing received, the connection is dead.
 *
 * Deadlines: one timer per connection, armed for the earliest deadline it
 * knows of. When it fires it fails the calls that are past their deadline and
 * re-arms for the earliest remaining one. Calls that end early need no timer
 * work at all; with uniform timeouts the timer fires about once per timeout.
 */
import * as net from "node:net";
import * as tls from "node:tls";
import { endpointKey, type Endpoint } from "../../endpoint";
import { errorFromWire, UnavailableError } from "../../errors";
import type { MessageCodec, Metadata, MethodDescriptor } from "../base";
import { deliverMetadata } from "../metadata";
import { ClientCall, onDeadline } from "./client-call";
import { CallTable } from "./call-table";
import { BodyCursor, FrameReader, ProtocolViolation, view, type FrameSink } from "./frame-reader";
import { FrameWriter } from "./frame-writer";
import { Pushed } from "./inbound-stream";
import type { ResolvedClientOptions } from "./options";
import { envRootCerts } from "../tls-ca";
import { Flag, FrameType, PING_ACK, HELLO_BODY_SIZE, MAGIC, MAX_METHOD_ID, MIN_WINDOW, VERSION } from "./protocol";

/** What a connection tells its channel. */
export interface ConnectionOwner {
  onEstablished(conn: ClientConnection): void;
  /** The connection is gone; `established` is false when it never completed the handshake. */
  onClosed(conn: ClientConnection, established: boolean, reason: string): void;
  /** The server asked for no new calls on this connection. */
  onGoaway(conn: ClientConnection): void;
}

const PING_DATA = Buffer.alloc(8);

export class ClientConnection implements FrameSink {
  readonly socket: net.Socket;
  readonly writer: FrameWriter;
  private readonly reader: FrameReader;
  private readonly calls = new CallTable<ClientCall>();
  private readonly methodIds = new Map<MethodDescriptor, number>();
  private readonly cursor = new BodyCursor();
  private readonly key: string;
  private nextMethodId = 1;
  private drainWaiters: ClientCall[] = [];
  private connectTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  /** When the deadline timer fires (epoch ms), Infinity when unarmed. */
  private armedFor = Infinity;
  private readonly sweepFn = (): void => this.sweepDeadlines();
  private received = false;
  private pingOutstanding = false;
  private failure = "";
  established = false;
  draining = false;
  closed = false;
  /** The server's frame limit (ours until its HELLO says otherwise). */
  peerMaxFrame: number;
  /** Credit the server grants per request stream (the protocol minimum until its HELLO). */
  peerWindow = MIN_WINDOW;

  constructor(private readonly owner: ConnectionOwner, readonly endpoint: Endpoint, private readonly options: ResolvedClientOptions) {
    this.key = endpointKey(endpoint);
    this.peerMaxFrame = options.maxFrameSize;
    if (endpoint.tls) {
      const t = options.tls ?? {};
      this.socket = tls.connect({
        host: endpoint.host,
        port: endpoint.port,
        ca: t.ca ?? envRootCerts(),
        cert: t.cert,
        key: t.key,
        rejectUnauthorized: t.rejectUnauthorized ?? true,
        servername: t.servername ?? (net.isIP(endpoint.host) ? undefined : endpoint.host),
      });
      this.socket.once("secureConnect", () => this.onConnect());
    } else {
      this.socket = net.connect({ host: endpoint.host, port: endpoint.port });
      this.socket.once("connect", () => this.onConnect());
    }
    this.socket.setNoDelay(true);
    // Like grpc-js' HTTP/2 sessions: the connection keeps the process alive only while a call is in flight,
    // so a script that has made its calls exits without having to close its proxies.
    this.socket.unref();
    this.writer = new FrameWriter(this.socket);
    this.reader = new FrameReader(this, options.maxFrameSize);
    this.writer.hello(options.maxFrameSize, options.initialWindow);
    this.connectTimer = setTimeout(() => this.destroy(`connect timed out after ${options.connectTimeoutMs} ms`), options.connectTimeoutMs);
    this.connectTimer.unref();
    this.socket.on("data", (chunk: Buffer) => this.onData(chunk));
    this.socket.on("drain", () => this.onDrain());
    this.socket.on("error", (err: NodeJS.ErrnoException) => { this.failure ||= err.code ?? err.message; });
    this.socket.on("end", () => { this.failure ||= "closed by the server"; });
    this.socket.on("close", () => this.onClose());
  }

  /** Calls in flight on this connection. */
  size(): number {
    return this.calls.size;
  }

  /** True when the socket holds more unsent output than the high-water mark. */
  congested(): boolean {
    return this.writer.pendingBytes() > this.options.writeHighWaterBytes;
  }

  /**
   * Registers a call and sends its REQUEST frame (`timeoutMs` on the wire,
   * `deadline` the same instant as epoch ms). Returns false (nothing
   * sent, nothing registered) when the frame would exceed the server's limit.
   * With `codec`, the request is `message`, encoded into the frame (an encode
   * error is thrown, nothing sent or registered); else `payload`'s bytes.
   */
  start(call: ClientCall, payload: Uint8Array | undefined, metadata: Metadata, timeoutMs: number, deadline: number, signal: AbortSignal | undefined, codec?: MessageCodec<unknown>, message?: unknown): boolean {
    // 0 on the wire means "no deadline"; timers cannot exceed 2^31-1 ms (~24.8 days), longer is as good as none.
    const finite = timeoutMs <= 0x7fffffff;
    const method = call.method;
    let methodId = this.methodIds.get(method);
    let path: string | undefined;
    if (methodId === undefined) {
      path = method.path;
      methodId = 0;
      if (this.nextMethodId <= MAX_METHOD_ID) {
        methodId = this.nextMethodId++;
        this.methodIds.set(method, methodId);
      }
    } else if (methodId === 0) {
      path = method.path;
    }
    const id = this.calls.add(call);
    if (this.calls.size === 1) this.socket.ref();
    let sent: boolean;
    try {
      sent = codec === undefined
        ? this.writer.request(id, methodId, path, finite ? timeoutMs : 0, metadata, payload, this.peerMaxFrame)
        : this.writer.requestMessage(id, methodId, path, finite ? timeoutMs : 0, metadata, codec, message as never, this.peerMaxFrame);
    } catch (err) {
      this.unstart(call, method, path, methodId);
      throw err;
    }
    if (!sent) {
      this.unstart(call, method, path, methodId);
      return false;
    }
    call.sendCredit = this.peerWindow;
    // The connection's only call: the turn has no later frame to batch it with, but the caller's code running in
    // this tick may still make more calls (see FrameWriter), so it goes at the end of the tick, not at once.
    if (this.calls.size === 1) this.writer.flushSoon();
    if (finite) {
      call.deadline = deadline;
      if (deadline < this.armedFor) this.armDeadline(deadline);
    }
    if (signal !== undefined) {
      call.signal = signal;
      signal.addEventListener("abort", call);
    }
    return true;
  }

  /** Undoes start()'s registration of a call whose REQUEST was not written. */
  private unstart(call: ClientCall, method: MethodDescriptor, path: string | undefined, methodId: number): void {
    this.calls.delete(call);
    if (this.calls.size === 0) this.socket.unref();
    call.id = 0;
    if (path !== undefined && methodId !== 0) {
      this.methodIds.delete(method);
      this.nextMethodId--;
    }
  }

  private armDeadline(at: number): void {
    if (this.deadlineTimer !== undefined) clearTimeout(this.deadlineTimer);
    this.armedFor = at;
    this.deadlineTimer = setTimeout(this.sweepFn, Math.max(0, at - Date.now()));
    this.deadlineTimer.unref(); // the socket keeps the process alive while calls are in flight
  }

  /** Fails the calls past their deadline; re-arms for the earliest remaining one. */
  private sweepDeadlines(): void {
    this.deadlineTimer = undefined;
    this.armedFor = Infinity;
    const now = Date.now();
    let next = Infinity;
    let expired: ClientCall[] | undefined;
    for (const call of this.calls.values()) {
      const d = call.deadline;
      if (d <= now) (expired ??= []).push(call);
      else if (d < next) next = d;
    }
    if (expired !== undefined) for (const call of expired) onDeadline(call);
    if (next !== Infinity && !this.closed) this.armDeadline(next);
  }

  /** Called by a call as it ends. */
  forget(call: ClientCall): void {
    this.calls.delete(call);
    if (this.calls.size === 0) this.socket.unref();
    if (this.draining && this.calls.size === 0 && !this.closed) this.end();
  }

  /** Parks a call until the socket drains. */
  waitDrain(call: ClientCall): void {
    this.drainWaiters.push(call);
  }

  private onDrain(): void {
    const waiters = this.drainWaiters;
    if (waiters.length === 0) return;
    this.drainWaiters = [];
    for (const c of waiters) c.wakeUp();
  }

  private onConnect(): void {
    if (this.connectTimer !== undefined) clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
  }

  private onData(chunk: Buffer): void {
    this.received = true;
    try {
      this.reader.push(chunk);
    } catch (err) {
      if (err instanceof ProtocolViolation) this.destroy(`protocol error from the server: ${err.message}`);
      else this.destroy(`internal error while reading: ${(err as Error).message}`);
    }
  }

  onFrame(type: number, flags: number, id: number, buf: Buffer, start: number, end: number): void {
    if (!this.established && type !== FrameType.HELLO) throw new ProtocolViolation("bad_handshake", `expected HELLO, got frame type ${type}`);
    switch (type) {
      case FrameType.RESPONSE: {
        const call = this.calls.get(id);
        if (call === undefined) return;
        if (end - start < 1) throw new ProtocolViolation("protocol_error", "empty RESPONSE");
        const status = buf[start]!;
        let at = start + 1;
        if ((flags & Flag.TRAILERS) !== 0) {
          const t = this.cursor.reset(buf, at, end);
          const trailers = t.metadata();
          at = t.pos;
          if (call.onTrailers !== undefined) deliverMetadata(call.onTrailers, trailers);
        } else if (call.onTrailers !== undefined) {
          deliverMetadata(call.onTrailers, {});
        }
        if (status === 0) {
          if ((flags & Flag.PAYLOAD) !== 0) call.succeed(buf, at, end);
          else call.succeed(undefined, 0, 0);
          return;
        }
        const c = this.cursor.reset(buf, at, end);
        const message = c.str(c.u16());
        const code = c.str(c.u8());
        const dataLen = c.u32();
        let data: Record<string, unknown> | undefined;
        if (dataLen > 0) {
          try { data = JSON.parse(c.str(dataLen)) as Record<string, unknown>; } catch { data = undefined; }
        }
        call.fail(errorFromWire(status, message, code === "" ? undefined : code, data), false);
        return;
      }
      case FrameType.MESSAGE: {
        const call = this.calls.get(id);
        if (call === undefined) return;
        if (call.inbound === undefined) throw new ProtocolViolation("protocol_error", `MESSAGE on call ${id}, which has no response stream`);
        if (call.inbound.push(view(buf, start, end)) !== Pushed.OK) throw new ProtocolViolation("protocol_error", `server overran the window of call ${id}`);
        return;
      }
      case FrameType.WINDOW: {
        const call = this.calls.get(id);
        if (call !== undefined) call.addCredit(this.cursor.reset(buf, start, end).u32());
        return;
      }
      case FrameType.HEADERS: {
        const call = this.calls.get(id);
        if (call === undefined) return;
        const headers = this.cursor.reset(buf, start, end).metadata();
        if (call.onHeaders !== undefined) deliverMetadata(call.onHeaders, headers);
        return;
      }
      case FrameType.PING:
        if (end - start < 8) throw new ProtocolViolation("protocol_error", "short PING");
        if ((flags & PING_ACK) !== 0) this.pingOutstanding = false;
        else this.writer.ping(true, buf.subarray(start, start + 8));
        return;
      case FrameType.GOAWAY:
        this.draining = true;
        this.owner.onGoaway(this);
        if (this.calls.size === 0) this.end();
        return;
      case FrameType.HELLO:
        this.onHello(buf, start, end);
        return;
      default:
        throw new ProtocolViolation("protocol_error", `frame type ${type} is not valid from a server`);
    }
  }

  private onHello(buf: Buffer, start: number, end: number): void {
    if (this.established) throw new ProtocolViolation("protocol_error", "second HELLO");
    if (end - start < HELLO_BODY_SIZE || buf.compare(MAGIC, 0, 4, start, start + 4) !== 0 || buf[start + 4] !== VERSION) {
      throw new ProtocolViolation("bad_handshake", "the server is not speaking sgrid protocol version 1");
    }
    this.peerMaxFrame = buf.readUInt32BE(start + 5);
    const window = buf.readUInt32BE(start + 9);
    if (window < MIN_WINDOW) throw new ProtocolViolation("bad_handshake", `server window ${window} is below the minimum`);
    const extra = window - this.peerWindow;
    this.peerWindow = window;
    if (extra > 0) for (const call of this.calls.values()) call.addCredit(extra);
    this.established = true;
    this.pingTimer = setInterval(() => this.onPingTick(), this.options.pingIntervalMs);
    this.pingTimer.unref();
    this.owner.onEstablished(this);
  }

  private onPingTick(): void {
    if (this.pingOutstanding && !this.received) {
      this.destroy(`no answer to a ping within ${this.options.pingIntervalMs} ms`);
      return;
    }
    this.received = false;
    this.pingOutstanding = true;
    this.writer.ping(false, PING_DATA);
  }

  /** Closes after flushing what is queued (used when draining is over). */
  private end(): void {
    this.writer.flush();
    this.socket.end();
  }

  /** Closes now; calls in flight fail with UNAVAILABLE naming `reason`. Idempotent. */
  destroy(reason: string): void {
    this.failure ||= reason;
    this.socket.destroy();
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.connectTimer !== undefined) clearTimeout(this.connectTimer);
    if (this.pingTimer !== undefined) clearInterval(this.pingTimer);
    if (this.deadlineTimer !== undefined) clearTimeout(this.deadlineTimer);
    const reason = this.failure || "connection closed";
    const err = this.established
      ? new UnavailableError(`connection to ${this.key} lost: ${reason}`, { endpoint: this.key })
      : new UnavailableError(`cannot connect to ${this.key}: ${reason}`, { endpoint: this.key });
    for (const call of this.calls.values()) call.fail(err, false);
    this.calls.clear();
    this.onDrain();
    this.owner.onClosed(this, this.established, reason);
  }
}
