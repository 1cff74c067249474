/**
 * Errors of package download, unpacking and release management.
 *
 * Every class carries a stable code (listed in ERRORS.md under "Node agent:
 * install") and is registered with the framework so that it is rebuilt as
 * the same class when it crosses the wire (agent -> registry -> admin), where
 * its message is the "clear reason" a person reads next to a refused publish.
 */
import { SgridError, Status, registerErrorClass } from "../../framework";

/** The downloaded bytes do not hash to the sha256 the registry announced; nothing was kept. */
export class PackageChecksumError extends SgridError {
  static readonly CODE = "PACKAGE_CHECKSUM_MISMATCH";
  constructor(message: string, data?: Record<string, unknown>) {
    super(PackageChecksumError.CODE, message, { status: Status.DATA_LOSS, data });
  }
}

/** The download delivered more bytes than the announced size; nothing was kept. */
export class PackageSizeError extends SgridError {
  static readonly CODE = "PACKAGE_SIZE_MISMATCH";
  constructor(message: string, data?: Record<string, unknown>) {
    super(PackageSizeError.CODE, message, { status: Status.DATA_LOSS, data });
  }
}

/** The download failed or ended early; the bytes received so far are kept and the next attempt resumes. */
export class PackageDownloadError extends SgridError {
  static readonly CODE = "PACKAGE_DOWNLOAD_FAILED";
  constructor(message: string, data?: Record<string, unknown>, cause?: unknown) {
    super(PackageDownloadError.CODE, message, { status: Status.UNAVAILABLE, retryable: true, data, cause });
  }
}

/** The package holds an entry that could escape or damage the release (absolute path, "..", outside link, device). */
export class PackageUnsafeError extends SgridError {
  static readonly CODE = "PACKAGE_UNSAFE";
  constructor(message: string, data?: Record<string, unknown>) {
    super(PackageUnsafeError.CODE, message, { status: Status.FAILED_PRECONDITION, data });
  }
}

/** The package unpacks to more bytes or entries than the limits allow (checked while streaming). */
export class PackageTooLargeError extends SgridError {
  static readonly CODE = "PACKAGE_TOO_LARGE";
  constructor(message: string, data?: Record<string, unknown>) {
    super(PackageTooLargeError.CODE, message, { status: Status.RESOURCE_EXHAUSTED, data });
  }
}

/** The package is not a readable tar or tar.gz (bad gzip stream, bad checksum, truncated). */
export class PackageCorruptError extends SgridError {
  static readonly CODE = "PACKAGE_CORRUPT";
  constructor(message: string, data?: Record<string, unknown>, cause?: unknown) {
    super(PackageCorruptError.CODE, message, { status: Status.DATA_LOSS, data, cause });
  }
}

/** The package has no usable manifest (sgrid.json / package.json), or it names another server or a missing entry. */
export class PackageManifestError extends SgridError {
  static readonly CODE = "PACKAGE_MANIFEST_INVALID";
  constructor(message: string, data?: Record<string, unknown>) {
    super(PackageManifestError.CODE, message, { status: Status.INVALID_ARGUMENT, data });
  }
}

/** The release (version) asked for is not installed on this node. */
export class ReleaseNotFoundError extends SgridError {
  static readonly CODE = "RELEASE_NOT_FOUND";
  constructor(message: string, data?: Record<string, unknown>) {
    super(ReleaseNotFoundError.CODE, message, { status: Status.NOT_FOUND, data });
  }
}

for (const cls of [
  PackageChecksumError, PackageSizeError, PackageDownloadError, PackageUnsafeError,
  PackageTooLargeError, PackageCorruptError, PackageManifestError, ReleaseNotFoundError,
]) registerErrorClass(cls);
