/**
 * Admin commands for instances of this node (InstanceCommand from the
 * registry): "agent.tail_log" is answered by the agent itself (the
 * instance's log); every other command goes to the servant over the local
 * channel. The reply always goes back, a failure as its error text.
 */
import type { InstanceCommand } from "sgridnext/gen/sgrid/registry/v1/node";
import { InstanceNotFoundError } from "../errors";
import { parseLogQuery, tailLogFiles } from "../logs";
import type { NodeSupervisor } from "../supervisor";
import { LOCAL_CHANNEL_DEFAULTS, type CommandOutcome, type LocalChannelServer } from "./local-channel";

/** Lines returned by "agent.tail_log" when args names none. */
export const TAIL_LOG_DEFAULT_LINES = 100;

export interface CommandDeps {
  node: string;
  supervisor: NodeSupervisor;
  channel: () => LocalChannelServer;
}

/** Runs one command; never rejects (a failure is the reply). */
export async function runInstanceCommand(cmd: InstanceCommand, d: CommandDeps): Promise<CommandOutcome> {
  const id = String(cmd.instanceId);
  try {
    if (cmd.command === "agent.tail_log") return { ok: true, output: await tailLog(d, id, cmd.args), error: "" };
    if (!d.supervisor.get(id)) throw new InstanceNotFoundError(`instance ${id} is not supervised on node ${d.node}`, { instanceId: id });
    return await d.channel().sendCommand(id, cmd.command, cmd.args, cmd.timeoutMs || LOCAL_CHANNEL_DEFAULTS.commandTimeoutMs);
  } catch (err) {
    const e = err as Error & { code?: string };
    return { ok: false, output: "", error: `${e.code ? `${e.code}: ` : ""}${e.message}` };
  }
}

/** The last lines of an instance's stdout or stderr log ("agent.tail_log"; arguments: nodeagent/logs/log-command.ts). */
export async function tailLog(d: Pick<CommandDeps, "node" | "supervisor">, id: string, args: string): Promise<string> {
  const spec = d.supervisor.get(id)?.desiredSpec;
  if (!spec) throw new InstanceNotFoundError(`instance ${id} is not supervised on node ${d.node}`, { instanceId: id });
  return tailLogFiles(spec.launch, parseLogQuery(args, TAIL_LOG_DEFAULT_LINES));
}
