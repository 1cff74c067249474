import type { Metadata } from "../transport/base";

/** Per-call options of every generated proxy method. */
export interface CallOptions {
  /**
   * Time allowed for the call, ms. Default for unary calls: the proxy's timeout (3000); streaming calls
   * have no deadline unless one is given. An incoming call's earlier deadline always wins.
   */
  timeoutMs?: number;
  /** Request metadata (lower-case keys; values are strings). */
  metadata?: Metadata;
  /** Cancels the call when aborted; the servant's ctx.signal fires. */
  signal?: AbortSignal;
  /** Key for the hash and consistent-hash strategies (same key, same endpoint). */
  hashKey?: string;
}
