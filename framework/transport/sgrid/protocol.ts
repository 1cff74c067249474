/**
 * The `sgrid` wire protocol: length-prefixed frames over one TCP (or TLS)
 * connection, many calls multiplexed by stream id.
 *
 * Every frame starts with a fixed 10-byte header, big-endian:
 *
 *   +----------------+--------+--------+----------------+------------------+
 *   | length: u32    | type:u8|flags:u8| stream id: u32 | body ...         |
 *   +----------------+--------+--------+----------------+------------------+
 *
 * `length` counts everything after itself (6 + body bytes); `length + 4` is
 * checked against the receiver's frame size limit before any body byte is
 * buffered. Stream ids are chosen by the client, odd or even alike, never
 * reused while a call with that id is alive; 0 is the connection itself.
 *
 * Bodies by type (strings are UTF-8, prefixed by their byte length):
 *   HELLO     magic "SGRD", u8 version, u32 max frame length, u32 initial stream window.
 *             First frame in each direction; stream id 0. Unknown trailing bytes are ignored.
 *   REQUEST   u16 method id, [u16 path length, path] when F_METHOD_DEF, u32 timeout ms (0 = none),
 *             [u16 count, count x (u16 key length, key, u32 value length, value)] when F_METADATA,
 *             then, when F_END (unary and server-streaming calls), the request payload.
 *             Method ids are interned per connection: the first call of a method defines its id
 *             (1..MAX_METHOD_ID) with F_METHOD_DEF; later calls send only the id. Id 0 always
 *             carries the path. Metadata keys are lower-cased by the receiver; values are raw
 *             bytes: UTF-8 text, or binary for keys ending in `-bin` (received as Buffers).
 *   MESSAGE   one stream message payload (protobuf), counted against the stream's window. On a unary or
 *             server-streaming call (whose one request is in its REQUEST) the server fails the call,
 *             UNIMPLEMENTED, as gRPC does; the connection stays.
 *   END       client half-close of its request stream. No body.
 *   RESPONSE  server -> client, terminal. u8 status; [metadata block: the trailers] when F_TRAILERS;
 *             then, when status is 0 and F_PAYLOAD, the reply payload; when status is not 0: u16
 *             message length, message, u8 code length, code (SCREAMING_SNAKE), u32 data length,
 *             data (JSON; errors only, never the hot path).
 *   CANCEL    client -> server: abandon the call (the servant's ctx.signal fires). Optional u8:
 *             the reason's status, 1 CANCELLED (the default) or 4 DEADLINE_EXCEEDED.
 *   HEADERS   server -> client: the servant's response headers (a metadata block), sent only when
 *             it sends headers, before the call's first MESSAGE or its RESPONSE. (Added after the
 *             first release of version 1, as were RESPONSE trailers and the CANCEL reason: a client
 *             of an earlier build closes the connection on a HEADERS frame, and ignores the rest.)
 *   WINDOW    u32 credit increment for the stream (bytes), returned by the reader as it consumes.
 *   PING      8 opaque bytes; echoed with PING_ACK. Clients ping every interval; servers close
 *             connections that send nothing for their idle timeout.
 *   GOAWAY    server -> client: u32 last stream id accepted, u16 reason length, reason. The client
 *             sends no new call on the connection; calls past the last id get UNAVAILABLE.
 *
 * Flow control: each side announces in HELLO the window it grants per stream; a
 * sender sends stream messages while its credit for the stream is positive
 * (one message may overshoot) and the reader returns credit with WINDOW as
 * the consumer takes messages. Unary request and response payloads are not
 * flow-controlled (one message each, bounded by the frame limit). A sender
 * that goes past a window by more than one frame breaks the protocol and
 * loses its connection.
 *
 * A metadata block is u16 count, then count x (u16 key length, key, u32 value length, value).
 *
 * Flags by type: REQUEST END 0x01, METHOD_DEF 0x02, METADATA 0x04;
 * RESPONSE PAYLOAD 0x08, TRAILERS 0x10; PING ACK 0x01. Other bits must be 0 and are ignored.
 */

export const MAGIC = Buffer.from("SGRD", "latin1");
export const VERSION = 1;

/** Bytes of the fixed frame header. */
export const HEADER_SIZE = 10;
/** Bytes of the header counted by `length` (type, flags, stream id). */
export const LENGTH_OVERHEAD = 6;

export const enum FrameType {
  HELLO = 1,
  REQUEST = 2,
  MESSAGE = 3,
  END = 4,
  RESPONSE = 5,
  CANCEL = 6,
  WINDOW = 7,
  PING = 8,
  GOAWAY = 9,
  HEADERS = 10,
}

/** Highest frame type this version knows; anything above is a protocol error. */
export const MAX_FRAME_TYPE = 10;

export const enum Flag {
  /** REQUEST: the request is complete (payload follows). */
  END = 0x01,
  /** REQUEST: the method path is in the frame and defines the method id. */
  METHOD_DEF = 0x02,
  /** REQUEST: metadata follows the timeout. */
  METADATA = 0x04,
  /** RESPONSE: an OK status carries the reply payload. */
  PAYLOAD = 0x08,
  /** RESPONSE: trailers (a metadata block) follow the status byte. */
  TRAILERS = 0x10,
}

/** PING flag: this PING is the answer to one received (same bit as Flag.END; flags are per frame type). */
export const PING_ACK = 0x01;

/** Fixed part of a HELLO body: magic, version, max frame, window. */
export const HELLO_BODY_SIZE = 4 + 1 + 4 + 4;

/** Stream credit below which a sender waits; the smallest window a peer may announce. */
export const MIN_WINDOW = 64 * 1024;

/** Credit charged per stream message on top of its payload, so empty messages still count. */
export const MESSAGE_COST_OVERHEAD = 16;

/** Longest method path accepted (bytes). */
export const MAX_PATH_LENGTH = 1024;

/**
 * Highest interned method id; id 0 means "path inline, not interned". Kept
 * small because the server holds one path per id per connection: a peer
 * defining ids without end must not grow its memory without end.
 */
export const MAX_METHOD_ID = 1023;

/** Highest stream id before the client wraps back to 1. */
export const MAX_STREAM_ID = 0x7fffffff;

/** Why a connection was closed; counted by the server for `stats()`. */
export type CloseReason =
  | "bad_handshake"
  | "handshake_timeout"
  | "idle_timeout"
  | "frame_too_large"
  | "truncated_frame"
  | "protocol_error"
  | "slow_reader"
  | "inbound_limit"
  | "socket_error"
  | "peer_closed"
  | "shutdown";
