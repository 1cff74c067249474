/**
 * Removes stored packages that no patch references: what a registry leaves
 * behind when it dies after storing a package and before committing its
 * patch row, and the chunks of uploads that never finished. Only packages
 * older than `olderThanMs` are considered (an upload through another
 * registry process sharing the database may be between the two steps),
 * and each goes through `removeUnused`, which skips keys an upload in this
 * process holds and re-checks the database under the key's lock.
 */
import type { RegistryContext } from "../server/context";
import { DATABASE_STORAGE_DEFAULTS } from "./storage";

export const PACKAGE_SWEEP_DEFAULTS = Object.freeze({
  /** A file must be this old before the sweep may remove it. */
  olderThanMs: 60 * 60 * 1000,
  /** First sweep after start. */
  firstAfterMs: 60 * 1000,
  /** Then every. */
  everyMs: 6 * 60 * 60 * 1000,
});

/** Sweeps once; resolves with the keys removed. */
export async function sweepPackages(ctx: Pick<RegistryContext, "store" | "storage" | "log">, opts: { olderThanMs?: number; now?: number } = {}): Promise<string[]> {
  const cutoff = (opts.now ?? Date.now()) - (opts.olderThanMs ?? PACKAGE_SWEEP_DEFAULTS.olderThanMs);
  const removed: string[] = [];
  for await (const { key, mtimeMs } of ctx.storage.list()) {
    if (mtimeMs > cutoff) continue;
    if (await ctx.storage.removeUnused(key, () => ctx.store.patches.storageKeyInUse(key))) removed.push(key);
  }
  const unfinished = await ctx.storage.sweepUnfinished(DATABASE_STORAGE_DEFAULTS.staleUploadMs);
  if (unfinished > 0) ctx.log.info({ unfinished }, "removed what unfinished uploads left behind");
  if (removed.length > 0) ctx.log.info({ removed: removed.length, keys: removed }, "removed package files no patch references");
  return removed;
}
