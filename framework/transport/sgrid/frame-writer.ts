/**
 * Encodes frames straight into a per-connection output slab and writes what
 * accumulated once per turn of the event loop (setImmediate: after every I/O
 * callback of the turn has run), so a burst of calls or replies issued in one
 * turn costs one write syscall. Not process.nextTick: that runs after each
 * callback, and a gateway forwarding the calls of one HTTP/2 read (one
 * callback per stream) paid one syscall per call, a quarter of its CPU.
 *
 * The slab is append-only: bytes before `pos` are never touched again once
 * handed to the socket, so a flushed region can stay referenced by the socket
 * while later frames are encoded after it, without copies. Payloads larger
 * than INLINE_PAYLOAD_MAX go out as their own buffers (no copy), in order,
 * through cork/uncork.
 *
 * A connection with a single call in flight flushes its REQUEST or RESPONSE
 * sooner instead: a caller making one call at a time has nothing to batch,
 * and the turn's remaining callbacks before setImmediate were ~3 µs (p50; p90
 * 11 µs) of a ~100 µs round trip on the 2-core machine. The server's reply
 * goes at once (flush(): the last call of a batch is the one left in flight);
 * the client's request goes at the end of the current tick (flushSoon():
 * process.nextTick), as the first call a caller makes after its replies came
 * in is alone only until the caller's other continuations, queued behind it
 * in the same tick, make theirs: written at once, it went in a write of its
 * own, and 64 callers paid two writes per round instead of one.
 *
 * Never throws on a destroyed socket: frames written after the socket is gone
 * are dropped (the connection's close path fails the calls).
 */
import type { Socket } from "node:net";
import { Flag, FrameType, PING_ACK, HEADER_SIZE, HELLO_BODY_SIZE, LENGTH_OVERHEAD, MAGIC, VERSION } from "./protocol";
import type { DeepPartial, MessageCodec, Metadata } from "../base";

const SLAB_SIZE = 64 * 1024;

/** Bytes of a metadata block (u16 count, then u16 key length, key, u32 value length, value); 0 when empty. */
export function metadataSize(md: Metadata): number {
  let n = 0;
  let count = 0;
  for (const k in md) {
    const v = md[k]!;
    count++;
    n += 6 + Buffer.byteLength(k) + (typeof v === "string" ? Buffer.byteLength(v) : v.length);
  }
  return count === 0 ? 0 : n + 2;
}

/** Writes a metadata block at `off` (room reserved with metadataSize); returns the offset after it. */
function writeMetadata(s: Buffer, off: number, md: Metadata): number {
  const countAt = off;
  let count = 0;
  off += 2;
  for (const k in md) {
    const v = md[k]!;
    count++;
    const kl = s.write(k, off + 2, "utf8");
    s.writeUInt16BE(kl, off);
    off += 2 + kl;
    let vl: number;
    if (typeof v === "string") vl = s.write(v, off + 4, "utf8");
    else {
      s.set(v, off + 4);
      vl = v.length;
    }
    s.writeUInt32BE(vl, off);
    off += 4 + vl;
  }
  s.writeUInt16BE(count, countAt);
  return off;
}
/** Largest payload copied into the slab; larger ones are queued as their own buffers. */
export const INLINE_PAYLOAD_MAX = 16 * 1024;

/**
 * A message's bytes for a frame written right away: the codec's own buffer
 * when the writer will copy it into the slab (no allocation), a copy when it
 * is large enough to be queued by reference.
 */
export function encodeForFrame<T>(codec: MessageCodec<T>, message: DeepPartial<T>): Uint8Array {
  if (codec.encodeTransient === undefined) return codec.encode(message);
  const bytes = codec.encodeTransient(message);
  return bytes.length <= INLINE_PAYLOAD_MAX ? bytes : Buffer.from(bytes);
}

export class FrameWriter {
  private slab: Buffer = Buffer.allocUnsafeSlow(SLAB_SIZE);
  /** First byte not yet handed to the socket. */
  private start = 0;
  /** Next free byte. */
  private pos = 0;
  /** Pieces queued before slab[start, pos), in order (out-of-line payloads and earlier slabs). */
  private parts: Buffer[] = [];
  private partsBytes = 0;
  private scheduled = false;
  private readonly flushFn = (): void => this.flush();
  private tickScheduled = false;
  private readonly tickFlushFn = (): void => {
    this.tickScheduled = false;
    this.flush();
  };
  /** The body size (message, with its path, metadata or trailers) of the frame the last refused request() / requestMessage() / okMessage() would have been. */
  refusedBytes = 0;
  /** Called after each flush (the server checks the peer's pending output here). */
  onFlush: (() => void) | undefined;

  constructor(private readonly socket: Socket) {}

  /** Bytes accepted but not yet written to the kernel: ours plus the socket's queue. */
  pendingBytes(): number {
    return this.socket.writableLength + (this.pos - this.start) + this.partsBytes;
  }

  private reserve(n: number): number {
    if (this.pos + n > this.slab.length) {
      if (this.pos > this.start) this.pushPart(this.slab.subarray(this.start, this.pos));
      this.slab = Buffer.allocUnsafeSlow(Math.max(SLAB_SIZE, n));
      this.start = 0;
      this.pos = 0;
    }
    const off = this.pos;
    this.pos += n;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushFn);
    }
    return off;
  }

  private pushPart(b: Buffer): void {
    this.parts.push(b);
    this.partsBytes += b.length;
  }

  private header(off: number, bodyLength: number, type: FrameType, flags: number, id: number): void {
    const s = this.slab;
    s.writeUInt32BE(LENGTH_OVERHEAD + bodyLength, off);
    s[off + 4] = type;
    s[off + 5] = flags;
    s.writeUInt32BE(id, off + 6);
  }

  /** Appends a payload after the header just reserved: copied when small, queued as its own buffer when large. */
  private payload(p: Uint8Array): void {
    if (p.length <= INLINE_PAYLOAD_MAX) {
      const off = this.reserve(p.length);
      this.slab.set(p, off);
      return;
    }
    if (this.pos > this.start) this.pushPart(this.slab.subarray(this.start, this.pos));
    this.start = this.pos;
    this.pushPart(Buffer.isBuffer(p) ? p : Buffer.from(p.buffer, p.byteOffset, p.byteLength));
  }

  /**
   * Ends the frame begun at `frameAt` (its header and `fixed` body bytes reserved and written, but for the header)
   * with `message`: encoded straight into the slab where the codec can (encodeAt), else its bytes copied or queued
   * as payload() does; then writes the header. Returns false and writes nothing (the frame's reserved bytes given
   * back) when the frame would pass `maxFrameSize`, with refusedBytes its body's size; an encode that throws
   * also gives the frame back.
   */
  private endWithMessage<T>(codec: MessageCodec<T>, message: DeepPartial<T>, frameAt: number, fixed: number, maxFrameSize: number, type: FrameType, flags: number, id: number): boolean {
    const limit = maxFrameSize - HEADER_SIZE - fixed;
    let bytes: Uint8Array;
    try {
      if (codec.encodeAt !== undefined) {
        const at = this.pos;
        const got = codec.encodeAt(message, this.slab, at);
        if (typeof got === "number") {
          const n = got - at;
          if (n > limit) return this.refuse(frameAt, fixed + n);
          this.pos = got;
          this.header(frameAt, fixed + n, type, flags, id);
          return true;
        }
        bytes = got.length <= INLINE_PAYLOAD_MAX ? got : Buffer.from(got);
      } else bytes = encodeForFrame(codec, message);
    } catch (err) {
      this.pos = frameAt;
      throw err;
    }
    if (bytes.length > limit) return this.refuse(frameAt, fixed + bytes.length);
    // Before payload(): it may move on to a new slab.
    this.header(frameAt, fixed + bytes.length, type, flags, id);
    this.payload(bytes);
    return true;
  }

  private refuse(frameAt: number, n: number): false {
    this.pos = frameAt;
    this.refusedBytes = n;
    return false;
  }

  hello(maxFrameSize: number, initialWindow: number): void {
    const off = this.reserve(HEADER_SIZE + HELLO_BODY_SIZE);
    this.header(off, HELLO_BODY_SIZE, FrameType.HELLO, 0, 0);
    const s = this.slab;
    MAGIC.copy(s, off + HEADER_SIZE);
    s[off + HEADER_SIZE + 4] = VERSION;
    s.writeUInt32BE(maxFrameSize, off + HEADER_SIZE + 5);
    s.writeUInt32BE(initialWindow, off + HEADER_SIZE + 9);
  }

  /**
   * A call's opening frame. `path` is sent when defining a method id (or with
   * id 0); `payload` is the whole request of unary and server-streaming calls.
   * Writes nothing and returns false when the frame would be larger than
   * `maxFrameSize`.
   */
  request(id: number, methodId: number, path: string | undefined, timeoutMs: number, metadata: Metadata | undefined, payload: Uint8Array | undefined, maxFrameSize: number): boolean {
    return this.requestFrame(id, methodId, path, timeoutMs, metadata, payload, undefined, undefined, maxFrameSize);
  }

  /**
   * A unary or server-streaming call's REQUEST with its message encoded into the frame (endWithMessage). Returns
   * false (nothing written, refusedBytes the frame body's size) when the frame would pass `maxFrameSize`; an encode
   * error is thrown, nothing written.
   */
  requestMessage<T>(id: number, methodId: number, path: string | undefined, timeoutMs: number, metadata: Metadata | undefined, codec: MessageCodec<T>, message: DeepPartial<T>, maxFrameSize: number): boolean {
    return this.requestFrame(id, methodId, path, timeoutMs, metadata, undefined, codec, message, maxFrameSize);
  }

  private requestFrame<T>(id: number, methodId: number, path: string | undefined, timeoutMs: number, metadata: Metadata | undefined, payload: Uint8Array | undefined, codec: MessageCodec<T> | undefined, message: DeepPartial<T> | undefined, maxFrameSize: number): boolean {
    let flags = payload || codec ? Flag.END : 0;
    let fixed = 2 + 4;
    let pathLen = 0;
    if (path !== undefined) {
      flags |= Flag.METHOD_DEF;
      pathLen = Buffer.byteLength(path);
      fixed += 2 + pathLen;
    }
    const mdLen = metadata ? metadataSize(metadata) : 0;
    if (mdLen > 0) {
      flags |= Flag.METADATA;
      fixed += mdLen;
    }
    const body = fixed + (payload ? payload.length : 0);
    if (HEADER_SIZE + body > maxFrameSize) {
      this.refusedBytes = body; // metadata alone may be what is too large
      return false;
    }
    const frameAt = this.reserve(HEADER_SIZE + fixed);
    let off = frameAt;
    const s = this.slab;
    off += HEADER_SIZE;
    s.writeUInt16BE(methodId, off);
    off += 2;
    if (path !== undefined) {
      s.writeUInt16BE(pathLen, off);
      s.write(path, off + 2, pathLen, "utf8");
      off += 2 + pathLen;
    }
    s.writeUInt32BE(timeoutMs, off);
    off += 4;
    if (mdLen > 0) writeMetadata(s, off, metadata!);
    if (codec !== undefined) return this.endWithMessage(codec, message!, frameAt, fixed, maxFrameSize, FrameType.REQUEST, flags, id);
    this.header(frameAt, body, FrameType.REQUEST, flags, id);
    if (payload) this.payload(payload);
    return true;
  }

  /** Response headers (server -> client), before the call's first MESSAGE or its RESPONSE. */
  headers(id: number, metadata: Metadata): void {
    const mdLen = Math.max(2, metadataSize(metadata));
    const off = this.reserve(HEADER_SIZE + mdLen);
    this.header(off, mdLen, FrameType.HEADERS, 0, id);
    if (mdLen > 2) writeMetadata(this.slab, off + HEADER_SIZE, metadata);
    else this.slab.writeUInt16BE(0, off + HEADER_SIZE);
  }

  /** CANCEL with the reason's status (CANCELLED, or DEADLINE_EXCEEDED when the caller's deadline passed). */
  cancel(id: number, status: number): void {
    const off = this.reserve(HEADER_SIZE + 1);
    this.header(off, 1, FrameType.CANCEL, 0, id);
    this.slab[off + HEADER_SIZE] = status;
  }

  message(id: number, payload: Uint8Array): void {
    const off = this.reserve(HEADER_SIZE);
    this.header(off, payload.length, FrameType.MESSAGE, 0, id);
    this.payload(payload);
  }

  /** A frame with no body (END, CANCEL). */
  empty(type: FrameType, id: number): void {
    const off = this.reserve(HEADER_SIZE);
    this.header(off, 0, type, 0, id);
  }

  window(id: number, increment: number): void {
    const off = this.reserve(HEADER_SIZE + 4);
    this.header(off, 4, FrameType.WINDOW, 0, id);
    this.slab.writeUInt32BE(increment, off + HEADER_SIZE);
  }

  /** An OK reply; `payload` only for unary and client-streaming calls; `trailers` when the servant set any. */
  ok(id: number, payload: Uint8Array | undefined, trailers?: Metadata): void {
    const mdLen = trailers ? metadataSize(trailers) : 0;
    const off = this.reserve(HEADER_SIZE + 1 + mdLen);
    this.header(off, 1 + mdLen + (payload ? payload.length : 0), FrameType.RESPONSE, (payload ? Flag.PAYLOAD : 0) | (mdLen > 0 ? Flag.TRAILERS : 0), id);
    this.slab[off + HEADER_SIZE] = 0;
    if (mdLen > 0) writeMetadata(this.slab, off + HEADER_SIZE + 1, trailers!);
    if (payload) this.payload(payload);
  }

  /**
   * An OK reply carrying `message`, encoded into the frame (endWithMessage). Returns false (nothing written,
   * refusedBytes the frame body's size) when the frame would pass `maxFrameSize`; an encode error is thrown, nothing
   * written.
   */
  okMessage<T>(id: number, codec: MessageCodec<T>, message: DeepPartial<T>, trailers: Metadata | undefined, maxFrameSize: number): boolean {
    const mdLen = trailers ? metadataSize(trailers) : 0;
    const fixed = 1 + mdLen;
    const off = this.reserve(HEADER_SIZE + fixed);
    this.slab[off + HEADER_SIZE] = 0;
    if (mdLen > 0) writeMetadata(this.slab, off + HEADER_SIZE + 1, trailers!);
    return this.endWithMessage(codec, message, off, fixed, maxFrameSize, FrameType.RESPONSE, Flag.PAYLOAD | (mdLen > 0 ? Flag.TRAILERS : 0), id);
  }

  /** A failed call: status, [trailers], message, code and optional JSON data. */
  error(id: number, status: number, message: string, code: string, dataJson: string | undefined, trailers?: Metadata): void {
    const mdLen = trailers ? metadataSize(trailers) : 0;
    const msg = Buffer.from(message.length > 16_384 ? message.slice(0, 16_384) : message, "utf8");
    const codeBuf = Buffer.from(code.slice(0, 255), "utf8").subarray(0, 255);
    const data = dataJson === undefined ? undefined : Buffer.from(dataJson, "utf8");
    const msgLen = Math.min(msg.length, 0xffff);
    const body = 1 + mdLen + 2 + msgLen + 1 + codeBuf.length + 4 + (data ? data.length : 0);
    let off = this.reserve(HEADER_SIZE + body - (data ? data.length : 0));
    this.header(off, body, FrameType.RESPONSE, mdLen > 0 ? Flag.TRAILERS : 0, id);
    const s = this.slab;
    off += HEADER_SIZE;
    s[off] = status;
    off += 1;
    if (mdLen > 0) off = writeMetadata(s, off, trailers!);
    s.writeUInt16BE(msgLen, off);
    msg.copy(s, off + 2, 0, msgLen);
    off += 2 + msgLen;
    s[off] = codeBuf.length;
    codeBuf.copy(s, off + 1);
    off += 1 + codeBuf.length;
    s.writeUInt32BE(data ? data.length : 0, off);
    if (data) this.payload(data);
  }

  ping(ack: boolean, data: Buffer): void {
    const off = this.reserve(HEADER_SIZE + 8);
    this.header(off, 8, FrameType.PING, ack ? PING_ACK : 0, 0);
    data.copy(this.slab, off + HEADER_SIZE, 0, 8);
  }

  goaway(lastId: number, reason: string): void {
    const r = Buffer.from(reason.slice(0, 1024), "utf8");
    const off = this.reserve(HEADER_SIZE + 6 + r.length);
    this.header(off, 6 + r.length, FrameType.GOAWAY, 0, 0);
    this.slab.writeUInt32BE(lastId, off + HEADER_SIZE);
    this.slab.writeUInt16BE(r.length, off + HEADER_SIZE + 4);
    r.copy(this.slab, off + HEADER_SIZE + 6);
  }

  /** Flushes at the end of the current tick (process.nextTick): frames written until then join the same write. */
  flushSoon(): void {
    if (this.tickScheduled) return;
    this.tickScheduled = true;
    process.nextTick(this.tickFlushFn);
  }

  /** Hands everything accumulated to the socket in one write (or one corked batch). */
  flush(): void {
    this.scheduled = false;
    const sock = this.socket;
    if (sock.destroyed) {
      this.parts = [];
      this.partsBytes = 0;
      this.start = this.pos;
      return;
    }
    if (this.parts.length === 0) {
      if (this.pos === this.start) return;
      const chunk = this.slab.subarray(this.start, this.pos);
      this.start = this.pos;
      sock.write(chunk);
    } else {
      if (this.pos > this.start) this.pushPart(this.slab.subarray(this.start, this.pos));
      this.start = this.pos;
      const parts = this.parts;
      this.parts = [];
      this.partsBytes = 0;
      sock.cork();
      for (const p of parts) sock.write(p);
      sock.uncork();
    }
    if (this.onFlush) this.onFlush();
  }
}
