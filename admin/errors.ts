/**
 * Errors of the admin app.
 *
 * Errors that come back from the registry keep their own class and code (the
 * framework rebuilds them from the wire); the classes here are the ones only
 * the admin app raises, before anything reaches the registry. Every code is
 * listed in ERRORS.md.
 */
import { Status, defineError, registerErrorClass } from "sgridnext";

/** A mutating request came without the session's CSRF token, with a wrong one, or from another origin. */
export class AdminCsrfError extends defineError("ADMIN_CSRF_INVALID", Status.PERMISSION_DENIED) {}

/** The request's Host is not a name this app answers to (DNS rebinding); see host-check.ts. */
export class AdminHostNotAllowedError extends defineError("ADMIN_HOST_NOT_ALLOWED", Status.PERMISSION_DENIED) {}

/** Too many login attempts from one address, or failed ones for one user name from one address; retry after `data.retryAfterS`. */
export class AdminLoginRateLimitedError extends defineError("ADMIN_LOGIN_RATE_LIMITED", Status.RESOURCE_EXHAUSTED, { retryable: true }) {}

/** An uploaded package is not a gzip (.tgz) file, is empty, or does not match its declared sha256 or size. */
export class AdminUploadInvalidError extends defineError("ADMIN_UPLOAD_INVALID", Status.INVALID_ARGUMENT) {}

/** An uploaded package is larger than the admin app accepts (`maxUploadBytes`). */
export class AdminUploadTooLargeError extends defineError("ADMIN_UPLOAD_TOO_LARGE", Status.RESOURCE_EXHAUSTED) {}

for (const cls of [AdminCsrfError, AdminHostNotAllowedError, AdminLoginRateLimitedError, AdminUploadInvalidError, AdminUploadTooLargeError]) {
  registerErrorClass(cls);
}
