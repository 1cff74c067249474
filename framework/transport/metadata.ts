/**
 * Call metadata (request headers, response headers, trailers) as both
 * transports carry it, and the rules gRPC sets for it, checked once at the
 * edge (a proxy call's options, a servant's sendHeaders / setTrailers) so a
 * bad key or value is a clear InvalidArgumentError and nothing is sent.
 *
 * Keys are lower-case `[0-9a-z_.-]+`; keys ending in `-bin` carry binary
 * values (Buffer / Uint8Array, base64 on HTTP/2, raw bytes on the native
 * transport); every other value is a string of printable ASCII (0x20..0x7E),
 * as the gRPC spec's ASCII-Value. Keys gRPC and HTTP/2 reserve are refused.
 */
import { InvalidArgumentError } from "../errors";
import type { Metadata } from "./base";

const KEY = /^[0-9a-z_.-]+$/;
const ASCII_VALUE = /^[\x20-\x7e]*$/;
/** HTTP/2 connection-specific and gRPC transport headers a caller or servant may not set. */
const RESERVED = new Set(["content-type", "te", "host", "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "user-agent"]);

export function isBinaryKey(key: string): boolean {
  return key.endsWith("-bin");
}

/**
 * Throws InvalidArgumentError naming the first key or value gRPC would not
 * carry. `where` says whose metadata it is ("request metadata of /pkg.S/M").
 */
export function checkMetadata(md: Metadata, where: string): void {
  for (const key in md) {
    const value = md[key];
    if (!KEY.test(key)) {
      throw new InvalidArgumentError(`${where}: key ${JSON.stringify(key)} is not a valid gRPC metadata key (lower-case letters, digits, "_", "-", "." only)`, { key });
    }
    if (key.startsWith("grpc-") || RESERVED.has(key)) {
      throw new InvalidArgumentError(`${where}: key ${JSON.stringify(key)} is reserved by gRPC/HTTP2 and cannot be set`, { key });
    }
    if (isBinaryKey(key)) {
      if (!(value instanceof Uint8Array)) {
        throw new InvalidArgumentError(`${where}: key ${JSON.stringify(key)} is binary (-bin): its value must be a Buffer, got ${typeof value}`, { key });
      }
    } else if (typeof value !== "string") {
      throw new InvalidArgumentError(`${where}: key ${JSON.stringify(key)} takes a string value (binary values need a key ending in -bin), got ${value instanceof Uint8Array ? "bytes" : typeof value}`, { key });
    } else if (!ASCII_VALUE.test(value)) {
      throw new InvalidArgumentError(`${where}: the value of ${JSON.stringify(key)} has characters outside printable ASCII (binary values need a key ending in -bin)`, { key });
    }
  }
}

/** True when `md` has no key (without allocating). */
export function isEmptyMetadata(md: Metadata | undefined): boolean {
  if (md === undefined) return true;
  for (const _ in md) return false;
  return true;
}

/** Hands received metadata to a caller's callback; what the callback throws is its own bug and must not break the call. */
export function deliverMetadata(fn: (md: Metadata) => void, md: Metadata): void {
  try {
    fn(md);
  } catch {
    // the caller's callback failed; the call goes on
  }
}
