/**
 * Heartbeats of the sessions held here: each one refreshes the node's
 * `last_heartbeat_at` (what other registry processes judge liveness by),
 * feeds the node and instance samples (charts, usage), and stores the
 * host facts at most every factsIntervalMs.
 *
 * Handled at once, not behind the session's observed batches: under a write
 * backlog (a connect storm on SQLite) a heartbeat must not wait for its own
 * session's earlier batch, or a busy registry would mark live nodes offline.
 * One heartbeat write per session is in flight at a time; heartbeats arriving
 * meanwhile are coalesced into the next write (all counted as recorded when
 * it lands: the newest time is what matters). A failed write tells the
 * offline grace that the database is away (./offline-grace.ts).
 */
import { InvalidArgumentError, NotFoundError, type Logger } from "sgridnext";
import type { Heartbeat } from "sgridnext/gen/sgrid/registry/v1/node";
import type { RegistryStore } from "../store";
import { type HeartbeatSamples, sampleOf } from "./heartbeat-samples";
import type { HubStats } from "./hub-stats";
import type { NodeSession } from "./node-session";
import type { OfflineGrace } from "./offline-grace";

/** Largest facts / host info JSON accepted from an agent (bytes of text); larger ones are ignored. */
const MAX_FACTS_JSON = 64 * 1024;

/** A JSON object from an agent (facts, host info); `strict` throws INVALID_ARGUMENT, else a bad one is `{}`. */
export function parseJsonObject(kind: string, text: string, strict: boolean): Record<string, unknown> {
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

export interface HeartbeatDeps {
  store: RegistryStore;
  samples: HeartbeatSamples;
  grace: OfflineGrace;
  stats: HubStats;
  log: Logger;
  factsIntervalMs: number;
}

export class HeartbeatRecorder {
  private lastError = "";

  constructor(private readonly d: HeartbeatDeps) {}

  /** Takes one heartbeat of `session`: written now, or coalesced into the write after the one in flight. */
  accept(session: NodeSession, hb: Heartbeat): void {
    this.d.stats.heartbeatsReceived++;
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
          await this.record(session, cur, count);
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

  /** Records `count` heartbeats (coalesced) whose newest is `hb`; never throws. */
  private async record(session: NodeSession, hb: Heartbeat, count: number): Promise<void> {
    const { store, samples, stats, log } = this.d;
    const now = Date.now();
    const node = session.node;
    try {
      try {
        await store.nodes.heartbeat(node, now);
      } catch (err) {
        // Removed by an operator while connected: the agent is alive, so it is back.
        if (!(err instanceof NotFoundError)) throw err;
        await store.nodes.upsert({ name: node, address: session.address, agentVersion: session.agentVersion, hostInfo: session.hostInfo });
      }
      stats.heartbeatsRecorded += count;
      this.lastError = "";
    } catch (err) {
      stats.heartbeatErrors++;
      this.d.grace.databaseFailed();
      const msg = (err as Error)?.message ?? String(err);
      if (msg !== this.lastError) log.warn({ node, err: msg }, "could not record a heartbeat");
      this.lastError = msg;
    }
    const facts = parseJsonObject("facts", hb.factsJson, false);
    samples.add(node, sampleOf(now, hb.load1, facts));
    for (const u of hb.usage) {
      if (session.instanceIds.has(u.instanceId)) samples.setUsage(u.instanceId, u.memoryBytes, u.cpuCoresUsed);
    }
    if (now - session.factsStoredAt >= this.d.factsIntervalMs && Object.keys(facts).length > 0) {
      session.factsStoredAt = now;
      session.hostInfo = { ...session.hostInfo, ...facts };
      try {
        await store.nodes.upsert({ name: node, address: session.address, agentVersion: session.agentVersion, hostInfo: session.hostInfo });
      } catch (err) {
        log.warn({ node, err: (err as Error)?.message }, "could not store host facts");
      }
    }
  }
}
