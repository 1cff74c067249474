/**
 * The agent's identity: a random id made once per data directory and kept
 * in `state/agent-id`, sent in every hello. The registry lets the same id
 * take its node's session over (this agent restarted) and refuses another id
 * under a node name in session (NODE_NAME_IN_USE: a second agent started
 * with a name already taken).
 */
import * as crypto from "node:crypto";
import * as path from "node:path";
import { readFileIfExists } from "sgridnext";
import { writeStateFile } from "../state";

const ID_PATTERN = /^[0-9a-f]{32}$/;

/** The id kept in `stateDir`, made (and written durably) on first use. */
export async function loadAgentId(stateDir: string): Promise<string> {
  const file = path.join(stateDir, "agent-id");
  const kept = (await readFileIfExists(file))?.trim();
  if (kept && ID_PATTERN.test(kept)) return kept;
  const id = crypto.randomBytes(16).toString("hex");
  await writeStateFile(file, `${id}\n`);
  return id;
}
