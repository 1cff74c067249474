/**
 * Errors of the framework, and the base every Sgrid error extends.
 *
 * Every error has a stable SCREAMING_SNAKE `code`, a transport `status`
 * (gRPC numbering), a `retryable` flag and optional JSON-safe `data`.
 * Errors cross the wire as status + message + the metadata keys
 * `sgrid-error-code` / `sgrid-error-data`, and the client side rebuilds the
 * same class when that class is registered (all built-in classes are, and
 * services register their own with {@link registerErrorClass}).
 *
 * Every code defined anywhere in Sgrid is listed in ERRORS.md; a test keeps
 * the two in step.
 */
import { Status, statusName } from "./status";

export interface SgridErrorOptions {
  status?: Status;
  retryable?: boolean;
  data?: Record<string, unknown>;
  cause?: unknown;
}

export class SgridError extends Error {
  /** Stable, documented machine-readable code. */
  readonly code: string;
  /** Transport status this error maps to. */
  readonly status: Status;
  /** True when repeating the same call may succeed (on another endpoint or later). */
  readonly retryable: boolean;
  /** Optional structured detail, JSON-safe; never secrets. */
  readonly data?: Record<string, unknown>;

  constructor(code: string, message: string, options: SgridErrorOptions = {}) {
    super(message, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = new.target.name;
    this.code = code;
    this.status = options.status ?? Status.UNKNOWN;
    this.retryable = options.retryable ?? false;
    if (options.data !== undefined) this.data = options.data;
  }

  toJSON(): Record<string, unknown> {
    return { name: this.name, code: this.code, status: statusName(this.status), message: this.message, retryable: this.retryable, data: this.data };
  }
}

type ErrorCtor = new (message: string, data?: Record<string, unknown>, cause?: unknown) => SgridError;

/**
 * A base class bound to one code and status, for every part's error classes:
 * `export class FooError extends defineError("FOO_FAILED", Status.UNAVAILABLE, { retryable: true }) {}`.
 * Instances take `(message, data?, cause?)`; the class carries `CODE`.
 */
export function defineError(code: string, status: Status, options: { retryable?: boolean } = {}): ErrorCtor & { readonly CODE: string } {
  const retryable = options.retryable ?? false;
  const cls = class extends SgridError {
    static readonly CODE = code;
    constructor(message: string, data?: Record<string, unknown>, cause?: unknown) {
      super(code, message, { status, retryable, data, cause });
    }
  };
  return cls;
}

const define = (code: string, status: Status, retryable = false) => defineError(code, status, { retryable });

// ---- framework errors -------------------------------------------------------
/** The caller passed a value the callee cannot accept. */
export class InvalidArgumentError extends define("INVALID_ARGUMENT", Status.INVALID_ARGUMENT) {}
/** The named thing does not exist. */
export class NotFoundError extends define("NOT_FOUND", Status.NOT_FOUND) {}
/** The thing to create exists already. */
export class AlreadyExistsError extends define("ALREADY_EXISTS", Status.ALREADY_EXISTS) {}
/** Credentials are missing or wrong. */
export class UnauthenticatedError extends define("UNAUTHENTICATED", Status.UNAUTHENTICATED) {}
/** Credentials are right but do not allow this. */
export class PermissionDeniedError extends define("PERMISSION_DENIED", Status.PERMISSION_DENIED) {}
/** The system is not in a state where this can be done. */
export class FailedPreconditionError extends define("FAILED_PRECONDITION", Status.FAILED_PRECONDITION) {}
/** A limit was hit (size, rate, count). */
export class ResourceExhaustedError extends define("RESOURCE_EXHAUSTED", Status.RESOURCE_EXHAUSTED) {}
/** The call's deadline passed before it completed. */
export class DeadlineExceededError extends define("DEADLINE_EXCEEDED", Status.DEADLINE_EXCEEDED) {}
/** The call was cancelled by the caller (AbortSignal, or the peer went away). */
export class CancelledError extends define("CANCELLED", Status.CANCELLED) {}
/** The peer could not be reached, or went away; safe to retry elsewhere. */
export class UnavailableError extends define("UNAVAILABLE", Status.UNAVAILABLE, true) {}
/** The operation was aborted (a concurrency conflict, a transaction abort); worth retrying at a higher level. */
export class AbortedError extends define("ABORTED", Status.ABORTED, true) {}
/** A value is past the valid range (an offset past the end, a page past the last one). */
export class OutOfRangeError extends define("OUT_OF_RANGE", Status.OUT_OF_RANGE) {}
/** Unrecoverable data loss or corruption. */
export class DataLossError extends define("DATA_LOSS", Status.DATA_LOSS) {}
/** The method is not implemented by the servant. */
export class UnimplementedError extends define("UNIMPLEMENTED", Status.UNIMPLEMENTED) {}
/** Something unexpected failed on the other side; details are in its log, not on the wire. */
export class InternalError extends define("INTERNAL", Status.INTERNAL) {}
/** An error status without a Sgrid code (a plain gRPC peer, or an unknown code). */
export class UnknownError extends define("UNKNOWN", Status.UNKNOWN) {}
/** An endpoint string (Tars form or host:port list) did not parse. */
export class EndpointParseError extends define("ENDPOINT_PARSE", Status.INVALID_ARGUMENT) {}
/** A proxy has no endpoint to call (none configured, or none resolved). */
export class NoEndpointError extends define("NO_ENDPOINT", Status.UNAVAILABLE, true) {}
/** A listening socket could not be bound (port in use, no permission). */
export class BindError extends define("BIND_FAILED", Status.UNAVAILABLE) {}
/** Code generation failed (bad .proto, missing import, unknown option). */
export class CodegenError extends define("CODEGEN_FAILED", Status.INVALID_ARGUMENT) {}
/** A configuration value (flag, env, options object) is invalid. */
export class ConfigError extends define("CONFIG_INVALID", Status.INVALID_ARGUMENT) {}

// ---- registry of classes, for rebuilding errors received from the wire -------
const byCode = new Map<string, ErrorCtor>();

/** Registers an error class so that errors with its code are rebuilt as that class on receipt. */
export function registerErrorClass(cls: ErrorCtor & { readonly CODE: string }): void {
  byCode.set(cls.CODE, cls);
}

for (const cls of [
  InvalidArgumentError, NotFoundError, AlreadyExistsError, UnauthenticatedError, PermissionDeniedError,
  FailedPreconditionError, ResourceExhaustedError, DeadlineExceededError, CancelledError, UnavailableError,
  AbortedError, OutOfRangeError, DataLossError, UnimplementedError, InternalError, UnknownError, EndpointParseError, NoEndpointError, BindError, CodegenError, ConfigError,
]) registerErrorClass(cls);

/** Every registered code; the documentation test compares this with ERRORS.md. */
export function registeredErrorCodes(): string[] {
  return [...byCode.keys()].sort();
}

/** The code each status is rebuilt as when the peer sent no Sgrid code (a plain gRPC peer): every status 1..16 has its class. */
const STATUS_DEFAULT_CODE: Partial<Record<Status, string>> = {
  [Status.CANCELLED]: "CANCELLED",
  [Status.UNKNOWN]: "UNKNOWN",
  [Status.INVALID_ARGUMENT]: "INVALID_ARGUMENT",
  [Status.DEADLINE_EXCEEDED]: "DEADLINE_EXCEEDED",
  [Status.NOT_FOUND]: "NOT_FOUND",
  [Status.ALREADY_EXISTS]: "ALREADY_EXISTS",
  [Status.PERMISSION_DENIED]: "PERMISSION_DENIED",
  [Status.RESOURCE_EXHAUSTED]: "RESOURCE_EXHAUSTED",
  [Status.FAILED_PRECONDITION]: "FAILED_PRECONDITION",
  [Status.ABORTED]: "ABORTED",
  [Status.OUT_OF_RANGE]: "OUT_OF_RANGE",
  [Status.UNIMPLEMENTED]: "UNIMPLEMENTED",
  [Status.INTERNAL]: "INTERNAL",
  [Status.UNAVAILABLE]: "UNAVAILABLE",
  [Status.DATA_LOSS]: "DATA_LOSS",
  [Status.UNAUTHENTICATED]: "UNAUTHENTICATED",
};

/**
 * Rebuilds an error received from the wire. With a registered code, the same
 * class; with an unregistered code, a plain SgridError carrying that code and
 * status; without a code, the class for the status. A status outside 1..16
 * (an error sent as OK, or a number gRPC does not define) is UNKNOWN.
 */
export function errorFromWire(status: number, message: string, code?: string, data?: Record<string, unknown>): SgridError {
  if (!(status >= 1 && status <= 16)) {
    return new UnknownError(`${message} (the peer sent status ${status}, which is not an error status)`, data);
  }
  const wanted = code ?? STATUS_DEFAULT_CODE[status as Status] ?? "UNKNOWN";
  const cls = byCode.get(wanted);
  if (cls) {
    const err = new cls(message, data);
    if (err.status === status || code === undefined) return err;
  }
  return new SgridError(wanted, message, { status: status as Status, retryable: status === Status.UNAVAILABLE || status === Status.ABORTED, data });
}

/**
 * Server-side boundary: what goes on the wire for a thrown value. A SgridError
 * goes as it is; anything else becomes INTERNAL with a generic message (its
 * details go to the servant's log, never to the caller).
 */
export function errorToWire(err: unknown): { status: Status; message: string; code: string; data?: Record<string, unknown> } {
  if (err instanceof SgridError) {
    return { status: err.status === Status.OK ? Status.UNKNOWN : err.status, message: err.message, code: err.code, data: err.data };
  }
  return { status: Status.INTERNAL, message: "internal error", code: "INTERNAL" };
}

/** Maps a Node system error from listen() to a BindError naming the address. */
export function bindErrorFrom(err: NodeJS.ErrnoException, host: string, port: number): BindError {
  const where = `${host}:${port}`;
  if (err.code === "EADDRINUSE") return new BindError(`port ${port} is already in use (${where})`, { host, port });
  if (err.code === "EACCES") return new BindError(`no permission to listen on ${where}`, { host, port });
  if (err.code === "EADDRNOTAVAIL") return new BindError(`address ${host} is not available on this machine (${where})`, { host, port });
  return new BindError(`cannot listen on ${where}: ${err.message}`, { host, port });
}
