/**
 * Errors of package download, unpacking and release management.
 *
 * Every class carries a stable code (listed in ERRORS.md under "Node agent:
 * install") and is registered with the framework so that it is rebuilt as
 * the same class when it crosses the wire (agent -> registry -> admin), where
 * its message is the "clear reason" a person reads next to a refused publish.
 */
import { Status, defineError, registerErrorClass } from "sgridnext";

/** The downloaded bytes do not hash to the sha256 the registry announced; nothing was kept. */
export class PackageChecksumError extends defineError("PACKAGE_CHECKSUM_MISMATCH", Status.DATA_LOSS) {}

/** The download delivered more bytes than the announced size; nothing was kept. */
export class PackageSizeError extends defineError("PACKAGE_SIZE_MISMATCH", Status.DATA_LOSS) {}

/** The download failed or ended early; the bytes received so far are kept and the next attempt resumes. */
export class PackageDownloadError extends defineError("PACKAGE_DOWNLOAD_FAILED", Status.UNAVAILABLE, { retryable: true }) {}

/** The package holds an entry that could escape or damage the release (absolute path, "..", outside link, device). */
export class PackageUnsafeError extends defineError("PACKAGE_UNSAFE", Status.FAILED_PRECONDITION) {}

/** The package unpacks to more bytes or entries than the limits allow (checked while streaming). */
export class PackageTooLargeError extends defineError("PACKAGE_TOO_LARGE", Status.RESOURCE_EXHAUSTED) {}

/** The package is not a readable tar or tar.gz (bad gzip stream, bad checksum, truncated). */
export class PackageCorruptError extends defineError("PACKAGE_CORRUPT", Status.DATA_LOSS) {}

/** The package has no usable manifest (sgrid.json / package.json), or it names another server or a missing entry. */
export class PackageManifestError extends defineError("PACKAGE_MANIFEST_INVALID", Status.INVALID_ARGUMENT) {}

/** The release (version) asked for is not installed on this node. */
export class ReleaseNotFoundError extends defineError("RELEASE_NOT_FOUND", Status.NOT_FOUND) {}

for (const cls of [
  PackageChecksumError, PackageSizeError, PackageDownloadError, PackageUnsafeError,
  PackageTooLargeError, PackageCorruptError, PackageManifestError, ReleaseNotFoundError,
]) registerErrorClass(cls);
