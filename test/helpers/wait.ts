/**
 * Polling for a condition in tests: `check` is called every `everyMs` until
 * it returns a value that counts as done (by default any truthy value), which
 * is returned. A throw counts as "not yet" and its message is kept for the
 * timeout error, which names `what`.
 */
export interface PollOptions {
  timeoutMs: number;
  everyMs: number;
  /** Which values mean done. Default: truthy. */
  done?: (v: unknown) => boolean;
}

export type Check<T> = () => T | undefined | false | null | Promise<T | undefined | false | null>;

export async function pollUntil<T>(what: string, check: Check<T>, opts: PollOptions): Promise<T> {
  const done = opts.done ?? ((v: unknown) => Boolean(v));
  const end = Date.now() + opts.timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (done(v)) return v as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ""}`);
    await new Promise((r) => setTimeout(r, opts.everyMs));
  }
}

/**
 * The usual wait of a test: `check` every `everyMs` until it returns a truthy
 * value (returned) or `timeoutMs` passes (an error naming `what`). Every
 * test waits with this (or pollUntil), never with its own loop.
 */
export function waitFor<T>(what: string, check: Check<T>, timeoutMs = 10_000, everyMs = 20): Promise<NonNullable<T>> {
  return pollUntil(what, check, { timeoutMs, everyMs }) as Promise<NonNullable<T>>;
}
