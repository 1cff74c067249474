/**
 * Reading a stream of messages by push: `eachMessage(stream, onMessage)`
 * calls onMessage with each message in order and settles when the stream
 * does (resolves at its end, rejects with its error). When onMessage returns
 * a promise, the next message waits for it: the transport stops reading
 * meanwhile, so a slow consumer holds the sender back (for gRPC through
 * HTTP/2 flow control) instead of queueing without bound.
 *
 * Why not `for await`: an async iterator costs, per message, a promise that
 * stays pending until the next message arrives, plus the iterator's own
 * machinery. For a long-lived stream whose messages are seconds apart (a
 * node session's heartbeats: registry/node/node-session-servant.ts) those
 * promises outlive the young generation and are promoted, then collected
 * by mark-compacts; 10,000 such streams made that a large share of the
 * registry's GC. A stream that can be read by push offers it under
 * {@link PUSH_READ} (the gRPC server's request stream does:
 * framework/transport/grpc/server-call.ts); any other AsyncIterable is read
 * with its iterator, with the same ordering and backpressure.
 */

/** What onMessage returns: nothing to wait for, or a promise the next message waits on. */
export type MessageResult = void | undefined | Promise<unknown>;

/**
 * The promise an onMessage result holds the next message on, if any: a push reader waits only on a
 * thenable; anything else (undefined, or a stray value from a JS handler) lets the next message through.
 */
export function waitOf(result: MessageResult): PromiseLike<unknown> | undefined {
  return typeof (result as PromiseLike<unknown> | undefined)?.then === "function" ? (result as PromiseLike<unknown>) : undefined;
}

/** The key of a push reader on a message stream (see {@link eachMessage}). */
export const PUSH_READ: unique symbol = Symbol.for("sgrid.pushRead");

/** A message stream that can also be read by push. */
export interface PushReadable<T> extends AsyncIterable<T> {
  [PUSH_READ](onMessage: (message: T) => MessageResult): Promise<void>;
}

function isPushReadable<T>(stream: AsyncIterable<T>): stream is PushReadable<T> {
  return typeof (stream as Partial<PushReadable<T>>)[PUSH_READ] === "function";
}

/**
 * Calls `onMessage` with each message of `stream`, in order, one at a time
 * (a returned promise holds the next message until it settles; a rejected
 * one, or a throw, stops reading and rejects). Resolves when the stream
 * ends. A stream already partly read with its iterator continues from the
 * next message.
 */
export async function eachMessage<T>(stream: AsyncIterable<T>, onMessage: (message: T) => MessageResult): Promise<void> {
  if (isPushReadable(stream)) return stream[PUSH_READ](onMessage);
  for await (const m of stream) {
    const wait = onMessage(m);
    if (wait) await wait;
  }
}
