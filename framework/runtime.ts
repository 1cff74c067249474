/**
 * What generated code imports: the servant and proxy bases, the codec adapter
 * and the transport types. Kept apart from the rest of the framework so that
 * Sgrid's own generated code can import it without cycles.
 */
export { Servant } from "./servant/servant";
export { ProxyBase, type ProxyClass } from "./proxy/proxy-base";
export { messageCodec, type TsProtoMessageFns } from "./codec";
export type { CallOptions } from "./proxy/call-options";
export type {
  DeepPartial, MessageCodec, MethodDescriptor, MethodKind, Metadata, ServerContext, ServiceDescriptor,
} from "./transport/base";
