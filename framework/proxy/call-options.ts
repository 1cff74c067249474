import type { Compression, Metadata } from "../transport/base";

/** Per-call options of every generated proxy method. */
export interface CallOptions {
  /**
   * Time allowed for the call, ms. Default for unary calls: the proxy's timeout (3000); streaming calls
   * have no deadline unless one is given. An incoming call's earlier deadline always wins.
   */
  timeoutMs?: number;
  /**
   * Request metadata: lower-case keys; `-bin` keys take a Buffer, others a printable-ASCII string. A key
   * or value gRPC would not carry fails the call with InvalidArgumentError before anything is sent.
   */
  metadata?: Metadata;
  /** Receives the servant's response headers (when it sent any; on gRPC always), before the first message or the result. */
  onHeaders?: (headers: Metadata) => void;
  /** Receives the servant's trailers (empty when it set none) as the call ends, before its result or error. */
  onTrailers?: (trailers: Metadata) => void;
  /** `gzip` compresses this call's request messages (gRPC transport); default the proxy's `compression`. */
  compression?: Compression;
  /** Cancels the call when aborted; the servant's ctx.signal fires. */
  signal?: AbortSignal;
  /** Key for the hash and consistent-hash strategies (same key, same endpoint). */
  hashKey?: string;
}
