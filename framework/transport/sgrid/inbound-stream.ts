/**
 * The receiving end of one stream (response messages on the client, request
 * messages on the server), with credit-based flow control.
 *
 * Messages are queued as raw bytes and decoded when the consumer takes them.
 * Credit goes back to the sender (WINDOW) only as the consumer takes messages,
 * so a consumer that stops reading stops its sender after one window, while
 * other calls on the same connection carry on; the bytes queued per stream
 * never exceed `limit` (window plus one message), or the sender is in breach
 * of the protocol and push() says so.
 *
 * Read by its iterator, or by push (`eachMessage`, framework/primitives/each-message.ts): then
 * a message that finds the reader idle is decoded and handed over in the read that brought
 * it, with no promise per message; while the reader's promise is pending, messages queue as
 * for an iterator that is not pulled. A node session's heartbeats, seconds apart on
 * thousands of streams, would otherwise each leave a pending promise, and the last message
 * in the reading loop's frame, alive long enough to be promoted.
 */
import { type MessageResult, PUSH_READ, type PushReadable, waitOf } from "../../primitives/each-message";
import { MESSAGE_COST_OVERHEAD } from "./protocol";

/** A byte budget shared by the streams of one connection. */
export interface InboundBudget {
  used: number;
  readonly limit: number;
}

/** What push() made of a message. */
export const enum Pushed {
  OK = 0,
  /** The sender went past its window for this stream. */
  OVER_WINDOW = 1,
  /** The connection's streams hold more than the shared budget. */
  OVER_BUDGET = 2,
}

export interface InboundOwner {
  /** Returns credit (bytes) to the sender. */
  grant(increment: number): void;
  /** The consumer stopped before the end (iterator return()). */
  consumerGone(): void;
  /** A message did not decode; returns the error the consumer sees. */
  decodeFailed(err: unknown): Error;
}

const DONE: IteratorResult<any> = Object.freeze({ value: undefined, done: true }) as IteratorResult<any>;

/** A push reader (see the file comment): its handler, whether it is waiting on a promise, and how it settles. */
interface PushReader<T> {
  onMessage: (message: T) => MessageResult;
  waiting: boolean;
  resolve: () => void;
  reject: (err: Error) => void;
}

export class InboundStream<T> implements AsyncIterableIterator<T>, PushReadable<T> {
  private q: Array<Uint8Array | undefined> = [];
  private head = 0;
  private buffered = 0;
  private unreturned = 0;
  private resolveFn: ((r: IteratorResult<T>) => void) | undefined;
  private rejectFn: ((e: Error) => void) | undefined;
  private ended = false;
  private failure: Error | undefined;
  private gone = false;
  private reader: PushReader<T> | undefined;

  constructor(
    private readonly decode: (bytes: Uint8Array) => T,
    private readonly window: number,
    private readonly limit: number,
    private readonly owner: InboundOwner,
    private readonly budget?: InboundBudget,
  ) {}

  /** A message arrived. Anything but Pushed.OK is a breach by the sender. */
  push(bytes: Uint8Array): Pushed {
    if (this.ended) return Pushed.OK;
    const cost = bytes.length + MESSAGE_COST_OVERHEAD;
    if (this.gone) {
      this.consumed(cost);
      return Pushed.OK;
    }
    const reader = this.reader;
    if (reader !== undefined && !reader.waiting && this.head >= this.q.length) {
      this.consumed(cost);
      this.deliver(reader, bytes);
      // The handler ended the stream (end() from inside it waits for it to return).
      if (this.ended) this.drain(reader);
      return Pushed.OK;
    }
    const resolve = this.resolveFn;
    if (resolve !== undefined) {
      this.consumed(cost);
      let value: T;
      try {
        value = this.decode(bytes);
      } catch (err) {
        // failDecode takes the waiting consumer's reject before clearing it.
        const reject = this.failDecode(err);
        reject(this.failure!);
        return Pushed.OK;
      }
      this.resolveFn = undefined;
      this.rejectFn = undefined;
      resolve({ value, done: false });
      return Pushed.OK;
    }
    this.buffered += cost;
    if (this.buffered > this.limit) return Pushed.OVER_WINDOW;
    if (this.budget !== undefined && (this.budget.used += cost) > this.budget.limit) return Pushed.OVER_BUDGET;
    this.q.push(bytes);
    return Pushed.OK;
  }

  /**
   * No more messages: the stream ended well (no error) or failed. Messages
   * already queued are still delivered, then the end or the error, unless
   * `dropQueued` (a local failure: cancelled, deadline passed), when the
   * error comes next. Idempotent.
   */
  end(err?: Error, dropQueued = false): void {
    if (this.ended) return;
    this.ended = true;
    this.failure = err;
    if (dropQueued) this.drop();
    const resolve = this.resolveFn;
    const reject = this.rejectFn;
    this.resolveFn = undefined;
    this.rejectFn = undefined;
    if (err !== undefined) reject?.(err); else resolve?.(DONE);
    if (this.reader !== undefined && !this.reader.waiting) this.drain(this.reader);
  }

  /** True once end() was called and every queued message was taken. */
  finished(): boolean {
    return this.ended && this.head >= this.q.length;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.reader !== undefined) return Promise.reject(new TypeError("this message stream is being read by push"));
    if (this.head < this.q.length) {
      const bytes = this.take();
      try {
        return Promise.resolve({ value: this.decode(bytes), done: false });
      } catch (err) {
        this.failDecode(err);
        return Promise.reject(this.failure);
      }
    }
    if (this.ended || this.gone) return this.failure !== undefined ? Promise.reject(this.failure) : Promise.resolve(DONE);
    return new Promise<IteratorResult<T>>((resolve, reject) => {
      this.resolveFn = resolve;
      this.rejectFn = reject;
    });
  }

  /**
   * Reads by push (see the file comment): `onMessage` gets each message in order, queued ones
   * first; a promise it returns holds the next one. Resolves at the stream's end, rejects with
   * its error, a decode failure, or what `onMessage` threw or rejected with (the consumer is
   * then gone, as after return()).
   */
  [PUSH_READ](onMessage: (message: T) => MessageResult): Promise<void> {
    if (this.reader !== undefined || this.resolveFn !== undefined) return Promise.reject(new TypeError("this message stream is being read already"));
    if (this.gone && !this.ended) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const reader: PushReader<T> = { onMessage, waiting: false, resolve, reject };
      this.reader = reader;
      this.drain(reader);
    });
  }

  /** Hands queued messages to the push reader while it is not waiting; settles it at the end. */
  private drain(reader: PushReader<T>): void {
    while (this.reader === reader && !reader.waiting && this.head < this.q.length) this.deliver(reader, this.take());
    if (this.reader !== reader || reader.waiting || this.head < this.q.length || !this.ended) return;
    this.reader = undefined;
    if (this.failure !== undefined) reader.reject(this.failure);
    else reader.resolve();
  }

  /** Decodes one message for the push reader and calls it (its credit was counted by the caller). */
  private deliver(reader: PushReader<T>, bytes: Uint8Array): void {
    let value: T;
    try {
      value = this.decode(bytes);
    } catch (err) {
      this.failDecode(err);
      this.reader = undefined;
      reader.reject(this.failure!);
      return;
    }
    // Waiting while it runs too: an end() from inside it settles nothing and delivers nothing before it
    // returns. The callers loop and settle (drain(), push()): no recursion however long the queue.
    reader.waiting = true;
    try {
      const wait = waitOf(reader.onMessage(value));
      if (wait === undefined) {
        reader.waiting = false;
        return;
      }
      wait.then(() => {
        reader.waiting = false;
        this.drain(reader);
      }, (err: unknown) => this.stopReader(reader, err));
    } catch (err) {
      this.stopReader(reader, err);
    }
  }

  /** The push reader threw or rejected: it is gone (as after return()) and settles with that. */
  private stopReader(reader: PushReader<T>, err: unknown): void {
    if (this.reader !== reader) return;
    this.reader = undefined;
    void this.return();
    reader.reject(err as Error);
  }

  /** Takes the oldest queued message off the queue, counting its credit as consumed. */
  private take(): Uint8Array {
    const bytes = this.q[this.head]!;
    this.q[this.head++] = undefined;
    if (this.head === this.q.length) {
      this.q = [];
      this.head = 0;
    }
    const cost = bytes.length + MESSAGE_COST_OVERHEAD;
    this.buffered -= cost;
    if (this.budget !== undefined) this.budget.used -= cost;
    this.consumed(cost);
    return bytes;
  }

  /** The consumer stops: queued messages are dropped (their credit returned) and later ones discarded. */
  return(): Promise<IteratorResult<T>> {
    if (!this.gone) {
      this.gone = true;
      this.drop();
      if (!this.ended) this.owner.consumerGone();
    }
    return Promise.resolve(DONE);
  }

  /** The call is over: queued messages are dropped (giving back their share of the budget); later ones are ignored. */
  discard(): void {
    this.ended = true;
    this.gone = true;
    this.drop();
    const resolve = this.resolveFn;
    this.resolveFn = undefined;
    this.rejectFn = undefined;
    resolve?.(DONE);
    const reader = this.reader;
    this.reader = undefined;
    reader?.resolve();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private drop(): void {
    let bytes = 0;
    for (let i = this.head; i < this.q.length; i++) bytes += this.q[i]!.length + MESSAGE_COST_OVERHEAD;
    this.q = [];
    this.head = 0;
    this.buffered = 0;
    if (this.budget !== undefined) this.budget.used -= bytes;
    if (bytes > 0 && !this.ended) this.consumed(bytes);
  }

  private failDecode(err: unknown): (e: Error) => void {
    const reject = this.rejectFn ?? (() => undefined);
    this.resolveFn = undefined;
    this.rejectFn = undefined;
    this.failure = this.owner.decodeFailed(err);
    this.ended = true;
    this.drop();
    return reject;
  }

  private consumed(cost: number): void {
    this.unreturned += cost;
    if (this.unreturned >= this.window >>> 1) {
      const inc = this.unreturned;
      this.unreturned = 0;
      if (!this.ended) this.owner.grant(inc);
    }
  }
}
