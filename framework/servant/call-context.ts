/**
 * The call being served, carried across awaits with AsyncLocalStorage so that
 * proxies called from inside a servant method inherit its deadline (and
 * cancellation) without the user passing anything.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { ServerContext } from "../transport/base";

const storage = new AsyncLocalStorage<ServerContext>();

/** Runs `fn` with `ctx` as the current incoming call. */
export function runWithCallContext<T>(ctx: ServerContext, fn: () => T): T {
  return storage.run(ctx, fn);
}

/** The incoming call being served by the current async flow, if any. */
export function currentCallContext(): ServerContext | undefined {
  return storage.getStore();
}
