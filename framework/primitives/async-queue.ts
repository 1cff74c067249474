/**
 * A push-driven async iterable: the outgoing side of a client or bidi
 * stream (an agent's messages to the registry or to one servant, a
 * servant's messages to its agent). push() never blocks; the one consumer
 * (the transport) pulls. close() ends the iteration after what was pushed;
 * fail(err) ends it with that error at once, dropping what was queued.
 * Unbounded on purpose: its producers send few, small messages and are
 * paced by their own protocol (heartbeats, replies); a producer that can
 * outrun its consumer must check `size`.
 */
export class AsyncQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private head = 0;
  private waiter: ((r: IteratorResult<T>) => void) | undefined;
  private failWaiter: ((err: unknown) => void) | undefined;
  private closed = false;
  private failed = false;
  private error: unknown;

  /** Queues one item; ignored after close()/fail(). Returns false when ignored. */
  push(item: T): boolean {
    if (this.closed) return false;
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      this.failWaiter = undefined;
      w({ value: item, done: false });
    } else {
      this.items.push(item);
    }
    return true;
  }

  /** Ends the iteration once the queued items are consumed. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const w = this.waiter;
    this.waiter = undefined;
    this.failWaiter = undefined;
    w?.({ value: undefined, done: true });
  }

  /** Ends the iteration with `err` at once (queued items are dropped). No-op once closed. */
  fail(err: unknown): void {
    if (this.closed) return;
    this.closed = true;
    this.failed = true;
    this.error = err;
    this.items.length = 0;
    this.head = 0;
    const f = this.failWaiter;
    this.waiter = undefined;
    this.failWaiter = undefined;
    f?.(err);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Items pushed and not yet consumed. */
  get size(): number {
    return this.items.length - this.head;
  }

  private shift(): T {
    const item = this.items[this.head]!;
    this.items[this.head] = undefined as T;
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items.splice(0, this.head);
      this.head = 0;
    }
    return item;
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        if (this.size > 0) return Promise.resolve({ value: this.shift(), done: false });
        if (this.failed) return Promise.reject(this.error);
        if (this.closed) return Promise.resolve({ value: undefined, done: true });
        return new Promise<IteratorResult<T>>((resolve, reject) => {
          this.waiter = resolve;
          this.failWaiter = reject;
        });
      },
      return: () => {
        this.close();
        this.items.length = 0;
        this.head = 0;
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
