/**
 * Removes package files that no patch references: what a registry leaves
 * behind when it dies after storing a file and before committing its patch
 * row. Only files older than `olderThanMs` are considered (an upload through
 * another registry process sharing the folder may be between the two steps),
 * and each goes through `removeUnused`, which skips keys an upload in this
 * process holds and re-checks the database under the key's lock.
 */
import type { RegistryContext } from "../server/context";

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
  if (removed.length > 0) ctx.log.info({ removed: removed.length, keys: removed }, "removed package files no patch references");
  return removed;
}
