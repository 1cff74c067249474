/**
 * The one boundary where errors become HTTP answers: `{ error: { code,
 * message, field? } }` with a status from the error's gRPC status. Known
 * errors (SgridError, from the registry or raised here) keep their message;
 * anything else is a 500 "internal error" and goes to the log only.
 */
import { SgridError, Status } from "sgridnext";

const HTTP_OF_STATUS: Partial<Record<Status, number>> = {
  [Status.INVALID_ARGUMENT]: 400,
  [Status.OUT_OF_RANGE]: 400,
  // A package that does not match its declared sha256/size: the client's data.
  [Status.DATA_LOSS]: 400,
  [Status.UNAUTHENTICATED]: 401,
  [Status.PERMISSION_DENIED]: 403,
  [Status.NOT_FOUND]: 404,
  [Status.ALREADY_EXISTS]: 409,
  [Status.FAILED_PRECONDITION]: 409,
  [Status.ABORTED]: 409,
  [Status.RESOURCE_EXHAUSTED]: 429,
  [Status.CANCELLED]: 499,
  [Status.UNIMPLEMENTED]: 501,
  [Status.UNAVAILABLE]: 503,
  [Status.DEADLINE_EXCEEDED]: 504,
};

export interface HttpError {
  status: number;
  body: { error: { code: string; message: string; field?: string; retryAfterS?: number } };
}

export function toHttpError(err: unknown): HttpError {
  if (err instanceof SgridError) {
    let status = HTTP_OF_STATUS[err.status] ?? 500;
    if (err.code === "ADMIN_UPLOAD_TOO_LARGE" || err.code === "PACKAGE_TOO_LARGE") status = 413;
    const internal = status === 500;
    const body: HttpError["body"] = {
      error: { code: internal ? "INTERNAL" : err.code, message: internal ? "internal error" : err.message },
    };
    const field = err.data?.field;
    if (typeof field === "string") body.error.field = field;
    const retry = err.data?.retryAfterS;
    if (typeof retry === "number") body.error.retryAfterS = retry;
    return { status, body };
  }
  return { status: 500, body: { error: { code: "INTERNAL", message: "internal error" } } };
}
