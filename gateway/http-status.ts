/**
 * gRPC status -> HTTP status for the JSON route, as grpc-gateway maps them
 * (runtime.HTTPStatusFromCode), so clients written against grpc-gateway read
 * our answers the same way.
 */
import { Status } from "sgridnext";

const HTTP_OF: Readonly<Record<number, number>> = Object.freeze({
  [Status.OK]: 200,
  [Status.CANCELLED]: 499,
  [Status.UNKNOWN]: 500,
  [Status.INVALID_ARGUMENT]: 400,
  [Status.DEADLINE_EXCEEDED]: 504,
  [Status.NOT_FOUND]: 404,
  [Status.ALREADY_EXISTS]: 409,
  [Status.PERMISSION_DENIED]: 403,
  [Status.RESOURCE_EXHAUSTED]: 429,
  [Status.FAILED_PRECONDITION]: 400,
  [Status.ABORTED]: 409,
  [Status.OUT_OF_RANGE]: 400,
  [Status.UNIMPLEMENTED]: 501,
  [Status.INTERNAL]: 500,
  [Status.UNAVAILABLE]: 503,
  [Status.DATA_LOSS]: 500,
  [Status.UNAUTHENTICATED]: 401,
});

/** The HTTP status for a gRPC status; 500 for a number gRPC does not define. */
export function httpStatusOf(status: number): number {
  return HTTP_OF[status] ?? 500;
}
