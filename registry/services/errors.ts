/**
 * Errors of the registry's Patch and Config services (and package storage).
 *
 * Generic failures (unknown server, bad name) use the framework's classes;
 * these are the failures a client may want to tell apart by code. Every class
 * is registered so a client rebuilds the same class, and every code is listed
 * in ERRORS.md.
 */
import { Status, defineError, registerErrorClass } from "sgridnext";

/** The uploaded bytes do not hash to the declared sha256; nothing was stored. */
export class PatchChecksumMismatchError extends defineError("PATCH_CHECKSUM_MISMATCH", Status.INVALID_ARGUMENT) {}

/** The uploaded bytes are more or fewer than the declared size; nothing was stored. */
export class PatchSizeMismatchError extends defineError("PATCH_SIZE_MISMATCH", Status.INVALID_ARGUMENT) {}

/** The declared size is over the registry's package limit (refused before reading). */
export class PatchTooLargeError extends defineError("PATCH_TOO_LARGE", Status.RESOURCE_EXHAUSTED) {}

/** The uploaded bytes are not a package: not gzip, gzip damaged or cut off, no tar inside, no valid manifest (package-check.ts). */
export class PatchInvalidError extends defineError("PATCH_INVALID", Status.INVALID_ARGUMENT) {}

/** A download offset past the end of the package. */
export class PatchOffsetOutOfRangeError extends defineError("PATCH_OFFSET_OUT_OF_RANGE", Status.OUT_OF_RANGE) {}

/** A stored package's chunk does not match the sha256 (or length) recorded when it was written: the database row is damaged. Nothing of it is served. */
export class PatchChunkCorruptError extends defineError("PATCH_CHUNK_CORRUPT", Status.DATA_LOSS) {}

/** One level of a `.json` / `.yaml` / `.yml` config file does not parse to an object, so it cannot be merged. */
export class ConfigLayerInvalidError extends defineError("CONFIG_LAYER_INVALID", Status.FAILED_PRECONDITION) {}

for (const cls of [PatchChecksumMismatchError, PatchSizeMismatchError, PatchTooLargeError, PatchInvalidError, PatchOffsetOutOfRangeError, PatchChunkCorruptError, ConfigLayerInvalidError]) {
  registerErrorClass(cls);
}
