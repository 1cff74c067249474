/**
 * Errors of the node agent.
 *
 * Every class extends the framework's `SgridError` with a stable
 * SCREAMING_SNAKE code (listed with its meaning in ERRORS.md under
 * "Node agent"), a transport status and a `retryable` flag. All classes are
 * registered so that an agent error received over the wire (by the registry
 * or admin) is rebuilt as the same class.
 *
 * Caller misuse (a bad option, an invalid instance id passed by code) throws
 * at once; runtime failures (a cgroup write refused, a spawn failing) come
 * back through the returned promise.
 */
import { SgridError, Status, registerErrorClass } from "../framework";

type Data = Record<string, unknown>;

/** An instance id is not usable as a cgroup or file name (empty, "..", slashes, odd characters). */
export class InvalidInstanceIdError extends SgridError {
  static readonly CODE = "AGENT_INSTANCE_ID_INVALID";
  constructor(message: string, data?: Data) {
    super(InvalidInstanceIdError.CODE, message, { status: Status.INVALID_ARGUMENT, data });
  }
}

/** A cgroup could not be created, limited, read or removed (cgroupfs refused a write, a file is missing). */
export class CgroupError extends SgridError {
  static readonly CODE = "AGENT_CGROUP_FAILED";
  constructor(message: string, data?: Data) {
    super(CgroupError.CODE, message, { status: Status.FAILED_PRECONDITION, data });
  }
}

/** Processes were still in an instance's cgroup after every one of them was sent SIGKILL and the wait ran out. */
export class CgroupBusyError extends SgridError {
  static readonly CODE = "AGENT_CGROUP_BUSY";
  constructor(message: string, data?: Data) {
    super(CgroupBusyError.CODE, message, { status: Status.UNAVAILABLE, retryable: true, data });
  }
}

/** A servant process could not be spawned (missing working directory, no permission, no setpriv for run-as). */
export class LaunchError extends SgridError {
  static readonly CODE = "AGENT_LAUNCH_FAILED";
  constructor(message: string, data?: Data) {
    super(LaunchError.CODE, message, { status: Status.FAILED_PRECONDITION, data });
  }
}

/** A launch spec is invalid (relative log path, NUL in an argument, bad env name, negative uid). */
export class InvalidLaunchSpecError extends SgridError {
  static readonly CODE = "AGENT_LAUNCH_SPEC_INVALID";
  constructor(message: string, data?: Data) {
    super(InvalidLaunchSpecError.CODE, message, { status: Status.INVALID_ARGUMENT, data });
  }
}

/** The agent's durable state file could not be written (disk full, permission). */
export class StateWriteError extends SgridError {
  static readonly CODE = "AGENT_STATE_WRITE_FAILED";
  constructor(message: string, data?: Data) {
    super(StateWriteError.CODE, message, { status: Status.INTERNAL, retryable: true, data });
  }
}

/** The agent's durable state file exists but cannot be parsed; it is moved aside and the agent starts empty. */
export class StateCorruptError extends SgridError {
  static readonly CODE = "AGENT_STATE_CORRUPT";
  constructor(message: string, data?: Data) {
    super(StateCorruptError.CODE, message, { status: Status.DATA_LOSS, data });
  }
}

/** The named instance is not supervised on this node. */
export class InstanceNotFoundError extends SgridError {
  static readonly CODE = "AGENT_INSTANCE_NOT_FOUND";
  constructor(message: string, data?: Data) {
    super(InstanceNotFoundError.CODE, message, { status: Status.NOT_FOUND, data });
  }
}

/** A desired spec given to the supervisor is invalid (unknown state, bad limits, bad timings). */
export class InvalidDesiredSpecError extends SgridError {
  static readonly CODE = "AGENT_DESIRED_SPEC_INVALID";
  constructor(message: string, data?: Data) {
    super(InvalidDesiredSpecError.CODE, message, { status: Status.INVALID_ARGUMENT, data });
  }
}

/** Every error class of the node agent's process core, in code order (the ERRORS.md test walks this list). */
export const AGENT_ERROR_CLASSES = [
  InvalidInstanceIdError, CgroupError, CgroupBusyError, LaunchError, InvalidLaunchSpecError,
  StateWriteError, StateCorruptError, InstanceNotFoundError, InvalidDesiredSpecError,
] as const;

for (const cls of AGENT_ERROR_CLASSES) registerErrorClass(cls);
