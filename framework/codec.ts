/**
 * Adapts ts-proto's generated message functions to the transport's MessageCodec.
 */
import type { DeepPartial, MessageCodec } from "./transport/base";

/** The subset of ts-proto's `MessageFns<T>` a codec needs. */
export interface TsProtoMessageFns<T> {
  encode(message: T, writer?: any): { finish(): Uint8Array };
  decode(input: Uint8Array, length?: number): T;
  fromPartial(object: any): T;
}

/** Encode accepts partial messages (fromPartial fills defaults); decode returns full ones. */
export function messageCodec<T>(fns: TsProtoMessageFns<T>): MessageCodec<T> {
  return {
    encode: (message: DeepPartial<T>) => fns.encode(fns.fromPartial(message)).finish(),
    decode: (bytes: Uint8Array) => fns.decode(bytes),
  };
}
