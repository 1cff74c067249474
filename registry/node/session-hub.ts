/**
 * The node sessions held by this registry process, and what goes with them:
 * heartbeats, observed-state reports, desired-state pushes, offline marking
 * and admin commands (here or through another registry process).
 *
 * Life of a session (see NodeSessionServantImpl for the stream itself):
 *   hello  -> nodes.upsert (online), event `node.online`, full DesiredState
 *   change feed (instances | servers | patches) -> a new DesiredState when
 *             the node's differs from the last one sent
 *   heartbeat -> nodes.heartbeat; samples; usage; host facts stored at most
 *             every factsIntervalMs
 *   observed  -> instances.reportObserved; events instance.crash/oom/failed/keepalive
 *   reply     -> the waiting sendCommand
 *   end       -> nothing is written at once: the node stays online until the
 *             sweeper finds it silent for heartbeatTimeoutMs. Its servants
 *             outlive the agent, so their endpoints stay active through an
 *             agent restart or a reconnect to another registry, and a
 *             reconnect within the timeout is seamless.
 *
 * The sweeper (every heartbeatIntervalMs, on every registry process) marks
 * silent nodes offline (store.nodes.markStale: atomic, so one process logs
 * the `node.offline` event), closes local sessions silent for as long (a
 * half-open TCP connection), and prunes expired relay commands. It never
 * marks a node whose session this process holds, and holds back after a
 * start and around a database outage (./offline-grace.ts).
 */
import {
  DeadlineExceededError, FailedPreconditionError, InvalidArgumentError, type Logger, NotFoundError, UnavailableError,
} from "sgridnext";
import type { AgentMessage, Heartbeat, InstanceObserved, NodeHello, ObservedBatch } from "sgridnext/gen/sgrid/registry/v1/node";
import { OBSERVED_STATES, type CommandRecord, type ObservedReport, type ObservedState, type RegistryStore, type Topic, validate } from "../store";
import type { ChangeFeed, RegistrySettings, SessionHub } from "../server/context";
import { CommandRelay } from "./command-relay";
import { DesiredStateBuilder } from "./desired-state";
import { HeartbeatSamples, type InstanceUsageSample, sampleOf } from "./heartbeat-samples";
import { type CommandResult, NodeSession, commandFailed } from "./node-session";
import { OfflineGrace } from "./offline-grace";
import { checkNodeClaim } from "./node-claim";

/** Tunables of the hub (the heartbeat interval and timeout come from RegistrySettings). */
export interface NodeSessionHubOptions {
  /** Host facts from heartbeats are written to the node's row at most this often, ms. Default 60000 (a `nodes` revision bump per node per minute, not per heartbeat). */
  factsIntervalMs?: number;
  /** Command relay poll period, ms. Default 150. */
  relayPollMs?: number;
  /** Expired relay commands are pruned this often, ms. Default 60000. */
  pruneIntervalMs?: number;
  /** Longest timeout a command may ask for, ms. Default 600000 (10 min). */
  maxCommandTimeoutMs?: number;
}

export const NODE_SESSION_DEFAULTS = Object.freeze({
  factsIntervalMs: 60_000,
  relayPollMs: 150,
  pruneIntervalMs: 60_000,
  maxCommandTimeoutMs: 600_000,
});

/** Largest facts / host info JSON accepted from an agent (bytes of text); larger ones are ignored. */
const MAX_FACTS_JSON = 64 * 1024;
/** Observed events that are logged, as `instance.<event>`. */
const INSTANCE_EVENTS = new Set(["crash", "oom", "failed", "keepalive", "install_failed"]);
/** Desired states depend on these topics. */
const DESIRED_TOPICS: readonly Topic[] = ["instances", "servers", "patches"];
/** Observed batches queued per session before the reader waits (see handle()). */
const ORDERED_BACKLOG_MAX = 16;
/** Up to this many local nodes, a refresh reads each node's instances; above, all instances at once. */
const PER_NODE_REFRESH_MAX = 8;

export interface NodeSessionHubDeps {
  store: RegistryStore;
  changes: ChangeFeed;
  settings: RegistrySettings;
  log: Logger;
  options?: NodeSessionHubOptions;
}

function parseJsonObject(kind: string, text: string, strict: boolean): Record<string, unknown> {
  if (text === "") return {};
  const fail = (why: string): Record<string, unknown> => {
    if (strict) throw new InvalidArgumentError(`invalid ${kind}: ${why}`, { kind });
    return {};
  };
  if (text.length > MAX_FACTS_JSON) return fail(`longer than ${MAX_FACTS_JSON} characters`);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return fail("not valid JSON");
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return fail("expected a JSON object");
  return v as Record<string, unknown>;
}

/** Equal for equal observed states (what reportObserved would write, minus the time). */
function observedKey(r: { state?: string; observedState?: string; pid?: number | null; patchId?: number | null; observedPatchId?: number | null; restarts?: number; lastExitReason?: string | null }): string {
  return JSON.stringify([r.state ?? r.observedState, r.pid ?? null, r.patchId ?? r.observedPatchId ?? null, r.restarts ?? 0, r.lastExitReason ?? null]);
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
  /** `App.Server#version` -> patch id (patch versions never change meaning). */
  private readonly patchIds = new Map<string, number>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;
  private lastPruneAt = 0;
  private refreshing: Promise<void> | undefined;
  private refreshAgain = false;
  private started = false;
  private closed = false;
  private lastSweepError = "";
  private lastHeartbeatError = "";
  /**
   * Desired state can change only with the `instances` (desired state, spec,
   * placement), `servers` or `patches` topics. Agents' observed-state reports,
   * by far the most frequent instance writes, bump the separate `observed`
   * topic, so they never cause a refresh (a read of every instance of every
   * local node). An earlier version counted this hub's own writes instead,
   * which raced with the change feed's poll and could skip a real change.
   */
  private readonly onChange = (topics: Set<Topic>): void => {
    if (topics.has("patches")) this.builder.forgetPatches();
    if (topics.has("servers")) this.builder.forgetServers();
    if (DESIRED_TOPICS.some((t) => topics.has(t))) this.refresh();
  };

  /** Counters for diagnostics and the heartbeat benchmark. */
  readonly stats = {
    sessionsOpened: 0,
    heartbeatsReceived: 0,
    heartbeatsRecorded: 0,
    heartbeatErrors: 0,
    observedReports: 0,
    desiredSent: 0,
    nodesMarkedOffline: 0,
    /** Commands sent through the relay table (their node's session is held elsewhere). */
    commandsRelayed: 0,
  };

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
    this.builder = new DesiredStateBuilder(this.store, this.settings);
    this.grace = new OfflineGrace(this.settings.heartbeatTimeoutMs);
    this.relay = new CommandRelay({
      store: this.store,
      processId: this.settings.processId,
      log: this.log,
      localNodes: () => new Set(this.sessions.keys()),
      deliver: (cmd, timeoutMs) => this.deliverRelayed(cmd, timeoutMs),
      pollMs: this.opts.relayPollMs,
    });
  }

  /** Starts the offline sweeper, the relay poller and the desired-state pushes. Idempotent. */
  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    this.changes.on("change", this.onChange);
    this.relay.start();
    this.grace.serving();
    this.scheduleSweep();
  }

  /**
   * Stops the background work and ends every session with UNAVAILABLE
   * (agents reconnect, to this or another registry). Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.changes.off("change", this.onChange);
    if (this.sweepTimer) clearTimeout(this.sweepTimer);
    this.sweepTimer = undefined;
    for (const s of this.sessions.values()) s.close(new UnavailableError(`registry ${this.settings.processId} is shutting down`));
    this.sessions.clear();
    await this.relay.stop();
    await this.sweeping;
    await this.refreshing;
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
   * Opens a session from a hello: refuses it when another agent holds the
   * node name (./node-claim.ts), records the node online, logs
   * `node.online`, replaces (closes) an older session of the same agent
   * held here, and queues the node's full desired state.
   */
  async open(hello: NodeHello, peer: string): Promise<NodeSession> {
    if (this.closed) throw new UnavailableError(`registry ${this.settings.processId} is shutting down`);
    const name = validate.validateNodeName(hello.node);
    const hostInfo = parseJsonObject(`host info of node "${name}"`, hello.hostInfoJson, true);
    const agentId = validate.validateText("agent id", hello.agentId ?? "", 64);
    const local = this.sessions.get(name);
    try {
      checkNodeClaim({ node: name, agentId, peer, local, stored: local ? undefined : await this.store.nodes.find(name), now: Date.now(), heartbeatTimeoutMs: this.settings.heartbeatTimeoutMs });
    } catch (err) {
      this.log.warn({ node: name, peer, err: (err as Error).message }, "refused a second agent for a node name in session");
      throw err;
    }
    await this.store.nodes.upsert({ name, address: hello.address, agentVersion: hello.agentVersion, hostInfo, agentId });
    const session = new NodeSession(name, peer, hello.address, hello.agentVersion);
    session.agentId = agentId;
    session.hostInfo = hostInfo;
    session.factsStoredAt = Date.now();
    const old = this.sessions.get(name);
    this.sessions.set(name, session);
    this.stats.sessionsOpened++;
    if (old) {
      old.close(new FailedPreconditionError(`session of node "${name}" replaced by a newer one from ${peer}`, { node: name }));
    }
    this.changes.kick();
    await this.appendEvent({
      actor: `node:${name}`, kind: "node.online", target: name,
      message: `node "${name}" connected from ${peer} (agent ${hello.agentVersion || "unknown"})`,
      data: { address: hello.address, agentVersion: hello.agentVersion, registry: this.settings.processId },
    });
    try {
      const { state, instances } = await this.builder.forNode(name);
      for (const i of instances) session.observedKeys.set(i.id, observedKey(i));
      if (session.sendDesired(state)) this.stats.desiredSent++;
    } catch (err) {
      // Keep the session: the next change (or the agent's reconnect) sends it.
      this.log.warn({ node: name, err: (err as Error)?.message }, "could not build the desired state of a node");
    }
    this.log.info({ node: name, peer, agentVersion: hello.agentVersion }, "node session opened");
    return session;
  }

  /**
   * Takes one message after hello. Errors about one message are logged, not
   * fatal to the session.
   *
   * Heartbeats and replies are handled at once, not behind the session's
   * observed batches: under a write backlog (a connect storm on SQLite) a
   * heartbeat must not wait for its own session's earlier batch, or a busy
   * registry would mark live nodes offline. One heartbeat write per session
   * is in flight at a time; heartbeats arriving meanwhile are coalesced into
   * the next write (all counted as recorded when it lands: the newest time
   * is what matters). Observed batches are applied in order on a per-session
   * chain; the returned promise makes the reader wait once more than 16
   * batches are queued (backpressure to the agent through gRPC flow control).
   */
  handle(session: NodeSession, msg: AgentMessage): Promise<void> {
    session.lastSeenAt = Date.now();
    const kind = msg.kind;
    if (!kind) return Promise.resolve();
    switch (kind.$case) {
      case "heartbeat":
        this.acceptHeartbeat(session, kind.value);
        return Promise.resolve();
      case "reply":
        session.onReply(kind.value);
        return Promise.resolve();
      case "observed": {
        const batch = kind.value;
        session.orderedBacklog++;
        session.ordered = session.ordered
          .then(() => this.onObserved(session, batch))
          .catch((err) => this.log.warn({ node: session.node, err: (err as Error)?.message }, "could not record an observed batch"))
          .finally(() => {
            session.orderedBacklog--;
          });
        return session.orderedBacklog > ORDERED_BACKLOG_MAX ? session.ordered : Promise.resolve();
      }
      case "hello":
        return Promise.reject(new InvalidArgumentError(`node "${session.node}" sent hello twice on one session`, { node: session.node }));
    }
  }

  private acceptHeartbeat(session: NodeSession, hb: Heartbeat): void {
    this.stats.heartbeatsReceived++;
    if (session.heartbeatBusy) {
      session.pendingHeartbeat = hb;
      session.pendingHeartbeats++;
      return;
    }
    session.heartbeatBusy = true;
    void (async () => {
      let cur: Heartbeat | undefined = hb;
      let count = 1;
      try {
        while (cur && !session.closed) {
          await this.onHeartbeat(session, cur, count);
          cur = session.pendingHeartbeat;
          count = session.pendingHeartbeats;
          session.pendingHeartbeat = undefined;
          session.pendingHeartbeats = 0;
        }
      } finally {
        session.heartbeatBusy = false;
      }
    })();
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

  // ---- messages ----------------------------------------------------------------------------
  /** Records `count` heartbeats (coalesced) whose newest is `hb`; never throws. */
  private async onHeartbeat(session: NodeSession, hb: Heartbeat, count: number): Promise<void> {
    const now = Date.now();
    const node = session.node;
    try {
      try {
        await this.store.nodes.heartbeat(node, now);
      } catch (err) {
        // Removed by an operator while connected: the agent is alive, so it is back.
        if (!(err instanceof NotFoundError)) throw err;
        await this.store.nodes.upsert({ name: node, address: session.address, agentVersion: session.agentVersion, hostInfo: session.hostInfo });
      }
      this.stats.heartbeatsRecorded += count;
      this.lastHeartbeatError = "";
    } catch (err) {
      this.stats.heartbeatErrors++;
      this.grace.databaseFailed();
      const msg = (err as Error)?.message ?? String(err);
      if (msg !== this.lastHeartbeatError) this.log.warn({ node, err: msg }, "could not record a heartbeat");
      this.lastHeartbeatError = msg;
    }
    const facts = parseJsonObject("facts", hb.factsJson, false);
    this.samplesByNode.add(node, sampleOf(now, hb.load1, facts));
    for (const u of hb.usage) {
      if (session.instanceIds.has(u.instanceId)) this.samplesByNode.setUsage(u.instanceId, u.memoryBytes, u.cpuCoresUsed);
    }
    if (now - session.factsStoredAt >= this.opts.factsIntervalMs && Object.keys(facts).length > 0) {
      session.factsStoredAt = now;
      session.hostInfo = { ...session.hostInfo, ...facts };
      try {
        await this.store.nodes.upsert({ name: node, address: session.address, agentVersion: session.agentVersion, hostInfo: session.hostInfo });
      } catch (err) {
        this.log.warn({ node, err: (err as Error)?.message }, "could not store host facts");
      }
    }
  }

  /**
   * Records a batch: checks and resolves every entry first (reads), writes
   * them in one transaction (one commit and one `instances` revision bump
   * per batch, not per instance), then logs the classified events. When the
   * transaction fails (an instance undeployed meanwhile), entries are
   * written one by one so that the others still land.
   */
  private async onObserved(session: NodeSession, batch: ObservedBatch): Promise<void> {
    const ready: Array<{ o: InstanceObserved; info: { application: string; server: string }; report: ObservedReport }> = [];
    for (const o of batch.instances) {
      try {
        const r = await this.prepareReport(session, o);
        if (r) ready.push(r);
      } catch (err) {
        this.log.warn({ node: session.node, instanceId: o.instanceId, err: (err as Error)?.message }, "could not record an observed state");
      }
    }
    if (ready.length === 0) return;
    let written = ready;
    try {
      await this.store.transaction(async (tx) => {
        for (const r of ready) await tx.instances.reportObserved(r.o.instanceId, r.report);
      });
      for (const r of ready) session.observedKeys.set(r.o.instanceId, observedKey(r.report));
    } catch {
      written = [];
      for (const r of ready) {
        try {
          await this.store.instances.reportObserved(r.o.instanceId, r.report);
              session.observedKeys.set(r.o.instanceId, observedKey(r.report));
          written.push(r);
        } catch (err) {
          this.log.warn({ node: session.node, instanceId: r.o.instanceId, err: (err as Error)?.message }, "could not record an observed state");
        }
      }
    }
    this.stats.observedReports += written.length;
    if (written.length > 0) this.changes.kick();
    for (const { o, info } of written) {
      if (o.startedAt > 0) this.samplesByNode.setStartedAt(o.instanceId, o.startedAt);
      if (o.event !== "") await this.logInstanceEvent(session.node, o, info);
    }
  }

  /** Checks one observed entry and turns it into a store report; undefined (logged) when it is to be ignored. */
  private async prepareReport(session: NodeSession, o: InstanceObserved): Promise<{ o: InstanceObserved; info: { application: string; server: string }; report: ObservedReport } | undefined> {
    const node = session.node;
    if (!(OBSERVED_STATES as readonly string[]).includes(o.state)) {
      this.log.warn({ node, instanceId: o.instanceId, state: o.state }, "ignored an observed state with an unknown state");
      return undefined;
    }
    let info = session.instanceInfo.get(o.instanceId);
    if (!info) {
      // Not in the last desired state sent: check the store (placed a moment ago), refuse another node's.
      const inst = await this.store.instances.get(o.instanceId).catch((err) => {
        if (err instanceof NotFoundError || err instanceof InvalidArgumentError) return undefined;
        throw err;
      });
      if (!inst || inst.node !== node) {
        this.log.warn({ node, instanceId: o.instanceId }, "ignored an observed state for an instance not placed on this node");
        return undefined;
      }
      info = { application: inst.application, server: inst.server };
    }
    const patchId = o.version > 0 ? await this.patchIdOf(info.application, info.server, o.version) : null;
    const report: ObservedReport = {
      state: o.state as ObservedState,
      pid: o.pid > 0 ? o.pid : null,
      patchId,
      restarts: o.restarts,
      lastExitReason: o.lastExitReason === "" ? null : o.lastExitReason.slice(0, 4096),
    };
    // Unchanged since the store last had it (a reconnect's full batch): nothing to write.
    if (o.event === "" && session.observedKeys.get(o.instanceId) === observedKey(report)) return undefined;
    return { o, info, report };
  }

  /** Logs `instance.<event>` for a classified event: pid, restarts, version and the exit reason only, never env or args. */
  private async logInstanceEvent(node: string, o: InstanceObserved, info: { application: string; server: string }): Promise<void> {
    if (!INSTANCE_EVENTS.has(o.event)) {
      this.log.warn({ node, instanceId: o.instanceId, event: o.event }, "ignored an unknown instance event");
      return;
    }
    const target = `${info.application}.${info.server}@${node}`;
    const reason = o.lastExitReason.slice(0, 500);
    await this.appendEvent({
      actor: `node:${node}`, kind: `instance.${o.event}`, target,
      message: `${target} (instance ${o.instanceId}): ${o.event}${reason ? `: ${reason}` : ""}`,
      data: { instanceId: o.instanceId, state: o.state, pid: o.pid, restarts: o.restarts, version: o.version, reason },
    });
  }

  /** Patch id of a version number; null (with a warning) for a version the registry does not know. */
  private async patchIdOf(application: string, server: string, version: number): Promise<number | null> {
    const key = `${application}.${server}#${version}`;
    const hit = this.patchIds.get(key);
    if (hit !== undefined) return hit;
    try {
      const p = await this.store.patches.getByVersion(application, server, version);
      if (this.patchIds.size > 100_000) this.patchIds.clear();
      this.patchIds.set(key, p.id);
      return p.id;
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      this.log.warn({ application, server, version }, "an agent reports a patch version the registry does not know");
      return null;
    }
  }

  // ---- desired-state pushes --------------------------------------------------------------------
  /** Rebuilds the desired state of every local node and sends the changed ones. Coalesced. */
  private refresh(): void {
    if (this.closed) return;
    if (this.refreshing) {
      this.refreshAgain = true;
      return;
    }
    this.refreshing = this.refreshNow()
      .catch((err) => this.log.warn({ err: (err as Error)?.message }, "could not refresh desired states (retried on the next change)"))
      .finally(() => {
        this.refreshing = undefined;
        if (this.refreshAgain) {
          this.refreshAgain = false;
          this.refresh();
        }
      });
  }

  private async refreshNow(): Promise<void> {
    const nodes = new Set(this.sessions.keys());
    if (nodes.size === 0) return;
    const all = nodes.size > PER_NODE_REFRESH_MAX ? await this.store.instances.list() : undefined;
    const states = await this.builder.forNodes(nodes, all);
    for (const [node, state] of states) {
      const s = this.sessions.get(node);
      if (s && s.sendDesired(state)) this.stats.desiredSent++;
    }
  }

  // ---- commands through the relay -------------------------------------------------------------
  private async deliverRelayed(cmd: CommandRecord, timeoutMs: number): Promise<CommandResult> {
    const s = this.sessions.get(cmd.node);
    if (!s || s.closed) throw new UnavailableError(`node "${cmd.node}" disconnected before the command could be sent`, { node: cmd.node });
    return s.command(cmd.instanceId, cmd.command, cmd.args, timeoutMs);
  }

  // ---- offline sweeper --------------------------------------------------------------------------
  private scheduleSweep(): void {
    if (this.closed) return;
    this.sweepTimer = setTimeout(() => {
      this.sweepTimer = undefined;
      this.sweeping = this.sweep().finally(() => {
        this.sweeping = undefined;
        this.scheduleSweep();
      });
    }, this.settings.heartbeatIntervalMs);
    this.sweepTimer.unref?.();
  }

  /** One sweep; never throws (database errors are logged once per kind). */
  async sweep(): Promise<void> {
    const now = Date.now();
    const timeout = this.settings.heartbeatTimeoutMs;
    for (const s of [...this.sessions.values()]) {
      if (now - s.lastSeenAt > timeout) {
        s.close(new DeadlineExceededError(`no message from node "${s.node}" for ${timeout} ms: session closed`, { node: s.node }));
        this.detach(s);
      }
    }
    try {
      const live = new Set([...this.sessions.values()].filter((s) => !s.closed).map((s) => s.node));
      const stale = this.grace.mayMarkOffline(this.changes.healthy) ? await this.store.nodes.markStale(now - timeout, live) : [];
      for (const name of stale) {
        this.stats.nodesMarkedOffline++;
        this.log.warn({ node: name, timeoutMs: timeout }, "node offline: missed heartbeats");
        await this.appendEvent({
          actor: "registry", kind: "node.offline", target: name,
          message: `node "${name}" is offline: no heartbeat for more than ${timeout} ms`,
          data: { timeoutMs: timeout, registry: this.settings.processId },
        });
      }
      if (stale.length > 0) this.changes.kick();
      if (now - this.lastPruneAt >= this.opts.pruneIntervalMs) {
        this.lastPruneAt = now;
        await this.store.commands.prune(now - this.opts.pruneIntervalMs);
      }
      this.lastSweepError = "";
    } catch (err) {
      const msg = (err as Error)?.message ?? String(err);
      this.grace.databaseFailed();
      if (msg !== this.lastSweepError) this.log.warn({ err: msg }, "offline sweep failed (retried next interval)");
      this.lastSweepError = msg;
    }
  }

  private async appendEvent(e: Parameters<RegistryStore["events"]["append"]>[0]): Promise<void> {
    try {
      await this.store.events.append(e);
    } catch (err) {
      this.log.warn({ kind: e.kind, target: e.target, err: (err as Error)?.message }, "could not log an event");
    }
  }
}
