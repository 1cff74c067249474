/**
 * Callers waiting for the next change of something (a snapshot, a map):
 * each wait ends at wakeAll(), when its signal aborts, or at once when the
 * caller says it need not wait. Never rejects.
 */
export class Waiters {
  private list: Array<() => void> = [];

  /** Resolves at the next wakeAll() or when `signal` aborts; at once when `ready`. */
  wait(ready: boolean, signal: AbortSignal): Promise<void> {
    if (ready || signal.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        signal.removeEventListener("abort", done);
        const i = this.list.indexOf(done);
        if (i >= 0) this.list.splice(i, 1);
        resolve();
      };
      signal.addEventListener("abort", done, { once: true });
      this.list.push(done);
    });
  }

  wakeAll(): void {
    const ws = this.list;
    this.list = [];
    for (const w of ws) w();
  }

  get size(): number {
    return this.list.length;
  }
}
