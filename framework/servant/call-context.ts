/**
 * The call being served, carried across awaits with AsyncLocalStorage so that
 * proxies called from inside a servant method inherit its deadline (and
 * cancellation, and trace headers) without the user passing anything.
 *
 * Turned on lazily. On Node 20, once any AsyncLocalStorage has run, every
 * promise in the process pays async hooks (an init hook and the execution
 * resource bookkeeping around each reaction): measured ~8 % of a native
 * servant's CPU at 64 calls in flight (`npm run bench transport`, server
 * profile). A process that has nothing to read the context with pays that
 * for nothing, so calls enter the storage only once something can read it:
 * the first proxy made (proxy/invoker.ts calls enableCallContext) or the
 * first currentCallContext() from user code.
 *
 * Until then each call's context is also kept for its synchronous part (the
 * servant method up to its first await): a proxy made lazily there, on the
 * first call (`this.peer ??= communicator.stringToProxy(...)`), and called
 * at once, still inherits the deadline. What is not covered: a call already
 * running when the first proxy appears, which reaches that proxy only after
 * an await; its later calls, and every call that starts after, inherit as
 * before. Storage and synchronous part never disagree: the synchronous slot
 * is set only while a handler runs outside the storage.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { ServerContext } from "../transport/base";

const storage = new AsyncLocalStorage<ServerContext>();

/** Whether calls enter the storage (something in the process can read it). */
let enabled = false;
/** The call whose handler is running synchronously right now, entered while the storage was off. */
let syncCurrent: ServerContext | undefined;

/** Runs `fn` with `ctx` as the current incoming call. */
export function runWithCallContext<T>(ctx: ServerContext, fn: () => T): T {
  if (enabled) return storage.run(ctx, fn);
  const outer = syncCurrent;
  syncCurrent = ctx;
  try {
    return fn();
  } finally {
    syncCurrent = outer;
  }
}

/** runWithCallContext(ctx, () => fn(ctx, a, b, c, d)) without that closure (the unary dispatch, once per call). */
export function callInCallContext<A, B, C, D>(ctx: ServerContext, fn: (ctx: ServerContext, a: A, b: B, c: C, d: D) => void, a: A, b: B, c: C, d: D): void {
  if (enabled) {
    storage.run(ctx, fn, ctx, a, b, c, d);
    return;
  }
  const outer = syncCurrent;
  syncCurrent = ctx;
  try {
    fn(ctx, a, b, c, d);
  } finally {
    syncCurrent = outer;
  }
}

/**
 * From now on calls carry their context across awaits. Idempotent; called
 * when the first proxy is made (a proxy reads the context of the call it is
 * called from).
 */
export function enableCallContext(): void {
  enabled = true;
}

/** Whether calls carry their context across awaits (for tests and the lazy-runtime check). */
export function callContextEnabled(): boolean {
  return enabled;
}

/**
 * The incoming call being served by the current async flow, if any. The
 * first use turns the call context on (see above).
 */
export function currentCallContext(): ServerContext | undefined {
  if (!enabled) {
    enabled = true;
    return syncCurrent;
  }
  return storage.getStore() ?? syncCurrent;
}
