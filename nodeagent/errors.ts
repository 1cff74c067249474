/**
 * Errors of the node agent.
 *
 * Every class extends the framework's `SgridError` (through `defineError`) with a stable
 * SCREAMING_SNAKE code (listed with its meaning in ERRORS.md under
 * "Node agent"), a transport status and a `retryable` flag. All classes are
 * registered so that an agent error received over the wire (by the registry
 * or admin) is rebuilt as the same class.
 *
 * Caller misuse (a bad option, an invalid instance id passed by code) throws
 * at once; runtime failures (a cgroup write refused, a spawn failing) come
 * back through the returned promise.
 */
import { Status, defineError, registerErrorClass } from "sgridnext";

/** An instance id is not usable as a cgroup or file name (empty, "..", slashes, odd characters). */
export class InvalidInstanceIdError extends defineError("AGENT_INSTANCE_ID_INVALID", Status.INVALID_ARGUMENT) {}

/** A cgroup could not be created, limited, read or removed (cgroupfs refused a write, a file is missing). */
export class CgroupError extends defineError("AGENT_CGROUP_FAILED", Status.FAILED_PRECONDITION) {}

/** Processes were still in an instance's cgroup after every one of them was sent SIGKILL and the wait ran out. */
export class CgroupBusyError extends defineError("AGENT_CGROUP_BUSY", Status.UNAVAILABLE, { retryable: true }) {}

/** A servant process could not be spawned (missing working directory, no permission, no setpriv for run-as). */
export class LaunchError extends defineError("AGENT_LAUNCH_FAILED", Status.FAILED_PRECONDITION) {}

/** A launch spec is invalid (relative log path, NUL in an argument, bad env name, negative uid). */
export class InvalidLaunchSpecError extends defineError("AGENT_LAUNCH_SPEC_INVALID", Status.INVALID_ARGUMENT) {}

/** The agent's durable state file could not be written (disk full, permission). */
export class StateWriteError extends defineError("AGENT_STATE_WRITE_FAILED", Status.INTERNAL, { retryable: true }) {}

/** The agent's durable state file exists but cannot be parsed; it is moved aside and the agent starts empty. */
export class StateCorruptError extends defineError("AGENT_STATE_CORRUPT", Status.DATA_LOSS) {}

/** The named instance is not supervised on this node. */
export class InstanceNotFoundError extends defineError("AGENT_INSTANCE_NOT_FOUND", Status.NOT_FOUND) {}

/** A desired spec given to the supervisor is invalid (unknown state, bad limits, bad timings). */
export class InvalidDesiredSpecError extends defineError("AGENT_DESIRED_SPEC_INVALID", Status.INVALID_ARGUMENT) {}

/** Every error class of the node agent's process core, in code order (the ERRORS.md test walks this list). */
export const AGENT_ERROR_CLASSES = [
  InvalidInstanceIdError, CgroupError, CgroupBusyError, LaunchError, InvalidLaunchSpecError,
  StateWriteError, StateCorruptError, InstanceNotFoundError, InvalidDesiredSpecError,
] as const;

for (const cls of AGENT_ERROR_CLASSES) registerErrorClass(cls);
