/**
 * Errors of the registry's node part (sessions and the admin command relay).
 * Registered with the framework so that a caller of Admin.SendCommand gets
 * the same class back; listed in ERRORS.md.
 */
import { Status, defineError, registerErrorClass } from "sgridnext";

/**
 * The servant (or the agent) answered an admin command with a failure
 * (`CommandReply.ok = false`). The message names the command and the
 * instance and carries the servant's own message. Not retryable: the command
 * reached its target.
 */
export class CommandFailedError extends defineError("COMMAND_FAILED", Status.FAILED_PRECONDITION) {}

/**
 * An agent said hello under a node name another agent (another agent id) is
 * in session with, on this registry process or another. The first session
 * is kept; the message names the node and where the first agent connected
 * from. Retryable only once the first agent is gone.
 */
export class NodeNameInUseError extends defineError("NODE_NAME_IN_USE", Status.ALREADY_EXISTS) {}

registerErrorClass(CommandFailedError);
registerErrorClass(NodeNameInUseError);
