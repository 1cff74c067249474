/**
 * Runs async work one at a time per key (an instance id, a package sha256,
 * a file): work for one key waits for the work before it, work for other
 * keys runs at once. Keys without work waiting take no memory.
 */
export class KeyedMutex<K = string> {
  private readonly tails = new Map<K, Promise<unknown>>();

  /**
   * Runs `fn` once every earlier `run` of the same key has settled; resolves
   * or rejects as `fn` does. A rejection never blocks the next run.
   */
  run<T>(key: K, fn: () => Promise<T> | T): Promise<T> {
    const before = this.tails.get(key) ?? Promise.resolve();
    const result = before.then(() => fn(), () => fn());
    const tail = result.then(() => undefined, () => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  /** True while work for `key` runs or waits. */
  isLocked(key: K): boolean {
    return this.tails.has(key);
  }

  /** Keys with work running or waiting. */
  get size(): number {
    return this.tails.size;
  }
}

/**
 * A {@link KeyedMutex} with one key: async work on one object (a release
 * folder, an instance's transitions) runs one at a time, in call order.
 */
export class Mutex {
  private readonly inner = new KeyedMutex<0>();

  /** Runs `fn` once every earlier `run` has settled; resolves or rejects as `fn` does. */
  run<T>(fn: () => Promise<T> | T): Promise<T> {
    return this.inner.run(0, fn);
  }

  /** True while work runs or waits. */
  get isLocked(): boolean {
    return this.inner.isLocked(0);
  }
}
