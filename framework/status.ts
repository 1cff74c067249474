/**
 * Canonical status codes, numerically identical to gRPC's, so that both
 * transports (gRPC and native) carry the same numbers on the wire and no part
 * of Sgrid outside the gRPC transport needs to import @grpc/grpc-js for them.
 */
export enum Status {
  OK = 0,
  CANCELLED = 1,
  UNKNOWN = 2,
  INVALID_ARGUMENT = 3,
  DEADLINE_EXCEEDED = 4,
  NOT_FOUND = 5,
  ALREADY_EXISTS = 6,
  PERMISSION_DENIED = 7,
  RESOURCE_EXHAUSTED = 8,
  FAILED_PRECONDITION = 9,
  ABORTED = 10,
  OUT_OF_RANGE = 11,
  UNIMPLEMENTED = 12,
  INTERNAL = 13,
  UNAVAILABLE = 14,
  DATA_LOSS = 15,
  UNAUTHENTICATED = 16,
}

export function statusName(status: number): string {
  return Status[status] ?? `STATUS_${status}`;
}
