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

let shared = new BinaryWriter();

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
    shared = new BinaryWriter();
    throw err;
  }
  if (bytes.length > SHARED_WRITER_MAX_BYTES) shared = new BinaryWriter();
  return bytes;
}

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
let reader: BinaryReader | undefined;
let readerBuffer: ArrayBufferLike | undefined;

function sharedReader(buffer: ArrayBufferLike): BinaryReader {
  if (reader === undefined || readerBuffer !== buffer) {
    reader = new BinaryReader(new Uint8Array(buffer));
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
    decode: reuse
      ? (bytes: Uint8Array) => (bytes.buffer.byteLength <= SHARED_WRITER_MAX_BYTES ? decodeShared(fns, bytes) : fns.decode(bytes))
      : (bytes: Uint8Array) => fns.decode(bytes),
  };
}
