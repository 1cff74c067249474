/**
 * Heartbeats of the sessions held here. Each one is taken in memory at once:
 * the node's and its instances' samples (charts, usage) and, when the node's
 * host facts are due, the facts to store. What goes to the database waits
 * for the next flush (every second, or every heartbeat interval when that is
 * shorter, and when the hub closes): one transaction with the newest
 * heartbeat time of every node heard since the last flush, and the host info
 * of those whose facts changed (store.nodes.recordHeartbeats). So the
 * database sees one write a second, not one per heartbeat, and the
 * `last_heartbeat_at` other registry processes judge liveness by is at most
 * a flush interval older than the newest heartbeat.
 *
 * Host facts are due every factsIntervalMs, jittered per session (so that
 * the nodes of a connect storm do not all write in the same second), and
 * written only when they differ from what was stored; that write is what
 * bumps the `nodes` revision, not the heartbeat. Agents that send a
 * HostSample with each heartbeat (the figures the samples need) are told the
 * interval in their desired state and send their facts JSON only about that
 * often, jittered by themselves; the JSON is parsed only when it is due, so
 * that a heartbeat costs no JSON at all.
 *
 * A node the database has offline or does not know (marked offline by
 * another process, removed by an operator) takes the old path after the
 * batch: heartbeat() brings it back online, upsert() recreates it; but only
 * while its session is still open: a closed session never brings a node
 * back. A failed flush tells the offline grace that the database is away
 * (./offline-grace.ts) and keeps its entries for the next one.
 */
import { InvalidArgumentError, NotFoundError, PeriodicTask, type Logger } from "sgridnext";
import type { Heartbeat } from "sgridnext/gen/sgrid/registry/v1/node";
import type { RegistryStore } from "../store";
import type { HeartbeatSamples } from "./heartbeat-samples";
import type { HubStats } from "./hub-stats";
import type { NodeSession, Pending } from "./node-session";
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
  /** Heartbeats are written to the database this often, ms. */
  flushMs: number;
}


/** When a session's host facts are next due: `intervalMs` from `now`, give or take a quarter. */
export function nextFactsDue(now: number, intervalMs: number, random: () => number = Math.random): number {
  return now + Math.round(intervalMs * (0.75 + 0.5 * random()));
}

export class HeartbeatRecorder {
  /** What each session's heartbeats since the last flush left to write, one entry per session (the session links to its own). */
  private pending: Pending[] = [];
  private readonly task: PeriodicTask;
  private lastError = "";

  constructor(private readonly d: HeartbeatDeps) {
    this.task = new PeriodicTask(() => this.flush(), { intervalMs: d.flushMs });
  }

  start(): void {
    this.task.start();
  }

  /** No more scheduled flushes; writes what the open sessions left pending (taken now, before the hub closes them). */
  async stop(): Promise<void> {
    const last = this.flush();
    await Promise.all([this.task.stop(), last]);
  }

  /** Takes one heartbeat of `session`: its samples now, its write at the next flush. */
  accept(session: NodeSession, hb: Heartbeat): void {
    const { samples, stats } = this.d;
    stats.heartbeatsReceived++;
    session.heartbeats++;
    const now = Date.now();
    const sample = hb.sample;
    // An agent that sends samples sends its facts only every factsIntervalMs or so (see
    // DesiredState.facts_interval_ms): each such heartbeat is due if half that interval has
    // passed since the facts last taken, so that its own jitter and ours never skip one.
    // Older agents send facts with every heartbeat: they are due on our jittered schedule.
    const due = sample === undefined ? now >= session.factsDueAt : hb.factsJson !== "" && now - session.factsTakenAt >= this.d.factsIntervalMs / 2;
    // The facts are parsed only when they are due or are the sample (the JSON costs more than the rest of the heartbeat).
    const facts = due || sample === undefined ? parseJsonObject("facts", hb.factsJson, false) : undefined;
    if (sample !== undefined) session.ring = samples.addSample(session.node, now, hb.load1, sample, session.ring);
    else samples.add(session.node, now, hb.load1, facts!);
    samples.setUsages(session.usageSlots, hb.usage, session.instanceIds);
    let p = session.unflushed;
    if (p === undefined) {
      p = { session, at: now, count: 0 };
      session.unflushed = p;
      this.pending.push(p);
    }
    p.at = now;
    p.count++;
    if (due) {
      session.factsDueAt = nextFactsDue(now, this.d.factsIntervalMs);
      session.factsTakenAt = now;
      if (Object.keys(facts!).length > 0) {
        const merged = { ...session.hostInfo, ...facts };
        const text = JSON.stringify(merged);
        if (text !== session.hostInfoText) {
          session.hostInfo = merged;
          session.hostInfoText = text;
          p.hostInfo = merged;
        }
      }
    }
  }

  /** Writes every pending heartbeat of the open sessions; never throws. */
  async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const taken = this.pending;
    this.pending = [];
    for (const p of taken) p.session.unflushed = undefined;
    const { store, stats } = this.d;
    // A closed session's heartbeats are not written: its node's liveness is no longer this process's to claim.
    const live = taken.filter((p) => !p.session.closed);
    for (const p of taken) if (p.session.closed) stats.heartbeatsDropped += p.count;
    if (live.length === 0) return;
    let missing: Set<string>;
    try {
      missing = new Set(await store.nodes.recordHeartbeats(live.map((p) => ({ name: p.session.node, at: p.at, hostInfo: p.hostInfo }))));
      this.lastError = "";
    } catch (err) {
      this.failed(err, "could not record heartbeats");
      for (const p of live) this.requeue(p);
      return;
    }
    for (const p of live) {
      if (missing.has(p.session.node)) await this.recordOne(p);
      else stats.heartbeatsRecorded += p.count;
    }
  }

  /** The old path, for a node the database has offline or does not know: only while its session is open. */
  private async recordOne(p: Pending): Promise<void> {
    const { store, stats } = this.d;
    const s = p.session;
    if (s.closed) {
      stats.heartbeatsDropped += p.count;
      return;
    }
    const hello = { name: s.node, address: s.address, agentVersion: s.agentVersion, hostInfo: s.hostInfo };
    try {
      try {
        if (p.hostInfo) await store.nodes.upsert(hello);
        else await store.nodes.heartbeat(s.node, p.at);
      } catch (err) {
        // Removed by an operator while connected: the agent is alive, so it is back.
        if (!(err instanceof NotFoundError)) throw err;
        await store.nodes.upsert(hello);
      }
      stats.heartbeatsRecorded += p.count;
    } catch (err) {
      this.failed(err, "could not record a heartbeat");
      this.requeue(p);
    }
  }

  /** Puts a failed entry back, merged with what arrived since (the newer time and facts win). */
  private requeue(p: Pending): void {
    if (p.session.closed) {
      this.d.stats.heartbeatsDropped += p.count;
      return;
    }
    const newer = p.session.unflushed;
    if (newer === undefined) {
      p.session.unflushed = p;
      this.pending.push(p);
    } else {
      // Usually the entry waiting is the newer one; with two flushes in flight (stop() during one) it may not be.
      newer.count += p.count;
      if (p.at > newer.at) {
        newer.at = p.at;
        newer.hostInfo = p.hostInfo ?? newer.hostInfo;
      } else newer.hostInfo ??= p.hostInfo;
    }
  }

  private failed(err: unknown, what: string): void {
    this.d.stats.heartbeatErrors++;
    this.d.grace.databaseFailed();
    const msg = (err as Error)?.message ?? String(err);
    if (msg !== this.lastError) this.d.log.warn({ err: msg }, what);
    this.lastError = msg;
  }
}
