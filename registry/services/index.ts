/**
 * Public surface of the registry's Config and Patch services and of package
 * storage. Code outside `registry/services/` imports from here only.
 */
import type { Servant } from "sgridnext";
import type { RegistryContext } from "../server/context";
import { ConfigServant } from "./config-servant";
import { PatchServant } from "./patch-servant";
import { PACKAGE_SWEEP_DEFAULTS, sweepPackages } from "./package-sweep";

// ---- package storage ---------------------------------------------------------------
export { DatabaseStorage, DATABASE_STORAGE_DEFAULTS, validateKey, normalizeSha256, type DatabaseStorageOptions } from "./storage";
export { importDiskPackages } from "./package-import";

// ---- config ---------------------------------------------------------------------------
export { mergeConfig, mergeObjects, configFormat, APPEND_MARKER, type ConfigFormat } from "./config-merge";
export { ConfigServant, scopeFromMessage, scopeToMessage, configFileToMessage, configVersionToMessage } from "./config-servant";

// ---- patches ---------------------------------------------------------------------------
export { PatchServant, patchToInfo, DOWNLOAD_CHUNK_BYTES } from "./patch-servant";
export { sweepPackages, PACKAGE_SWEEP_DEFAULTS } from "./package-sweep";

// ---- errors ------------------------------------------------------------------------------
export {
  PatchChecksumMismatchError, PatchSizeMismatchError, PatchTooLargeError, PatchOffsetOutOfRangeError, PatchChunkCorruptError, ConfigLayerInvalidError,
} from "./errors";

// ---- registry parts -----------------------------------------------------------------------
// Typed structurally (a RegistryPart) so that this folder does not import
// server/parts.ts, which imports it.
/** Part "config": Sgrid.Registry.ConfigObj (reads; writes are in the Admin API). */
export function configPart(ctx: RegistryContext): { servants: Record<string, Servant> } {
  return { servants: { ConfigObj: new ConfigServant(ctx) } };
}
/**
 * Part "patch": Sgrid.Registry.PatchObj, and the sweep of package files no
 * patch references (left by a registry that died between storing a file and
 * committing its row): 1 min after start, then every 6 h.
 */
export function patchPart(ctx: RegistryContext): { servants: Record<string, Servant>; start(): Promise<void>; stop(): Promise<void> } {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  const sweep = (): void => {
    running ??= sweepPackages(ctx).catch((err: unknown) => ctx.log.warn({ err: (err as Error).message }, "package sweep failed")).finally(() => (running = undefined));
  };
  return {
    servants: { PatchObj: new PatchServant(ctx) },
    async start() {
      timer = setTimeout(function tick() {
        sweep();
        timer = setTimeout(tick, PACKAGE_SWEEP_DEFAULTS.everyMs).unref();
      }, PACKAGE_SWEEP_DEFAULTS.firstAfterMs).unref();
    },
    async stop() {
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
