/**
 * The node sessions held by this registry process, and what goes with them:
 * heartbeats, observed-state reports, desired-state pushes, offline marking
 * and admin commands (here or through another registry process).
 *
 * Life of a session (see NodeSessionServantImpl for the stream itself):
 *   hello  -> (at most maxConcurrentOpens at once, the rest queued: a connect
 *             storm, ./open-gate.ts) nodes.upsert (online), full
 *             DesiredState, event `node.online`
 *   change feed (instances | servers | patches) -> a new DesiredState when
 *             the node's differs from the last one sent
 *   heartbeat -> samples; usage; written with every other session's at the
 *             next flush (nodes.recordHeartbeats, once a second); host facts
 *             stored at most every factsIntervalMs (jittered), when changed
 *   observed  -> instances.reportObserved; events instance.crash/oom/failed/keepalive
 *   reply     -> the waiting sendCommand
 *   end       -> nothing is written at once: the node stays online until the
 *             sweeper finds it silent for heartbeatTimeoutMs. Its servants
 *             outlive the agent, so their endpoints stay active through an
 *             agent restart or a reconnect to another registry, and a
 *             reconnect within the timeout is seamless.
 *
 * The hub holds the sessions (open, route, detach) and the SessionHub
 * interface (commands, samples); its parts do the rest:
 * ./heartbeats.ts, ./observed-reports.ts, ./desired-pushes.ts,
 * ./offline-sweeper.ts, ./command-relay.ts (commands for sessions held by
 * another registry process), ./node-claim.ts (one agent per node name).
 */
import { FailedPreconditionError, InvalidArgumentError, type Logger, UnavailableError } from "sgridnext";
import type { AgentMessage, NodeHello } from "sgridnext/gen/sgrid/registry/v1/node";
import { type CommandRecord, type RegistryStore, validate } from "../store";
import type { ChangeFeed, RegistrySettings, SessionHub } from "../server/context";
import { CommandRelay } from "./command-relay";
import { DesiredPusher } from "./desired-pushes";
import { DesiredStateBuilder } from "./desired-state";
import { HeartbeatSamples, type InstanceUsageSample } from "./heartbeat-samples";
import { HeartbeatRecorder, nextFactsDue, parseJsonObject } from "./heartbeats";
import { CallStatsSink } from "./call-stats-sink";
import { newHubStats, type AppendEvent } from "./hub-stats";
import { claimNodeName } from "./node-claim";
import { type CommandResult, NodeSession, commandFailed } from "./node-session";
import { ObservedRecorder, observedKey } from "./observed-reports";
import { OfflineGrace } from "./offline-grace";
import { OfflineSweeper } from "./offline-sweeper";
import { KickBatcher, OpenGate } from "./open-gate";

/** Tunables of the hub (the heartbeat interval and timeout come from RegistrySettings). */
export interface NodeSessionHubOptions {
  /** Host facts from heartbeats are written to the node's row at most this often (give or take a quarter), and only when they changed, ms. Default 60000. */
  factsIntervalMs?: number;
  /** Heartbeats are written to the database this often, ms. Default 1000, or the heartbeat interval when shorter. */
  heartbeatFlushMs?: number;
  /** Command relay poll period, ms. Default 150. */
  relayPollMs?: number;
  /** Expired relay commands are pruned this often, ms. Default 60000. */
  pruneIntervalMs?: number;
  /** Longest timeout a command may ask for, ms. Default 600000 (10 min). */
  maxCommandTimeoutMs?: number;
  /** Session opens (hellos) in progress at once; more wait their turn (./open-gate.ts). Default 32. */
  maxConcurrentOpens?: number;
}

export const NODE_SESSION_DEFAULTS = Object.freeze({
  factsIntervalMs: 60_000,
  heartbeatFlushMs: 1000,
  relayPollMs: 150,
  pruneIntervalMs: 60_000,
  maxCommandTimeoutMs: 600_000,
  maxConcurrentOpens: 32,
});

/**
 * Resolves at the next turn of the event loop. On SQLite no query waits on
 * I/O, so writes that follow each other through the store's one connection
 * run as one chain of microtasks however many sessions they come from;
 * during it the registry reads no socket and runs no timer. Opens and
 * observed batches start their writes at a turn of their own.
 */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Observed batches queued per session before the reader waits (see handle()). */
const ORDERED_BACKLOG_MAX = 16;

export interface NodeSessionHubDeps {
  store: RegistryStore;
  changes: ChangeFeed;
  settings: RegistrySettings;
  log: Logger;
  options?: NodeSessionHubOptions;
}

export class NodeSessionHub implements SessionHub {
  private readonly store: RegistryStore;
  private readonly changes: ChangeFeed;
  private readonly settings: RegistrySettings;
  private readonly log: Logger;
  private readonly opts: Readonly<Required<NodeSessionHubOptions>>;
  private readonly sessions = new Map<string, NodeSession>();
  private readonly builder: DesiredStateBuilder;
  private readonly samplesByNode = new HeartbeatSamples();
  private readonly relay: CommandRelay;
  private readonly grace: OfflineGrace;
  private readonly heartbeats: HeartbeatRecorder;
  private readonly observed: ObservedRecorder;
  private readonly pushes: DesiredPusher;
  private readonly sweeper: OfflineSweeper;
  private readonly callStats: CallStatsSink;
  private readonly opening: OpenGate;
  private readonly kicks: KickBatcher;
  private started = false;
  private closed = false;

  /** Counters for diagnostics and the heartbeat benchmark. */
  readonly stats = newHubStats();

  constructor(deps: NodeSessionHubDeps) {
    this.store = deps.store;
    this.changes = deps.changes;
    this.settings = deps.settings;
    this.log = deps.log;
    const o = { ...NODE_SESSION_DEFAULTS, ...Object.fromEntries(Object.entries(deps.options ?? {}).filter(([, v]) => v !== undefined)) };
    for (const [k, v] of Object.entries(o)) {
      if (typeof v !== "number" || !Number.isInteger(v) || v < 1) throw new TypeError(`node session option ${k} must be a positive integer, got ${String(v)}`);
    }
    this.opts = Object.freeze(o);
    if (!(this.settings.heartbeatIntervalMs >= 1) || !(this.settings.heartbeatTimeoutMs >= 1)) {
      throw new TypeError("heartbeatIntervalMs and heartbeatTimeoutMs must be positive");
    }
    this.builder = new DesiredStateBuilder(this.store, this.settings, this.opts.factsIntervalMs);
    this.opening = new OpenGate(this.opts.maxConcurrentOpens);
    this.kicks = new KickBatcher(this.changes);
    this.grace = new OfflineGrace(this.settings.heartbeatTimeoutMs);
    this.relay = new CommandRelay({
      store: this.store,
      processId: this.settings.processId,
      log: this.log,
      localNodes: () => this.sessions,
      deliver: (cmd, timeoutMs) => this.deliverRelayed(cmd, timeoutMs),
      pollMs: this.opts.relayPollMs,
    });
    const appendEvent: AppendEvent = (e) => this.appendEvent(e);
    const common = { store: this.store, stats: this.stats, log: this.log };
    this.heartbeats = new HeartbeatRecorder({
      ...common, samples: this.samplesByNode, grace: this.grace, factsIntervalMs: this.opts.factsIntervalMs,
      flushMs: Math.min(this.opts.heartbeatFlushMs, this.settings.heartbeatIntervalMs),
    });
    this.observed = new ObservedRecorder({ ...common, changes: this.kicks, samples: this.samplesByNode, appendEvent });
    this.callStats = new CallStatsSink({ store: this.store, log: this.log });
    this.pushes = new DesiredPusher({ ...common, changes: this.changes, builder: this.builder, sessions: this.sessions });
    this.sweeper = new OfflineSweeper({
      ...common, changes: this.changes, settings: this.settings, sessions: this.sessions, detach: (x) => this.detach(x),
      grace: this.grace, appendEvent, pruneIntervalMs: this.opts.pruneIntervalMs,
    });
  }

  /** Starts the offline sweeper, the relay poller and the desired-state pushes. Idempotent. */
  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    this.pushes.start();
    this.relay.start();
    this.grace.serving();
    this.sweeper.start();
    this.heartbeats.start();
    this.callStats.start();
  }

  /**
   * Stops the background work and ends every session with UNAVAILABLE
   * (agents reconnect, to this or another registry). Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const pushing = this.pushes.stop();
    // Before the sessions close: the last flush writes what the open ones left.
    const flushing = this.heartbeats.stop();
    const sweeping = Promise.all([this.sweeper.stop(), this.callStats.stop()]);
    for (const s of this.sessions.values()) s.close(new UnavailableError(`registry ${this.settings.processId} is shutting down`));
    this.sessions.clear();
    await this.relay.stop();
    await sweeping;
    await pushing;
    await flushing;
  }

  // ---- SessionHub -------------------------------------------------------------------
  localNodes(): string[] {
    return [...this.sessions.keys()].sort();
  }

  samples(node: string): Array<Record<string, number>> {
    return this.samplesByNode.samples(node);
  }

  usage(instanceId: number): InstanceUsageSample | undefined {
    return this.samplesByNode.usage(instanceId);
  }

  lastSeenAt(node: string): number | undefined {
    const s = this.sessions.get(node);
    return s && !s.closed ? s.lastSeenAt : undefined;
  }

  /**
   * Sends an admin command to an instance and returns the servant's reply.
   * Errors: bad input INVALID_ARGUMENT; unknown instance NOT_FOUND; node
   * offline UNAVAILABLE (naming the node); no reply in time
   * DEADLINE_EXCEEDED; the servant answered with a failure COMMAND_FAILED
   * (FAILED_PRECONDITION) carrying its message.
   */
  async sendCommand(instanceId: number, command: string, args: string, timeoutMs: number): Promise<string> {
    validate.validateId("instance id", instanceId);
    if (typeof command !== "string" || command.length === 0 || command.length > 128) {
      throw new InvalidArgumentError(`invalid command ${JSON.stringify(String(command).slice(0, 80))}: expected 1..128 characters`, { kind: "command" });
    }
    validate.validateText("command args", args ?? "", 65_536);
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > this.opts.maxCommandTimeoutMs) {
      throw new InvalidArgumentError(`invalid command timeout ${timeoutMs}: expected 1..${this.opts.maxCommandTimeoutMs} ms`, { kind: "timeout" });
    }
    const inst = await this.store.instances.get(instanceId);
    const local = this.sessions.get(inst.node);
    let result: CommandResult;
    if (local && !local.closed) {
      result = await local.command(inst.id, command, args ?? "", timeoutMs);
    } else {
      const node = await this.store.nodes.get(inst.node);
      if (!node.online) {
        const last = node.lastHeartbeatAt ? `last heartbeat ${new Date(node.lastHeartbeatAt).toISOString()}` : "never seen";
        throw new UnavailableError(`node "${inst.node}" of instance ${inst.id} (${inst.application}.${inst.server}) is offline (${last})`, { node: inst.node, instanceId: inst.id });
      }
      this.stats.commandsRelayed++;
      result = await this.relay.send(inst, command, args ?? "", timeoutMs);
    }
    if (!result.ok) throw commandFailed(inst.node, inst.id, command, result.error);
    return result.output;
  }

  // ---- used by the servant ----------------------------------------------------------------
  /**
   * Opens a session from a hello, once one of the maxConcurrentOpens slots
   * is free (./open-gate.ts): refuses it when another agent holds the node
   * name (./node-claim.ts), records the node online, replaces (closes) an
   * older session of the same agent held here, queues the node's full
   * desired state (before the event: the agent heartbeats from it on),
   * then logs `node.online`.
   */
  async open(hello: NodeHello, peer: string): Promise<NodeSession> {
    if (this.closed) throw new UnavailableError(`registry ${this.settings.processId} is shutting down`);
    await this.opening.acquire();
    try {
      await nextTurn();
      return await this.openNow(hello, peer);
    } finally {
      this.opening.release();
    }
  }

  private async openNow(hello: NodeHello, peer: string): Promise<NodeSession> {
    if (this.closed) throw new UnavailableError(`registry ${this.settings.processId} is shutting down`);
    const name = validate.validateNodeName(hello.node);
    const hostInfo = parseJsonObject(`host info of node "${name}"`, hello.hostInfoJson, true);
    const agentId = validate.validateText("agent id", hello.agentId ?? "", 64);
    await claimNodeName({ node: name, agentId, peer, local: this.sessions.get(name), find: () => this.store.nodes.find(name), heartbeatTimeoutMs: this.settings.heartbeatTimeoutMs, log: this.log });
    await this.store.nodes.upsert({ name, address: hello.address, agentVersion: hello.agentVersion, hostInfo, agentId, tags: hello.tags ?? [] });
    const session = new NodeSession(name, peer, hello.address, hello.agentVersion);
    session.agentId = agentId;
    session.hostInfo = hostInfo;
    session.hostInfoText = JSON.stringify(hostInfo);
    session.factsTakenAt = Date.now();
    session.factsDueAt = nextFactsDue(session.factsTakenAt, this.opts.factsIntervalMs);
    const old = this.sessions.get(name);
    this.sessions.set(name, session);
    this.stats.sessionsOpened++;
    if (old) {
      old.close(new FailedPreconditionError(`session of node "${name}" replaced by a newer one from ${peer}`, { node: name }));
    }
    this.kicks.kick();
    // The desired state first: the agent starts heartbeating once it has it.
    try {
      const { state, instances } = await this.builder.forNode(name);
      for (const i of instances) session.observedKeys.set(i.id, observedKey(i));
      if (session.sendDesired(state)) this.stats.desiredSent++;
    } catch (err) {
      // Keep the session: the next change (or the agent's reconnect) sends it.
      this.log.warn({ node: name, err: (err as Error)?.message }, "could not build the desired state of a node");
    }
    await this.appendEvent({
      actor: `node:${name}`, kind: "node.online", target: name,
      message: `node "${name}" connected from ${peer} (agent ${hello.agentVersion || "unknown"})`,
      data: { address: hello.address, agentVersion: hello.agentVersion, registry: this.settings.processId },
    });
    this.log.info({ node: name, peer, agentVersion: hello.agentVersion }, "node session opened");
    return session;
  }

  /**
   * Takes one message after hello. Errors about one message are logged, not
   * fatal to the session.
   *
   * Heartbeats (taken in memory, written at the next flush: ./heartbeats.ts)
   * and replies are handled at once, never behind the session's observed
   * batches: under a write backlog a heartbeat must not wait for them, or a
   * busy registry would let live nodes look silent.
   * Observed batches are applied in order on a per-session chain; the returned promise makes the reader wait once more than 16
   * batches are queued (backpressure to the agent through gRPC flow control). Undefined when there is nothing to wait for
   * (no promise, no await per heartbeat).
   */
  handle(session: NodeSession, msg: AgentMessage): Promise<void> | undefined {
    session.lastSeenAt = Date.now();
    const kind = msg.kind;
    if (!kind) return undefined;
    switch (kind.$case) {
      case "heartbeat":
        this.heartbeats.accept(session, kind.value);
        return undefined;
      case "reply":
        session.onReply(kind.value);
        return undefined;
      case "stats":
        this.callStats.accept(session, kind.value);
        return undefined;
      case "observed": {
        const batch = kind.value;
        session.orderedBacklog++;
        session.ordered = session.ordered
          .then(nextTurn) // not in the same microtask chain as other sessions' writes (see nextTurn)
          .then(() => this.observed.record(session, batch))
          .catch((err) => this.log.warn({ node: session.node, err: (err as Error)?.message }, "could not record an observed batch"))
          .finally(() => {
            session.orderedBacklog--;
          });
        return session.orderedBacklog > ORDERED_BACKLOG_MAX ? session.ordered : undefined;
      }
      case "hello":
        return Promise.reject(new InvalidArgumentError(`node "${session.node}" sent hello twice on one session`, { node: session.node }));
    }
  }

  /** Forgets a session that ended (unless a newer one of the same node replaced it). */
  detach(session: NodeSession): void {
    session.close();
    if (this.sessions.get(session.node) === session) {
      this.sessions.delete(session.node);
      this.samplesByNode.forget(session.node, session.instanceIds);
      this.log.info({ node: session.node, peer: session.peer }, "node session ended");
    }
  }

  // ---- commands through the relay -------------------------------------------------------------
  private async deliverRelayed(cmd: CommandRecord, timeoutMs: number): Promise<CommandResult> {
    const s = this.sessions.get(cmd.node);
    if (!s || s.closed) throw new UnavailableError(`node "${cmd.node}" disconnected before the command could be sent`, { node: cmd.node });
    return s.command(cmd.instanceId, cmd.command, cmd.args, timeoutMs);
  }

  /** One offline sweep now (./offline-sweeper.ts); never throws. */
  sweep(): Promise<void> {
    return this.sweeper.sweep();
  }

  private async appendEvent(e: Parameters<AppendEvent>[0]): Promise<void> {
    try {
      await this.store.events.append(e);
    } catch (err) {
      this.log.warn({ kind: e.kind, target: e.target, err: (err as Error)?.message }, "could not log an event");
    }
  }
}
