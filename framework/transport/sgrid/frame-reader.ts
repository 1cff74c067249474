/**
 * Splits the incoming byte stream into frames.
 *
 * Complete frames inside a socket chunk are handed over as views of that
 * chunk (no copy). A frame cut across chunks is gathered into a buffer of
 * exactly its announced size, allocated only after the size passed the limit
 * check, so a peer can never make us buffer more than one frame of at most
 * `maxFrameSize` bytes. Buffers are never reused: decoded messages may keep
 * views into them.
 */
import type { Metadata } from "../base";
import { LENGTH_OVERHEAD, MAX_FRAME_TYPE, type CloseReason } from "./protocol";

/**
 * `buf[start, end)` as a plain Uint8Array view (payloads handed to decoders):
 * cheaper to make than Buffer#subarray, which goes through the Buffer subclass.
 */
export function view(buf: Buffer, start: number, end: number): Uint8Array {
  return new Uint8Array(buf.buffer, buf.byteOffset + start, end - start);
}

/** Thrown by the reader and frame handlers when the peer breaks the protocol; the connection closes. */
export class ProtocolViolation extends Error {
  constructor(readonly reason: CloseReason, message: string) {
    super(message);
    this.name = "ProtocolViolation";
  }
}

export interface FrameSink {
  /** One frame; the body is `buf[start, end)`. May throw ProtocolViolation. */
  onFrame(type: number, flags: number, id: number, buf: Buffer, start: number, end: number): void;
}

export class FrameReader {
  /** A frame being gathered across chunks, allocated at its full size. */
  private partial: Buffer | undefined;
  private filled = 0;
  /** Up to 3 bytes of a length prefix cut across chunks. */
  private readonly lenBuf = Buffer.alloc(4);
  private lenFilled = 0;
  /** When the pending partial frame began (epoch ms), 0 when none. */
  partialSince = 0;

  /** @param maxFrameSize largest accepted `length` + 4; may be changed between pushes. */
  constructor(private readonly sink: FrameSink, public maxFrameSize: number) {}

  /** True while a frame is incomplete. */
  hasPartial(): boolean {
    return this.partial !== undefined || this.lenFilled > 0;
  }

  /** Feeds one chunk. Throws ProtocolViolation; the reader is then unusable. */
  push(chunk: Buffer): void {
    let off = 0;
    const n = chunk.length;
    if (this.lenFilled > 0) {
      const take = Math.min(4 - this.lenFilled, n);
      chunk.copy(this.lenBuf, this.lenFilled, 0, take);
      this.lenFilled += take;
      off = take;
      if (this.lenFilled < 4) return;
      this.lenFilled = 0;
      const len = this.checkLength(this.lenBuf.readUInt32BE(0));
      this.partial = Buffer.allocUnsafe(len);
      this.filled = 0;
    }
    if (this.partial !== undefined) {
      const p = this.partial;
      const take = Math.min(p.length - this.filled, n - off);
      chunk.copy(p, this.filled, off, off + take);
      this.filled += take;
      off += take;
      if (this.filled < p.length) return;
      this.partial = undefined;
      this.partialSince = 0;
      this.dispatch(p, 0, p.length);
    }
    while (n - off >= 4) {
      const len = this.checkLength(chunk.readUInt32BE(off));
      const bodyStart = off + 4;
      if (n - bodyStart >= len) {
        off = bodyStart + len;
        this.dispatch(chunk, bodyStart, off);
        continue;
      }
      const p = Buffer.allocUnsafe(len);
      chunk.copy(p, 0, bodyStart, n);
      this.partial = p;
      this.filled = n - bodyStart;
      this.partialSince = Date.now();
      return;
    }
    if (off < n) {
      chunk.copy(this.lenBuf, 0, off, n);
      this.lenFilled = n - off;
      this.partialSince = Date.now();
    }
  }

  private checkLength(len: number): number {
    if (len + 4 > this.maxFrameSize) {
      throw new ProtocolViolation("frame_too_large", `frame of ${len + 4} bytes exceeds the limit of ${this.maxFrameSize} bytes`);
    }
    if (len < LENGTH_OVERHEAD) throw new ProtocolViolation("protocol_error", `frame length ${len} is shorter than a frame header`);
    return len;
  }

  /** `buf[start, end)` is type, flags, id and body. */
  private dispatch(buf: Buffer, start: number, end: number): void {
    const type = buf[start]!;
    if (type === 0 || type > MAX_FRAME_TYPE) throw new ProtocolViolation("protocol_error", `unknown frame type ${type}`);
    this.sink.onFrame(type, buf[start + 1]!, buf.readUInt32BE(start + 2), buf, start + LENGTH_OVERHEAD, end);
  }
}

/**
 * A cursor over one frame body, throwing ProtocolViolation on any read past
 * its end (a truncated or lying body never reads neighbouring bytes).
 */
export class BodyCursor {
  buf!: Buffer;
  pos = 0;
  end = 0;

  reset(buf: Buffer, start: number, end: number): this {
    this.buf = buf;
    this.pos = start;
    this.end = end;
    return this;
  }

  private need(n: number): void {
    if (this.pos + n > this.end) throw new ProtocolViolation("protocol_error", "frame body is shorter than its fields");
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** A UTF-8 string of `n` bytes. */
  str(n: number): string {
    this.need(n);
    const s = this.buf.toString("utf8", this.pos, this.pos + n);
    this.pos += n;
    return s;
  }

  /** A metadata block: keys lower-cased, `-bin` values as Buffers (copies), others UTF-8 strings. */
  metadata(): Metadata {
    const count = this.u16();
    const md: Metadata = {};
    for (let i = 0; i < count; i++) {
      const key = this.str(this.u16()).toLowerCase();
      const n = this.u32();
      if (key.endsWith("-bin")) {
        this.need(n);
        md[key] = Buffer.from(this.buf.subarray(this.pos, this.pos + n));
        this.pos += n;
      } else {
        md[key] = this.str(n);
      }
    }
    return md;
  }

  /** The rest of the body as a view. */
  rest(): Uint8Array {
    const v = view(this.buf, this.pos, this.end);
    this.pos = this.end;
    return v;
  }

  remaining(): number {
    return this.end - this.pos;
  }
}
