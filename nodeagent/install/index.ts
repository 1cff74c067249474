/**
 * Public surface of the node agent's install pieces: the package cache,
 * safe unpacking, manifests and the release layout of each server.
 */

// ---- errors --------------------------------------------------------------------
export * from "./errors";

// ---- names and manifests -----------------------------------------------------------
export {
  NAME_PATTERN, VERSION_PATTERN, SHA256_PATTERN, checkName, checkVersion, checkSha256,
  SERVER_TYPES, MANIFEST_FILE, manifestSchema, type ServerType, type PackageManifest,
} from "sgridnext";
export { readManifest, checkEntry, isInside, type ManifestSource, type ManifestExpectation } from "./manifest";

// ---- download cache ----------------------------------------------------------------
export { PackageCache, type PackageCacheOptions, type PackageFetcher, type PackageRef } from "./package-cache";
export { streamPackage, HANDOFF_BYTES, type StreamedPackage } from "./streamed-package";

// ---- unpacking and releases ----------------------------------------------------------
export { unpackPackage, DEFAULT_UNPACK_LIMITS, type UnpackLimits, type UnpackStats } from "./unpack";
export { resolveLinkTarget, MAX_LINK_HOPS, type LinkResolution } from "./link-resolver";
export {
  ReleaseManager, RELEASE_MANAGER_DEFAULTS,
  type ReleaseManagerOptions, type InstalledRelease, type InstallOptions, type ReleaseInfo,
} from "./release-manager";
export { makeReadOnly, removeTree } from "./tree";
