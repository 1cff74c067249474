/**
 * One node name, one agent. A hello for a node name is refused
 * (NODE_NAME_IN_USE) while another agent is in session with that name:
 *
 * - here: a session of this process that is open and not silent for longer
 *   than the heartbeat timeout, opened by another agent id (or by an agent
 *   too old to send one);
 * - elsewhere: the node's row says online, with a heartbeat within the
 *   timeout, from another agent id (a session on another registry process).
 *
 * The same agent id may always take its own session over (an agent
 * restarted, or reconnecting before the registry noticed the old stream
 * died). Without this, two agents under one name took each other's session
 * over and over, the node's endpoints flapped, and both started the node's
 * servants.
 */
import type { Logger } from "sgridnext";
import type { NodeRecord } from "../store";
import { NodeNameInUseError } from "./errors";
import type { NodeSession } from "./node-session";

export interface NodeClaim {
  node: string;
  agentId: string;
  peer: string;
  /** This process's session of the node, if any. */
  local: NodeSession | undefined;
  /** The node's row, if any. */
  stored: NodeRecord | undefined;
  now: number;
  heartbeatTimeoutMs: number;
}

function refuse(c: NodeClaim, holder: string): never {
  throw new NodeNameInUseError(
    `node name "${c.node}" is in use: another agent (${holder}) is in session with it; this agent (from ${c.peer}) is refused and the first keeps its session. ` +
      "Give this agent another --name, or stop the other one.",
    { node: c.node },
  );
}

/** Throws NodeNameInUseError when another agent holds the node name (see the file comment). */
export function checkNodeClaim(c: NodeClaim): void {
  const l = c.local;
  if (l && !l.closed && c.now - l.lastSeenAt <= c.heartbeatTimeoutMs) {
    if (c.agentId === "" || l.agentId !== c.agentId) refuse(c, `connected from ${l.peer} since ${new Date(l.openedAt).toISOString()}`);
    return;
  }
  const s = c.stored;
  if (!l && s && s.online && s.agentId !== "" && s.agentId !== c.agentId && s.lastHeartbeatAt !== null && c.now - s.lastHeartbeatAt <= c.heartbeatTimeoutMs) {
    refuse(c, `at ${s.address || "an unknown address"}, last heartbeat ${new Date(s.lastHeartbeatAt).toISOString()}, through another registry process`);
  }
}

/** {@link checkNodeClaim} for a hello: reads the node's row only when no session of it is held here; logs a refusal. */
export async function claimNodeName(c: Omit<NodeClaim, "stored" | "now"> & { find: () => Promise<NodeRecord | undefined>; log: Logger }): Promise<void> {
  try {
    checkNodeClaim({ ...c, stored: c.local ? undefined : await c.find(), now: Date.now() });
  } catch (err) {
    c.log.warn({ node: c.node, peer: c.peer, err: (err as Error).message }, "refused a second agent for a node name in session");
    throw err;
  }
}
