/**
 * A push-driven async iterable: the outgoing side of a bidi stream (the
 * agent's messages to the registry, or to one servant). push() never
 * blocks; the consumer (the transport) pulls. close() ends the iteration
 * after what was pushed; fail(err) ends it with an error at once.
 * Single consumer.
 */
export class AsyncQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private waiter: ((r: IteratorResult<T>) => void) | undefined;
  private failWaiter: ((err: unknown) => void) | undefined;
  private closed = false;
  private error: unknown;

  /** Queues one item; ignored after close()/fail(). Returns false when ignored. */
  push(item: T): boolean {
    if (this.closed) return false;
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      this.failWaiter = undefined;
      w({ value: item, done: false });
    } else this.items.push(item);
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

  /** Ends the iteration with `err` (queued items are dropped). */
  fail(err: unknown): void {
    if (this.closed) return;
    this.closed = true;
    this.error = err;
    this.items.length = 0;
    const f = this.failWaiter;
    this.waiter = undefined;
    this.failWaiter = undefined;
    f?.(err);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get size(): number {
    return this.items.length;
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        if (this.items.length > 0) return Promise.resolve({ value: this.items.shift()!, done: false });
        if (this.error !== undefined) return Promise.reject(this.error);
        if (this.closed) return Promise.resolve({ value: undefined, done: true });
        return new Promise<IteratorResult<T>>((resolve, reject) => {
          this.waiter = resolve;
          this.failWaiter = reject;
        });
      },
      return: () => {
        this.close();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
