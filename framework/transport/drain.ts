/**
 * Waits until a writable stream drains, closes or errors, or a signal
 * aborts — removing every listener it added (a plain Promise.race of
 * events.once would leak the losers' listeners on each wait).
 */
export function drainOrAbort(stream: NodeJS.EventEmitter, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      stream.removeListener("drain", done);
      stream.removeListener("close", done);
      stream.removeListener("error", done);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    stream.on("drain", done);
    stream.on("close", done);
    stream.on("error", done);
    if (signal) {
      if (signal.aborted) { done(); return; }
      signal.addEventListener("abort", done, { once: true });
    }
  });
}
