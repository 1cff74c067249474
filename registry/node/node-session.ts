/**
 * One agent's session as the registry holds it: the outgoing side of the
 * bidi stream (desired states and commands) and the commands awaiting a
 * reply.
 *
 * Outgoing messages are pulled by the transport with backpressure. A desired
 * state not yet taken by the transport is replaced by a newer one (only the
 * latest matters: each is the node's full state); commands queue in order
 * after it. Closing the session ends the stream (with an error when given)
 * and fails every command still waiting with UNAVAILABLE.
 */
import { DeadlineExceededError, UnavailableError } from "sgridnext";
import type { CommandReply, DesiredState, RegistryMessage } from "sgridnext/gen/sgrid/registry/v1/node";
import { CommandFailedError } from "./errors";
import { desiredKey } from "./desired-state";
import { type Ring, UsageSlots } from "./heartbeat-samples";

/** What the agent answered to a command. */
export interface CommandResult {
  ok: boolean;
  output: string;
  error: string;
}

interface Waiting {
  resolve(r: CommandResult): void;
  reject(err: unknown): void;
  timer: NodeJS.Timeout;
}

/** What one session's heartbeats since the last flush leave to write (./heartbeats.ts). */
export interface Pending {
  session: NodeSession;
  /** The newest heartbeat's arrival (ms). */
  at: number;
  /** Heartbeats it stands for (counted as recorded when it lands). */
  count: number;
  /** Host info to store (changed facts), if any. */
  hostInfo?: Record<string, unknown>;
}

let nextSerial = 1;

export class NodeSession {
  /** Distinguishes a session from the one that replaced it. */
  readonly serial = nextSerial++;
  readonly openedAt = Date.now();
  /** Instance ids in the last desired state sent (the only ones this agent may report on). */
  instanceIds = new Set<number>();
  /** Application and server of each instance in the last desired state sent. */
  instanceInfo = new Map<number, { application: string; server: string }>();
  /**
   * Observed state of each instance as the store has it (read at hello,
   * then what this session wrote): a report equal to it is not written
   * again, so a reconnect's full batch costs no writes when nothing changed.
   */
  readonly observedKeys = new Map<number, string>();
  /** Observed batches are applied in order on this chain; orderedBacklog counts those queued. */
  ordered: Promise<void> = Promise.resolve();
  orderedBacklog = 0;
  /** When the last message arrived from the agent (ms); the sweeper closes sessions silent too long. */
  lastSeenAt = Date.now();
  /**
   * When the transport took the first desired state for the agent (ms), if
   * it did: agents heartbeat from their first desired state on, so their
   * silence counts from then (./offline-sweeper.ts).
   */
  firstDesiredAt: number | undefined;
  /** Heartbeats taken on this session. */
  heartbeats = 0;
  /** The latest usage figures of its instances (./heartbeat-samples.ts); new with each new set of instances. */
  usageSlots = new UsageSlots();
  /** Its node's sample ring, once a heartbeat made it (saves the lookup by name). */
  ring: Ring | undefined;
  /** Its heartbeats not yet flushed to the database (./heartbeats.ts), if any. */
  unflushed: Pending | undefined;
  /** The agent's identity from its hello ("" from agents older than it). */
  agentId = "";
  /** When the host facts of a heartbeat are next taken to be stored (ms; jittered, see ./heartbeats.ts). */
  factsDueAt = 0;
  /** When host facts were last taken (ms): the hello's, then those of heartbeats that were due. */
  factsTakenAt = 0;
  /** Host facts from hello, merged with the heartbeats' taken since. */
  hostInfo: Record<string, unknown> = {};
  /** JSON of hostInfo as last stored (a heartbeat's facts equal to it are not written again). */
  hostInfoText = "{}";
  private lastKey: string | null = null;
  private desired: DesiredState | null = null;
  private readonly commands: RegistryMessage[] = [];
  private readonly waiting = new Map<number, Waiting>();
  private nextRequestId = 1;
  private wake: (() => void) | undefined;
  private ended = false;
  private endError: unknown;

  constructor(
    readonly node: string,
    readonly peer: string,
    readonly address: string,
    readonly agentVersion: string,
  ) {}

  get closed(): boolean {
    return this.ended;
  }

  /** Commands sent and not yet answered. */
  get pendingCommands(): number {
    return this.waiting.size;
  }

  /**
   * Queues `state` unless it equals the last one queued. Returns whether it
   * was queued.
   */
  sendDesired(state: DesiredState): boolean {
    if (this.ended) return false;
    const key = desiredKey(state);
    if (key === this.lastKey) return false;
    this.lastKey = key;
    this.instanceIds = new Set(state.instances.map((i) => i.instanceId));
    // Slots are checked against instanceIds when an id is first put in one: a new set starts them afresh.
    this.usageSlots = new UsageSlots();
    this.instanceInfo = new Map(state.instances.map((i) => [i.instanceId, { application: i.application, server: i.server }]));
    this.desired = state;
    this.poke();
    return true;
  }

  /**
   * Sends a command to one of this node's instances and waits for the reply.
   * DEADLINE_EXCEEDED when none comes within `timeoutMs`; UNAVAILABLE when
   * the session ends first. Resolves with the reply as given (ok or not).
   */
  command(instanceId: number, command: string, args: string, timeoutMs: number): Promise<CommandResult> {
    if (this.ended) return Promise.reject(this.gone());
    const requestId = this.nextRequestId++;
    return new Promise<CommandResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(requestId);
        reject(new DeadlineExceededError(`command "${command}" to instance ${instanceId} on node "${this.node}" got no reply within ${timeoutMs} ms`, { node: this.node, instanceId, command }));
      }, timeoutMs);
      timer.unref?.();
      this.waiting.set(requestId, { resolve, reject, timer });
      this.commands.push({ kind: { $case: "command", value: { requestId, instanceId, command, args, timeoutMs } } });
      this.poke();
    });
  }

  /** Routes a reply from the agent; unknown request ids (late replies) are ignored. */
  onReply(reply: CommandReply): void {
    const w = this.waiting.get(reply.requestId);
    if (!w) return;
    this.waiting.delete(reply.requestId);
    clearTimeout(w.timer);
    w.resolve({ ok: reply.ok, output: reply.output, error: reply.error });
  }

  /**
   * Ends the session: the outgoing stream finishes (with `err` when given,
   * which the agent receives as the call's status) and every waiting command
   * fails UNAVAILABLE. Idempotent.
   */
  close(err?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.endError = err;
    this.desired = null;
    this.commands.length = 0;
    for (const [id, w] of this.waiting) {
      clearTimeout(w.timer);
      w.reject(this.gone());
      this.waiting.delete(id);
    }
    this.poke();
  }

  /** The outgoing stream, for the transport. Single consumer. */
  async *messages(): AsyncGenerator<RegistryMessage> {
    for (;;) {
      if (this.ended) {
        if (this.endError !== undefined) throw this.endError;
        return;
      }
      if (this.desired) {
        const value = this.desired;
        this.desired = null;
        this.firstDesiredAt ??= Date.now();
        yield { kind: { $case: "desired", value } };
        continue;
      }
      const cmd = this.commands.shift();
      if (cmd) {
        yield cmd;
        continue;
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  private poke(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private gone(): UnavailableError {
    return new UnavailableError(`node "${this.node}" disconnected before replying`, { node: this.node });
  }
}

/** The error for a reply with ok=false: the servant's message, typed. */
export function commandFailed(node: string, instanceId: number, command: string, message: string): CommandFailedError {
  return new CommandFailedError(`command "${command}" on instance ${instanceId} (node "${node}") failed: ${message || "no reason given"}`, { node, instanceId, command });
}
