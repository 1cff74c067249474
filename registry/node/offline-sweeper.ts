/**
 * The offline sweeper (every heartbeatIntervalMs, on every registry
 * process): closes local sessions silent for heartbeatTimeoutMs (a
 * half-open TCP connection; silence counts from the first desired state
 * the session delivered, as agents heartbeat from then on), marks silent nodes offline
 * (store.nodes.markStale: atomic, so one process logs the `node.offline`
 * event), and prunes expired relay commands. It never marks a node whose
 * session this process holds, and holds back (neither closes silent
 * sessions nor marks nodes) after a start, around a database outage, and
 * after its own event loop was blocked (./offline-grace.ts).
 */
import { monitorEventLoopDelay, type IntervalHistogram } from "node:perf_hooks";
import { DeadlineExceededError, PeriodicTask, type Logger } from "sgridnext";
import type { RegistryStore } from "../store";
import type { ChangeFeed, RegistrySettings } from "../server/context";
import type { AppendEvent, HubStats } from "./hub-stats";
import type { NodeSession } from "./node-session";
import type { OfflineGrace } from "./offline-grace";

/** A session whose first desired state was not taken yet is spared this many heartbeat timeouts after its hello. */
export const FIRST_DESIRED_WAIT = 2;

export interface SweeperDeps {
  store: RegistryStore;
  changes: ChangeFeed;
  settings: RegistrySettings;
  sessions: ReadonlyMap<string, NodeSession>;
  /** Forgets a session the sweeper closed. */
  detach: (s: NodeSession) => void;
  grace: OfflineGrace;
  stats: HubStats;
  log: Logger;
  appendEvent: AppendEvent;
  pruneIntervalMs: number;
}

export class OfflineSweeper {
  private readonly task: PeriodicTask;
  private lastPruneAt = 0;
  private lastError = "";
  /** The event loop's delays since the last sweep (a blocked loop heard no session). */
  private readonly loopDelay: IntervalHistogram = monitorEventLoopDelay({ resolution: 20 });

  constructor(private readonly d: SweeperDeps) {
    this.task = new PeriodicTask(() => this.sweep(), { intervalMs: d.settings.heartbeatIntervalMs });
  }

  start(): void {
    this.loopDelay.enable();
    this.task.start();
  }

  /** No more sweeps; resolves once a sweep in flight has ended. */
  stop(): Promise<void> {
    this.loopDelay.disable();
    return this.task.stop();
  }

  /** One sweep; never throws (database errors are logged once per kind). */
  async sweep(): Promise<void> {
    const { store, changes, settings, sessions, stats, log } = this.d;
    const now = Date.now();
    const timeout = settings.heartbeatTimeoutMs;
    const blockedMs = this.loopDelay.max / 1e6;
    this.loopDelay.reset();
    if (blockedMs > settings.heartbeatIntervalMs + 1000) this.d.grace.stalled(blockedMs);
    const judge = this.d.grace.mayMarkOffline(changes.healthy);
    for (const s of judge ? [...sessions.values()] : []) {
      // Agents heartbeat once they have their first desired state: until the transport took it (a connect
      // storm's backlog), a session is not silent, for at most FIRST_DESIRED_WAIT timeouts after its hello.
      if (s.firstDesiredAt === undefined && now - s.openedAt <= FIRST_DESIRED_WAIT * timeout) continue;
      if (now - Math.max(s.lastSeenAt, s.firstDesiredAt ?? 0) > timeout) {
        s.close(new DeadlineExceededError(`no message from node "${s.node}" for ${timeout} ms: session closed`, { node: s.node }));
        this.d.detach(s);
      }
    }
    try {
      const live = new Set([...sessions.values()].filter((s) => !s.closed).map((s) => s.node));
      const stale = judge ? await store.nodes.markStale(now - timeout, live) : [];
      for (const name of stale) {
        stats.nodesMarkedOffline++;
        log.warn({ node: name, timeoutMs: timeout }, "node offline: missed heartbeats");
        await this.d.appendEvent({
          actor: "registry", kind: "node.offline", target: name,
          message: `node "${name}" is offline: no heartbeat for more than ${timeout} ms`,
          data: { timeoutMs: timeout, registry: settings.processId },
        });
      }
      if (stale.length > 0) changes.kick();
      if (now - this.lastPruneAt >= this.d.pruneIntervalMs) {
        this.lastPruneAt = now;
        await store.commands.prune(now - this.d.pruneIntervalMs);
      }
      this.lastError = "";
    } catch (err) {
      const msg = (err as Error)?.message ?? String(err);
      this.d.grace.databaseFailed();
      if (msg !== this.lastError) log.warn({ err: msg }, "offline sweep failed (retried next interval)");
      this.lastError = msg;
    }
  }
}
