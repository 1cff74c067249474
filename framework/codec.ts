/**
 * Adapts ts-proto's generated message functions to the transport's MessageCodec.
 *
 * Encoding reuses one module-level BinaryWriter: encode is synchronous and
 * `finish()` copies the bytes out and resets the writer, so sharing is safe
 * and saves allocating (and growing) a fresh buffer per message. The writer
 * is replaced after a throw mid-encode (its state is then unknown) and after
 * a message over SHARED_WRITER_MAX_BYTES (so one large message does not pin
 * a large buffer for the life of the process).
 */
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import type { DeepPartial, MessageCodec } from "./transport/base";

/** The subset of ts-proto's `MessageFns<T>` a codec needs. */
export interface TsProtoMessageFns<T> {
  encode(message: T, writer?: any): { finish(): Uint8Array };
  decode(input: Uint8Array, length?: number): T;
  fromPartial(object: any): T;
}

/** Largest message after which the shared writer's buffer is dropped. */
export const SHARED_WRITER_MAX_BYTES = 1 << 20;

let shared = new BinaryWriter();

function encodeShared<T>(fns: TsProtoMessageFns<T>, message: DeepPartial<T>): Uint8Array {
  const writer = shared;
  let bytes: Uint8Array;
  try {
    bytes = fns.encode(fns.fromPartial(message), writer).finish();
  } catch (err) {
    shared = new BinaryWriter();
    throw err;
  }
  if (bytes.length > SHARED_WRITER_MAX_BYTES) shared = new BinaryWriter();
  return bytes;
}

/** Encode accepts partial messages (fromPartial fills defaults); decode returns full ones. */
export function messageCodec<T>(fns: TsProtoMessageFns<T>): MessageCodec<T> {
  return {
    encode: (message: DeepPartial<T>) => encodeShared(fns, message),
    decode: (bytes: Uint8Array) => fns.decode(bytes),
  };
}
