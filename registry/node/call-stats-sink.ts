/**
 * Servants' call stats arriving on node sessions (AgentMessage.stats, passed
 * on by the agent from the local channel) go into the store's per-minute
 * rows (store/knex/call-stats.ts); rows older than the retention are
 * deleted by a PeriodicTask, so the table stays bounded.
 *
 * An agent may report only for the instances it runs: stats for an instance
 * that is not in the session's desired state are dropped (and logged once
 * per instance). Writes are not ordered (sums commute); at most
 * MAX_IN_FLIGHT are pending, beyond that a report is dropped with a warning
 * rather than let a flood queue without bound.
 */
import { PeriodicTask, type Logger } from "sgridnext";
import type { InstanceStats } from "sgridnext/gen/sgrid/registry/v1/node";
import type { RegistryStore } from "../store";
import type { NodeSession } from "./node-session";

export const CALL_STATS_DEFAULTS = Object.freeze({
  /** How long per-minute rows are kept, ms: 7 days. */
  retentionMs: 7 * 24 * 60 * 60 * 1000,
  /** How often old rows are deleted, ms. */
  pruneIntervalMs: 10 * 60 * 1000,
});

const MAX_IN_FLIGHT = 64;

export class CallStatsSink {
  private inFlight = 0;
  private readonly pruner: PeriodicTask;
  private readonly refused = new Set<number>();

  constructor(private readonly deps: { store: RegistryStore; log: Logger; retentionMs?: number; pruneIntervalMs?: number }) {
    const retention = deps.retentionMs ?? CALL_STATS_DEFAULTS.retentionMs;
    this.pruner = new PeriodicTask(async () => {
      const removed = await deps.store.callStats.prune(Date.now() - retention);
      if (removed > 0) deps.log.debug({ removed }, "pruned old call stats");
    }, { intervalMs: deps.pruneIntervalMs ?? CALL_STATS_DEFAULTS.pruneIntervalMs, initialDelayMs: 5_000, onError: (err) => deps.log.warn({ err: (err as Error).message }, "pruning call stats failed") });
  }

  start(): void {
    this.pruner.start();
  }

  stop(): Promise<void> {
    return this.pruner.stop();
  }

  /** Takes one report; never throws (a bad report is logged). */
  accept(session: NodeSession, msg: InstanceStats): void {
    const info = session.instanceInfo.get(msg.instanceId);
    if (!info) {
      if (!this.refused.has(msg.instanceId) && this.refused.size < 1000) {
        this.refused.add(msg.instanceId);
        this.deps.log.warn({ node: session.node, instanceId: msg.instanceId }, "dropped call stats of an instance this node does not run");
      }
      return;
    }
    const report = msg.report;
    if (!report || report.stats.length === 0) return;
    if (this.inFlight >= MAX_IN_FLIGHT) {
      this.deps.log.warn({ node: session.node, instanceId: msg.instanceId }, "dropped call stats: too many reports waiting for the database");
      return;
    }
    this.inFlight++;
    const stats = report.stats.map((s) => ({
      side: s.side, scope: s.scope, method: s.method, calls: s.calls, errors: s.errors,
      errorsByCode: parseCodes(s.errorsByCodeJson), buckets: s.buckets, totalMs: s.totalMs,
    }));
    this.deps.store.callStats
      .add({ id: msg.instanceId, application: info.application, server: info.server, node: session.node }, report.at || Date.now(), stats)
      .catch((err) => this.deps.log.warn({ node: session.node, instanceId: msg.instanceId, err: (err as Error).message }, "could not store call stats"))
      .finally(() => this.inFlight--);
  }
}

function parseCodes(json: string): Record<string, number> {
  try {
    const v = JSON.parse(json || "{}") as unknown;
    return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, number>) : {};
  } catch {
    return {};
  }
}
