/**
 * The command relay table: admin commands for instances whose node holds its
 * session on another registry process (see CommandRepo). Rows live for the
 * command's timeout at most; nothing here bumps a revision topic, since the
 * relay polls the table itself (an indexed SELECT on `status` of a table
 * that is nearly always empty).
 */
import { InvalidArgumentError } from "sgridnext";
import type { CommandInput, CommandRepo, CommandReplyInput, NodeNameSet } from "../base";
import type { CommandRecord, CommandStatus } from "../records";
import { validateCount, validateId, validateNodeName, validateText } from "../validate";
import { type StoreContext, bool, insertedId, num, numOrNull, strOrNull } from "./context";

/** Longest command name and argument text accepted. */
const MAX_COMMAND = 128;
const MAX_ARGS = 65_536;
/** Longest reply output kept (MEDIUMTEXT holds 16 MiB; a reply is a status text, not a file). */
const MAX_OUTPUT = 4 * 1024 * 1024;

function toCommand(r: any): CommandRecord {
  return {
    id: num(r.id),
    instanceId: num(r.instance_id),
    node: r.node,
    command: r.command,
    args: r.args,
    timeoutMs: num(r.timeout_ms),
    sender: r.sender,
    owner: strOrNull(r.owner),
    status: r.status as CommandStatus,
    ok: r.ok == null ? null : bool(r.ok),
    output: strOrNull(r.output),
    error: strOrNull(r.error),
    errorCode: strOrNull(r.error_code),
    createdAt: num(r.created_at),
    expiresAt: num(r.expires_at),
    doneAt: numOrNull(r.done_at),
  };
}

export class KnexCommandRepo implements CommandRepo {
  constructor(private readonly ctx: StoreContext) {}

  async enqueue(input: CommandInput): Promise<CommandRecord> {
    const instanceId = validateId("instance id", input.instanceId);
    const node = validateNodeName(input.node);
    const command = validateText("command", input.command, MAX_COMMAND);
    if (command.length === 0) throw new InvalidArgumentError("invalid command: must not be empty", { kind: "command" });
    const args = validateText("command args", input.args ?? "", MAX_ARGS);
    const timeoutMs = validateId("command timeout", input.timeoutMs);
    const sender = validateText("command sender", input.sender, 128);
    const now = this.ctx.now();
    return this.ctx.write(async (trx) => {
      const id = insertedId(await trx("commands").insert({
        instance_id: instanceId, node, command, args, timeout_ms: timeoutMs, sender, status: "pending",
        created_at: now, expires_at: now + timeoutMs,
      }));
      return toCommand(await trx("commands").where({ id }).first());
    });
  }

  async claim(nodes: NodeNameSet, owner: string, limit = 100): Promise<CommandRecord[]> {
    if (nodes.size === 0) return [];
    validateText("command owner", owner, 128);
    return this.ctx.read(async (db) => {
      const now = this.ctx.now();
      // Cheap first look (index on status), filtered here: the node set may hold thousands of names.
      const pending = await db("commands").where({ status: "pending" }).andWhere("expires_at", ">", now).orderBy("id").limit(limit).select("id", "node");
      const mine: CommandRecord[] = [];
      for (const p of pending) {
        if (!nodes.has(p.node)) continue;
        // Conditional update: exactly one process sees 1 affected row.
        const n = await db("commands").where({ id: p.id, status: "pending" }).update({ status: "taken", owner });
        if (num(n) !== 1) continue;
        const row = await db("commands").where({ id: p.id }).first();
        if (row) mine.push(toCommand(row));
      }
      return mine;
    });
  }

  async complete(id: number, reply: CommandReplyInput): Promise<void> {
    validateId("command id", id);
    const output = reply.output ?? "";
    const fields = {
      status: "done",
      ok: reply.ok === true,
      output: output.length > MAX_OUTPUT ? output.slice(0, MAX_OUTPUT) : output,
      error: reply.error == null ? null : reply.error.slice(0, 8192),
      error_code: reply.errorCode == null ? null : validateText("command error code", reply.errorCode, 64),
      done_at: this.ctx.now(),
    };
    await this.ctx.read((db) => db("commands").where({ id }).update(fields));
  }

  async find(id: number): Promise<CommandRecord | undefined> {
    validateId("command id", id);
    return this.ctx.read(async (db) => {
      const row = await db("commands").where({ id }).first();
      return row ? toCommand(row) : undefined;
    });
  }

  async remove(id: number): Promise<void> {
    validateId("command id", id);
    await this.ctx.read((db) => db("commands").where({ id }).del());
  }

  async prune(before: number): Promise<number> {
    validateCount("prune time", before);
    return this.ctx.read(async (db) => num(await db("commands").where("expires_at", "<", before).del()));
  }
}
