/**
 * gRPC-Web framing (the protocol browsers speak through a proxy, as in
 * grpc/grpc-web's PROTOCOL-WEB.md): the body is a run of frames, each a
 * flag byte, a 4-byte big-endian length and the payload; flag 0x00 is a
 * message, 0x80 the trailers (an HTTP/1 header block: `grpc-status: 0\r\n`),
 * bit 0x01 a compressed payload. `application/grpc-web-text` carries the same
 * bytes base64-encoded, possibly as several padded pieces one after another.
 *
 * Pure functions: no I/O here, so the HTTP front and tests share them.
 */
import { InvalidArgumentError, Status, UnimplementedError } from "sgridnext";

export const FRAME_DATA = 0x00;
export const FRAME_TRAILERS = 0x80;
export const FRAME_COMPRESSED = 0x01;

export interface Frame {
  readonly flag: number;
  readonly payload: Buffer;
}

export type GrpcWebMode = "binary" | "text";

/** `application/grpc-web[+proto]` -> binary, `application/grpc-web-text[+proto]` -> text, anything else -> undefined. */
export function grpcWebMode(contentType: string | undefined): GrpcWebMode | undefined {
  const type = (contentType ?? "").split(";")[0]!.trim().toLowerCase();
  if (type === "application/grpc-web" || type === "application/grpc-web+proto") return "binary";
  if (type === "application/grpc-web-text" || type === "application/grpc-web-text+proto") return "text";
  return undefined;
}

/** The response content type for a mode (the `+proto` form, as the Envoy filter answers). */
export function grpcWebContentType(mode: GrpcWebMode): string {
  return mode === "text" ? "application/grpc-web-text+proto" : "application/grpc-web+proto";
}

/** One frame: flag, length, payload. */
export function encodeFrame(flag: number, payload: Uint8Array): Buffer {
  const head = Buffer.alloc(5);
  head[0] = flag;
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

/**
 * A base64 body that may be several padded pieces back to back (each
 * `sendMessage` of a text client encodes its own frame) -> bytes.
 * InvalidArgumentError when it is not base64.
 */
export function decodeTextBody(text: string): Buffer {
  const clean = text.replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/=]*$/.test(clean)) throw new InvalidArgumentError("grpc-web-text body is not base64", { field: "body" });
  const pieces = clean.split(/(?<==)(?=[^=])/);
  const out: Buffer[] = [];
  for (const piece of pieces) {
    if (piece.length % 4 !== 0) throw new InvalidArgumentError("grpc-web-text body is not base64 (a piece is not a multiple of 4 characters)", { field: "body" });
    out.push(Buffer.from(piece, "base64"));
  }
  return Buffer.concat(out);
}

/**
 * A request body -> its frames. InvalidArgumentError for a truncated frame;
 * UnimplementedError for a compressed one (no grpc-encoding is accepted, so
 * a client has no reason to send one).
 */
export function parseFrames(body: Buffer): Frame[] {
  const frames: Frame[] = [];
  let at = 0;
  while (at < body.length) {
    if (body.length - at < 5) throw new InvalidArgumentError(`gRPC-Web body ends inside a frame header (${body.length - at} of 5 bytes)`, { field: "body" });
    const flag = body[at]!;
    const len = body.readUInt32BE(at + 1);
    if (body.length - at - 5 < len) throw new InvalidArgumentError(`gRPC-Web frame says ${len} bytes but the body has ${body.length - at - 5}`, { field: "body" });
    if (flag & FRAME_COMPRESSED) throw new UnimplementedError("compressed gRPC-Web frames are not accepted (send grpc-accept-encoding identity)");
    frames.push({ flag, payload: body.subarray(at + 5, at + 5 + len) });
    at += 5 + len;
  }
  return frames;
}

/** The one message of a unary or server-streaming request: InvalidArgumentError unless there is exactly one data frame. */
export function singleMessage(frames: readonly Frame[]): Buffer {
  const data = frames.filter((f) => !(f.flag & FRAME_TRAILERS));
  if (data.length !== 1) throw new InvalidArgumentError(`a gRPC-Web request carries one message, this one carries ${data.length}`, { field: "body" });
  return data[0]!.payload;
}

/** Percent-encodes a grpc-message value as the gRPC spec asks (printable ASCII but `%` kept, the rest as UTF-8 %XX). */
export function encodeGrpcMessage(message: string): string {
  return Array.from(Buffer.from(message, "utf8"), (b) => (b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, "0")}`)).join("");
}

export function decodeGrpcMessage(value: string): string {
  try { return decodeURIComponent(value); } catch { return value; }
}

/** The trailers frame: `grpc-status`, `grpc-message` and the other trailers as an HTTP/1 header block. */
export function trailersFrame(status: Status, message: string, trailers: Readonly<Record<string, string>> = {}): Buffer {
  const lines = [`grpc-status: ${status}`];
  if (message) lines.push(`grpc-message: ${encodeGrpcMessage(message)}`);
  for (const [k, v] of Object.entries(trailers)) lines.push(`${k.toLowerCase()}: ${v}`);
  return encodeFrame(FRAME_TRAILERS, Buffer.from(`${lines.join("\r\n")}\r\n`, "latin1"));
}

/** A trailers frame's payload -> lower-case header map. */
export function parseTrailers(payload: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of payload.toString("latin1").split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    out[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return out;
}

/** A response piece in the mode's encoding (text mode: each piece base64 on its own, as clients expect). */
export function encodeForMode(mode: GrpcWebMode, bytes: Buffer): Buffer {
  return mode === "text" ? Buffer.from(bytes.toString("base64"), "latin1") : bytes;
}

/**
 * `grpc-timeout` (`<digits><unit>`, unit H M S m u n) -> ms, or undefined
 * when absent. InvalidArgumentError for a value that is not of that form.
 */
export function parseGrpcTimeout(value: string | undefined): number | undefined {
  if (value === undefined || value === "") return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError(`grpc-timeout "${value}" is not <digits><H|M|S|m|u|n>`, { field: "grpc-timeout" });
  const n = Number(m[1]);
  const perUnit: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };
  return Math.max(1, Math.ceil(n * perUnit[m[2]!]!));
}

/** Response headers a browser script may read across origins: the trailers a gRPC-Web client looks for. */
export const GRPC_WEB_EXPOSED_HEADERS = "grpc-status, grpc-message, grpc-status-details-bin, sgrid-error-code, sgrid-error-data";
/** Request headers grpc-web clients send, allowed in a preflight. */
export const GRPC_WEB_ALLOWED_HEADERS = "content-type, x-grpc-web, x-user-agent, grpc-timeout, authorization";
