/**
 * Adapts ts-proto's generated message functions to the transport's MessageCodec.
 *
 * Encoding reuses one module-level BinaryWriter: encode is synchronous and
 * the bytes are copied out (takeBytes) and the writer reset, so sharing is safe
 * and saves allocating (and growing) a fresh buffer per message. The writer
 * is replaced after a throw mid-encode (its state is then unknown) and after
 * a message over SHARED_WRITER_MAX_BYTES (so one large message does not pin
 * a large buffer for the life of the process).
 */
import { Buffer } from "node:buffer";
import { BinaryReader, BinaryWriter } from "@bufbuild/protobuf/wire";
import type { DeepPartial, MessageCodec } from "./transport/base";

/** The subset of ts-proto's `MessageFns<T>` a codec needs. */
export interface TsProtoMessageFns<T> {
  encode(message: T, writer?: any): { finish(): Uint8Array };
  decode(input: Uint8Array, length?: number): T;
  fromPartial(object: any): T;
}

/** Largest message after which the shared writer's buffer is dropped. */
export const SHARED_WRITER_MAX_BYTES = 1 << 20;

/** The writer's own fields (JavaScript-visible, `private` only in its typings). */
interface WriterState {
  buffer: Uint8Array;
  pos: number;
}

/** Buffer's own UTF-8 routines (what toString and write use), callable on any Uint8Array. */
const bufferProto = Buffer.prototype as unknown as {
  utf8Slice(this: Uint8Array, start: number, end: number): string;
  latin1Write(this: Uint8Array, text: string, offset: number, length: number): number;
};
const utf8Slice = bufferProto.utf8Slice;
const latin1Write = bufferProto.latin1Write;
/** Strings this long or shorter keep the library's own ASCII loop (cheaper than a call into C++). */
const SHORT_STRING = 32;

/** The writer's internals FastWriter uses (JavaScript-visible, `private` in its typings). */
interface WriterInternals {
  buffer: Uint8Array;
  pos: number;
  ensureCapacity(size: number): void;
}

/**
 * A BinaryWriter whose longer ASCII strings are copied straight into its
 * buffer by Buffer's latin1Write (for ASCII the same bytes as UTF-8; a string
 * is ASCII exactly when its UTF-8 length equals its length): no view of the
 * buffer, no TextEncoder.encodeInto wrapper and its result object. Other
 * strings take the library's path (utf8Write instead measured slower than
 * encodeInto: ~86 vs ~58 ns for 100 characters, latin1Write ~52). Same
 * bytes (checked at load against the library's writer, else the plain
 * writer is used).
 */
class FastWriter extends BinaryWriter {
  /**
   * While encodeAt writes: where the message began, and, while that is in the caller's buffer, the writer's own
   * buffer and view, put back after (or moved to, at the same positions, when the message outgrows the caller's).
   */
  base = 0;
  home: Uint8Array | undefined;
  homeView: DataView | undefined;

  override string(value: string): this {
    if (typeof value !== "string" || value.length <= SHORT_STRING) return super.string(value);
    const n = Buffer.byteLength(value, "utf8");
    if (n !== value.length) return super.string(value);
    this.uint32(n);
    const w = this as unknown as WriterInternals;
    w.ensureCapacity(n);
    latin1Write.call(w.buffer, value, w.pos, n);
    w.pos += n;
    return this;
  }
}

/** The writer's fields encodeAt swaps (JavaScript-visible, `private` in its typings). */
interface SwapInternals {
  buffer: Uint8Array;
  pos: number;
  viewCache: DataView;
  stackPos: number[];
}

const baseEnsureCapacity = (BinaryWriter.prototype as unknown as { ensureCapacity(this: BinaryWriter, size: number): void }).ensureCapacity;

/**
 * FastWriter's ensureCapacity: inside a caller's buffer (encodeAt) a message that would pass its end moves, with
 * what it has written so far, to the writer's own buffer at the same positions (the library's methods hold
 * positions in locals across this call, join's fork mark among them) and goes on there, so the caller's buffer is
 * never grown or copied; elsewhere the library's. Assigned on the prototype: the library's method is private in
 * its typings.
 */
(FastWriter.prototype as unknown as { ensureCapacity(this: FastWriter, size: number): void }).ensureCapacity = function ensureCapacity(this: FastWriter, size: number): void {
  const w = this as unknown as SwapInternals;
  if (this.home !== undefined && w.pos + size > w.buffer.length) {
    const written = w.buffer.subarray(this.base, w.pos);
    w.buffer = this.home;
    w.viewCache = this.homeView!;
    this.home = undefined;
    this.homeView = undefined;
    baseEnsureCapacity.call(this, size);
    w.buffer.set(written, this.base);
    return;
  }
  baseEnsureCapacity.call(this, size);
};

/** The reader's internals FastReader uses (`buf` is private, `len` readonly, in its typings). */
interface ReaderInternals {
  buf: Uint8Array;
  pos: number;
  len: number;
}

/**
 * A BinaryReader whose longer strings are decoded straight from its buffer
 * by Buffer's utf8Slice (invalid UTF-8 becomes U+FFFD, a BOM is kept, as
 * with the library's TextDecoder): no view and no TextDecoder wrapper per
 * string. Strict reads keep the library's path. Checked at load like
 * FastWriter.
 */
class FastReader extends BinaryReader {
  override string(strict?: boolean): string {
    const r = this as unknown as ReaderInternals;
    if (strict === true) return super.string(strict);
    const start = r.pos;
    const len = this.uint32();
    if (len <= SHORT_STRING) {
      r.pos = start;
      return super.string(strict);
    }
    const from = r.pos;
    const end = from + len;
    if (end > r.len) throw new RangeError("premature EOF");
    r.pos = end;
    return utf8Slice.call(r.buf, from, end);
  }
}

/** Whether FastWriter and FastReader give exactly what the library's own writer and reader give, on this release. */
const fastStrings: boolean = (() => {
  try {
    const texts = ["x".repeat(100), "h\u00e9llo w\u00f6rld, \u4e16\u754c \ud83d\ude00 ".repeat(4), "\ud800 lone surrogate ".repeat(3) + "\udfff", "\ufeff" + "y".repeat(40), "short"];
    const read = (r: BinaryReader): string[] => [String(r.uint32()), r.string(), String(r.uint32())];
    const same = (a: string[], b: string[]): boolean => a.length === b.length && a.every((x, k) => x === b[k]);
    for (const text of texts) {
      const plain = new BinaryWriter().uint32(10).string(text).uint32(7).finish();
      const fast = new FastWriter().uint32(10).string(text).uint32(7).finish();
      if (!Buffer.from(plain).equals(Buffer.from(fast))) return false;
      if (!same(read(new BinaryReader(plain)), read(new FastReader(plain)))) return false;
    }
    // Invalid UTF-8 (a stray continuation byte, a truncated sequence, an overlong form, a surrogate) decodes alike.
    const bad = Uint8Array.of(10, 40, ...Array.from({ length: 30 }, (_, k) => 0x61 + k), 0x80, 0xe2, 0x82, 0xc0, 0xaf, 0xed, 0xa0, 0x80, 0xf0, 0x9f, 7);
    if (!same(read(new BinaryReader(bad)), read(new FastReader(bad)))) return false;
    return true;
  } catch {
    return false;
  }
})();

const newWriter = (): BinaryWriter => (fastStrings ? new FastWriter() : new BinaryWriter());

let shared = newWriter();

/**
 * Whether the writer's bytes can be read in place (`buffer[0, pos)`), checked
 * once against `finish()` so a protobuf-es release that changes its internals
 * falls back to `finish()` instead of sending wrong bytes.
 */
const inPlace: boolean = (() => {
  const probe = new BinaryWriter();
  probe.uint32(10).string("sgrid");
  const w = probe as unknown as WriterState;
  if (!(w.buffer instanceof Uint8Array) || typeof w.pos !== "number") return false;
  const seen = Buffer.from(w.buffer.subarray(0, w.pos));
  return seen.equals(probe.finish()) && w.pos === 0;
})();

/**
 * The encoded bytes, copied out of the shared writer into a Buffer from
 * Node's pool, which resets the writer. Not `finish()`: its `slice()` makes
 * a fresh ArrayBuffer per message, which measured ~2 µs of a ~2.7 µs encode
 * of a 100-byte message (the pool allocation is ~0.2 µs).
 */
function takeBytes(writer: BinaryWriter): Uint8Array {
  if (!inPlace) return writer.finish();
  const w = writer as unknown as WriterState;
  const n = w.pos;
  const out = Buffer.allocUnsafe(n);
  out.set(w.buffer.subarray(0, n));
  w.pos = 0;
  return out;
}

/** The encoded bytes in place (a view of the writer's buffer, overwritten by the next encode); resets the writer. */
function viewBytes(writer: BinaryWriter): Uint8Array {
  if (!inPlace) return writer.finish();
  const w = writer as unknown as WriterState;
  const n = w.pos;
  w.pos = 0;
  return w.buffer.subarray(0, n);
}

function encodeShared<T>(fns: TsProtoMessageFns<T>, message: DeepPartial<T>, transient = false): Uint8Array {
  const writer = shared;
  let bytes: Uint8Array;
  try {
    fns.encode(fns.fromPartial(message), writer);
    bytes = transient ? viewBytes(writer) : takeBytes(writer);
  } catch (err) {
    shared = newWriter();
    throw err;
  }
  if (bytes.length > SHARED_WRITER_MAX_BYTES) shared = newWriter();
  return bytes;
}

/** The DataView of the last buffer encodeAt wrote into (a frame writer's slab is written into many times). */
let targetBuffer: Uint8Array | undefined;
let targetView: DataView | undefined;

/**
 * Encodes `message` straight into `target` from `offset` (MessageCodec.encodeAt), with the shared writer lent
 * `target` as its buffer; the writer's own buffer is back in place when it returns or throws.
 */
function encodeAtShared<T>(fns: TsProtoMessageFns<T>, message: DeepPartial<T>, target: Uint8Array, offset: number): number | Uint8Array {
  const writer = shared as FastWriter;
  const w = writer as unknown as SwapInternals;
  if (target !== targetBuffer) {
    targetView = new DataView(target.buffer, 0, target.byteLength);
    targetBuffer = target;
  }
  writer.home = w.buffer;
  writer.homeView = w.viewCache;
  writer.base = offset;
  w.buffer = target;
  w.viewCache = targetView!;
  w.pos = offset;
  try {
    fns.encode(fns.fromPartial(message), writer);
  } catch (err) {
    shared = newWriter();
    throw err;
  }
  const end = w.pos;
  w.pos = 0;
  const home = writer.home;
  if (home !== undefined) {
    // Stayed inside target.
    w.buffer = home;
    w.viewCache = writer.homeView!;
    writer.home = undefined;
    writer.homeView = undefined;
    return end;
  }
  // Moved to the writer's own buffer (ensureCapacity), at the same positions: valid until the next encode.
  if (end > SHARED_WRITER_MAX_BYTES) shared = newWriter();
  return w.buffer.subarray(offset, end);
}

/**
 * Whether encodeAt gives the library's own bytes, in place and after moving out of a too-short target, on this
 * release of the library (its writer's internals are not its API): checked once, else encodeAt is not offered.
 */
const encodesInPlace: boolean = (() => {
  if (!fastStrings || !inPlace) return false;
  try {
    // Nested (fork/join, a length that outgrows its one-byte prefix), fixed-width (the view), long and short strings.
    const fields: TsProtoMessageFns<string> = {
      encode: (text: string, writer: BinaryWriter) => {
        writer.uint32(8).uint32(300).uint32(18).fork().uint32(9).double(1.5).uint32(18).string(text).join().uint32(29).fixed32(7).uint32(34).string("short");
        return writer;
      },
      decode: () => "",
      fromPartial: (o: string) => o,
    };
    const text = "x".repeat(200);
    const want = Buffer.from(fields.encode(text, new BinaryWriter()).finish());
    const target = Buffer.alloc(600);
    const end = encodeAtShared(fields, text as never, target, 100);
    if (typeof end !== "number" || !target.subarray(100, end).equals(want)) return false;
    // Too short at each step: before the fork, inside it, at the join's wider length prefix, at the end.
    for (let room = 0; room <= want.length + 1; room++) {
      const short = Buffer.alloc(100 + room);
      const got = encodeAtShared(fields, text as never, short, 100);
      const bytes = typeof got === "number" ? short.subarray(100, got) : Buffer.from(got);
      if (!bytes.equals(want)) return false;
    }
    // The writer is its own again.
    const after = Buffer.from(encodeShared(fields, text as never));
    return after.equals(want);
  } catch {
    return false;
  } finally {
    shared = newWriter();
    targetBuffer = undefined;
    targetView = undefined;
  }
})();

/** The reader's own fields (`len` is readonly only in its typings). */
interface ReaderState {
  pos: number;
  len: number;
}

/**
 * One reader over the ArrayBuffer decoded last, reused while messages come
 * from it: the transports hand over views into one socket chunk per read, so
 * a chunk's messages share one reader instead of constructing one (and its
 * DataView) each, ~0.4 µs per message. Only for buffers up to
 * SHARED_WRITER_MAX_BYTES, so it never pins a large one.
 */
const newReader = (bytes: Uint8Array): BinaryReader => (fastStrings ? new FastReader(bytes) : new BinaryReader(bytes));

let reader: BinaryReader | undefined;
let readerBuffer: ArrayBufferLike | undefined;

function sharedReader(buffer: ArrayBufferLike): BinaryReader {
  if (reader === undefined || readerBuffer !== buffer) {
    reader = newReader(new Uint8Array(buffer));
    readerBuffer = buffer;
  }
  return reader;
}

/**
 * Decodes `bytes` with the shared reader set to exactly their range. Reads
 * the reader does not bound-check (fixed-width fields) can pass the end of
 * the message into the bytes after it, where a reader of its own would have
 * thrown; the position only moves forward, so any such read leaves it past
 * the end, and that message is refused the same way.
 */
function decodeShared<T>(fns: TsProtoMessageFns<T>, bytes: Uint8Array): T {
  const r = sharedReader(bytes.buffer);
  const st = r as unknown as ReaderState;
  const end = bytes.byteOffset + bytes.byteLength;
  st.pos = bytes.byteOffset;
  st.len = end;
  const message = fns.decode(r as never, bytes.byteLength);
  if (st.pos > end) throw new RangeError("premature EOF");
  return message;
}

/**
 * One reader over the byte array (a socket chunk) a range was decoded from
 * last (decodeRange): its positions are the chunk's own, so a frame's
 * message is decoded where it lies, with no view of it made first and no
 * lookup of the chunk's ArrayBuffer.
 */
let rangeReader: BinaryReader | undefined;
let rangeBytes: Uint8Array | undefined;

function decodeRangeShared<T>(fns: TsProtoMessageFns<T>, bytes: Uint8Array, start: number, end: number): T {
  let r = rangeReader;
  if (r === undefined || rangeBytes !== bytes) {
    r = rangeReader = newReader(bytes);
    rangeBytes = bytes;
  }
  const st = r as unknown as ReaderState;
  st.pos = start;
  st.len = end;
  const message = fns.decode(r as never, end - start);
  if (st.pos > end) throw new RangeError("premature EOF");
  return message;
}

/**
 * Whether `fns` decodes from a reader it is given (its generated code and
 * this module share one copy of @bufbuild/protobuf, so `instanceof
 * BinaryReader` holds): an unknown field (19999, reserved by protobuf, so no
 * message has it) read through a shared reader must move it to the end.
 */
function decodesFromReader<T>(fns: TsProtoMessageFns<T>): boolean {
  try {
    const probe = new BinaryReader(Uint8Array.of(0xaa, 0xf8, 0xe1, 0x09, 0x00));
    const st = probe as unknown as ReaderState;
    st.pos = 1;
    fns.decode(probe as never, 4);
    return st.pos === 5;
  } catch {
    return false;
  }
}

/** Encode accepts partial messages (fromPartial fills defaults); decode returns full ones. */
export function messageCodec<T>(fns: TsProtoMessageFns<T>): MessageCodec<T> {
  const reuse = decodesFromReader(fns);
  return {
    encode: (message: DeepPartial<T>) => encodeShared(fns, message),
    encodeTransient: (message: DeepPartial<T>) => encodeShared(fns, message, true),
    encodeAt: encodesInPlace
      ? (message: DeepPartial<T>, target: Uint8Array, offset: number) =>
        (target.byteOffset === 0 ? encodeAtShared(fns, message, target, offset) : encodeShared(fns, message, true))
      : undefined,
    decode: reuse
      ? (bytes: Uint8Array) => (bytes.buffer.byteLength <= SHARED_WRITER_MAX_BYTES ? decodeShared(fns, bytes) : fns.decode(bytes))
      : (bytes: Uint8Array) => fns.decode(bytes),
    decodeRange: reuse
      ? (bytes: Uint8Array, start: number, end: number) =>
        (bytes.byteLength <= SHARED_WRITER_MAX_BYTES ? decodeRangeShared(fns, bytes, start, end) : fns.decode(bytes.subarray(start, end)))
      : (bytes: Uint8Array, start: number, end: number) => fns.decode(bytes.subarray(start, end)),
  };
}
