/**
 * Errors of the node agent process itself (the registry session and the
 * local servant channel). Codes are listed in ERRORS.md under
 * "Node agent: session and local channel".
 */
import { Status, defineError, registerErrorClass } from "sgridnext";

/** An admin command was sent to an instance whose servant has no local channel open (not built on the framework, not started yet, or gone). */
export class NoServantChannelError extends defineError("AGENT_NO_CHANNEL", Status.UNAVAILABLE, { retryable: true }) {}

/** A servant did not answer an admin command within its timeout. */
export class ServantCommandTimeoutError extends defineError("AGENT_COMMAND_TIMEOUT", Status.DEADLINE_EXCEEDED, { retryable: true }) {}

/** A servant opened the local channel without a valid hello (unknown instance, wrong token, or another message first). */
export class ChannelAuthError extends defineError("AGENT_CHANNEL_UNAUTHENTICATED", Status.UNAUTHENTICATED) {}

/** Every error class of the agent process, in code order. */
export const AGENT_PROCESS_ERROR_CLASSES = [NoServantChannelError, ServantCommandTimeoutError, ChannelAuthError] as const;

for (const cls of AGENT_PROCESS_ERROR_CLASSES) registerErrorClass(cls);
