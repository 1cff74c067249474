/**
 * Public surface of the registry's Config and Patch services and of package
 * storage. Code outside `registry/services/` imports from here only.
 */
import type { Servant } from "../../framework";
import type { RegistryContext } from "../server/context";
import { ConfigServant } from "./config-servant";
import { PatchServant } from "./patch-servant";

// ---- package storage ---------------------------------------------------------------
export { LocalDiskStorage, LOCAL_DISK_DEFAULTS, validateKey, normalizeSha256 } from "./storage";

// ---- config ---------------------------------------------------------------------------
export { mergeConfig, mergeObjects, configFormat, APPEND_MARKER, type ConfigFormat } from "./config-merge";
export { ConfigServant, scopeFromMessage, scopeToMessage, configFileToMessage, configVersionToMessage } from "./config-servant";

// ---- patches ---------------------------------------------------------------------------
export { PatchServant, patchToInfo, DOWNLOAD_CHUNK_BYTES } from "./patch-servant";

// ---- errors ------------------------------------------------------------------------------
export {
  PatchChecksumMismatchError, PatchSizeMismatchError, PatchTooLargeError, PatchOffsetOutOfRangeError, ConfigLayerInvalidError,
} from "./errors";

// ---- registry parts -----------------------------------------------------------------------
// Typed structurally (a RegistryPart) so that this folder does not import
// server/parts.ts, which imports it.
/** Part "config": Sgrid.Registry.ConfigObj (reads; writes are in the Admin API). */
export function configPart(ctx: RegistryContext): { servants: Record<string, Servant> } {
  return { servants: { ConfigObj: new ConfigServant(ctx) } };
}
/** Part "patch": Sgrid.Registry.PatchObj. */
export function patchPart(ctx: RegistryContext): { servants: Record<string, Servant> } {
  return { servants: { PatchObj: new PatchServant(ctx) } };
}
