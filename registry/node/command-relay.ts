/**
 * Admin commands across registry processes. Several registries may share one
 * database, and an agent holds its session on exactly one of them; a command
 * sent through another goes through the `commands` table:
 *
 *   sender                          database                  holder of the session
 *   enqueue ───────────────────────> pending
 *                                    taken  <──────────────── claim (poll)
 *                                                              send on the session, await reply
 *                                    done   <──────────────── complete(reply | error code)
 *   poll find(id) until done <──────
 *   remove
 *
 * Both sides poll every `pollMs` (default 150 ms: a relayed command costs at
 * most ~2 x 150 ms of extra latency, and an idle registry one indexed SELECT
 * on a nearly empty table ~7 times a second). The holder only polls while it
 * holds at least one session; the sender only while it waits.
 *
 * Errors keep their class across the hop: the holder stores the code
 * (UNAVAILABLE, DEADLINE_EXCEEDED, COMMAND_FAILED) with the message, and the
 * sender rebuilds the same error.
 */
import { DeadlineExceededError, InvalidArgumentError, NotFoundError, SgridError, Status, UnavailableError, type Logger } from "sgridnext";
import type { CommandRecord, InstanceRecord, NodeNameSet, RegistryStore } from "../store";
import { CommandFailedError } from "./errors";
import type { CommandResult } from "./node-session";

export interface CommandRelayDeps {
  store: RegistryStore;
  /** This registry process (recorded as sender / owner). */
  processId: string;
  log: Logger;
  /** Nodes whose session this process holds (read at every poll: not a copy per poll). */
  localNodes(): NodeNameSet;
  /** Delivers a claimed command on the local session; rejects with a typed error. */
  deliver(cmd: CommandRecord, timeoutMs: number): Promise<CommandResult>;
  /** Poll period, ms. */
  pollMs: number;
}

/** Rebuilds the error a relayed command ended with. */
function relayedError(rec: CommandRecord): SgridError {
  const msg = rec.error ?? `command "${rec.command}" on instance ${rec.instanceId} failed`;
  const data = { node: rec.node, instanceId: rec.instanceId, command: rec.command };
  switch (rec.errorCode) {
    case CommandFailedError.CODE: return new CommandFailedError(msg, data);
    case "UNAVAILABLE": return new UnavailableError(msg, data);
    case "DEADLINE_EXCEEDED": return new DeadlineExceededError(msg, data);
    case "NOT_FOUND": return new NotFoundError(msg, data);
    case "INVALID_ARGUMENT": return new InvalidArgumentError(msg, data);
    default: return new SgridError(rec.errorCode ?? "UNKNOWN", msg, { status: Status.UNKNOWN, data });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref?.());
}

export class CommandRelay {
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private stopped = true;
  private lastError = "";
  /** Commands this process delivered for others / sent through others (diagnostics). */
  readonly stats = { delivered: 0, relayed: 0 };

  constructor(private readonly deps: CommandRelayDeps) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule();
  }

  /** Stops polling; waits for a poll in flight. Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.polling;
  }

  /**
   * Sends a command through the table to whichever process holds the
   * instance's node, and waits for the reply until `timeoutMs` is up.
   */
  async send(inst: InstanceRecord, command: string, args: string, timeoutMs: number): Promise<CommandResult> {
    const { store, processId } = this.deps;
    const rec = await store.commands.enqueue({ instanceId: inst.id, node: inst.node, command, args, timeoutMs, sender: processId });
    this.stats.relayed++;
    const deadline = Date.now() + timeoutMs;
    try {
      for (;;) {
        await sleep(Math.min(this.deps.pollMs, Math.max(1, deadline - Date.now())));
        const now = await store.commands.find(rec.id);
        if (!now) throw new UnavailableError(`command "${command}" to instance ${inst.id} vanished from the relay table`, { node: inst.node });
        if (now.status === "done") {
          if (now.ok) return { ok: true, output: now.output ?? "", error: "" };
          if (now.errorCode === CommandFailedError.CODE) return { ok: false, output: now.output ?? "", error: now.error ?? "" };
          throw relayedError(now);
        }
        if (Date.now() >= deadline) {
          const why = now.status === "pending" ? "no registry process holding its session picked it up" : "the node did not reply";
          throw new DeadlineExceededError(`command "${command}" to instance ${inst.id} on node "${inst.node}" got no reply within ${timeoutMs} ms (${why})`, { node: inst.node, instanceId: inst.id, command });
        }
      }
    } finally {
      await store.commands.remove(rec.id).catch(() => undefined);
    }
  }

  private schedule(): void {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.polling = this.poll().finally(() => {
        this.polling = undefined;
        this.schedule();
      });
    }, this.deps.pollMs);
    this.timer.unref?.();
  }

  /** Claims commands for local nodes and delivers each (concurrently); never throws. */
  private async poll(): Promise<void> {
    const nodes = this.deps.localNodes();
    if (nodes.size === 0) return;
    let claimed: CommandRecord[];
    try {
      claimed = await this.deps.store.commands.claim(nodes, this.deps.processId);
      this.lastError = "";
    } catch (err) {
      const msg = (err as Error)?.message ?? String(err);
      if (msg !== this.lastError) this.deps.log.warn({ err: msg }, "command relay: polling failed");
      this.lastError = msg;
      return;
    }
    for (const cmd of claimed) void this.serve(cmd);
  }

  private async serve(cmd: CommandRecord): Promise<void> {
    // Leave the sender two polls to read the reply before its own deadline.
    const timeoutMs = Math.max(1, cmd.expiresAt - Date.now() - 2 * this.deps.pollMs);
    let reply: { ok: boolean; output?: string; error?: string; errorCode?: string | null };
    try {
      const r = await this.deps.deliver(cmd, timeoutMs);
      reply = r.ok ? { ok: true, output: r.output } : { ok: false, output: r.output, error: r.error, errorCode: CommandFailedError.CODE };
    } catch (err) {
      const e = err instanceof SgridError ? err : new UnavailableError(`delivering command "${cmd.command}" failed`);
      reply = { ok: false, error: e.message, errorCode: e.code };
    }
    this.stats.delivered++;
    try {
      await this.deps.store.commands.complete(cmd.id, reply);
    } catch (err) {
      this.deps.log.warn({ err: (err as Error)?.message, command: cmd.command, instanceId: cmd.instanceId }, "command relay: could not store a reply");
    }
  }
}
