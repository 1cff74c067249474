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
 *
 * Silence is judged as of the last moment this process had caught up with
 * its input, not as of now (`caughtUpAt`, CaughtUpClock): a registry whose
 * event loop is saturated (a connect storm of 10,000 agents) reads its
 * sessions' heartbeats late, and must not take its own lateness for the
 * nodes' silence. The loop has caught up when it went idle: every
 * `timeout / 10` (at most a second) the sweeper samples the loop's
 * utilization, and a sample with idle time in it means the loop waited
 * for input with none unread, so whatever was sent before that sample
 * began has been heard. Bounded: silence is never judged more than one
 * timeout behind now, so a registry saturated for good still closes a
 * session silent for twice the timeout.
 */
import { monitorEventLoopDelay, performance, type EventLoopUtilization, type IntervalHistogram } from "node:perf_hooks";
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

/** A loop-utilization sample below this share had idle time in it: the loop waited with no input unread. */
export const CAUGHT_UP_BELOW = 0.95;

/**
 * When this process last had caught up with its input: the start of the
 * newest sample period whose event-loop utilization was below
 * CAUGHT_UP_BELOW. Sampled every `periodMs` while started.
 */
export class CaughtUpClock {
  private timer: NodeJS.Timeout | undefined;
  private last: EventLoopUtilization | undefined;
  private lastAt = Date.now();
  /** The newest moment known caught up (ms); the construction time until the first sample. */
  caughtUpAt = Date.now();

  constructor(private readonly periodMs: number) {}

  start(): void {
    if (this.timer) return;
    this.last = performance.eventLoopUtilization();
    this.lastAt = Date.now();
    this.timer = setInterval(() => this.sample(), this.periodMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Takes a sample now (also done by the sweep, so that it judges with the latest). */
  sample(): void {
    if (!this.last) return;
    const now = Date.now();
    const cur = performance.eventLoopUtilization();
    const used = performance.eventLoopUtilization(cur, this.last).utilization;
    if (used < CAUGHT_UP_BELOW) this.caughtUpAt = Math.max(this.caughtUpAt, this.lastAt);
    this.last = cur;
    this.lastAt = now;
  }
}

export class OfflineSweeper {
  private readonly task: PeriodicTask;
  private lastPruneAt = 0;
  private lastError = "";
  /** The event loop's delays since the last sweep (a blocked loop heard no session). */
  private readonly loopDelay: IntervalHistogram = monitorEventLoopDelay({ resolution: 20 });
  private readonly clock: CaughtUpClock;

  constructor(private readonly d: SweeperDeps) {
    this.task = new PeriodicTask(() => this.sweep(), { intervalMs: d.settings.heartbeatIntervalMs });
    this.clock = new CaughtUpClock(Math.max(10, Math.min(1000, Math.round(d.settings.heartbeatTimeoutMs / 10))));
  }

  start(): void {
    this.loopDelay.enable();
    this.clock.start();
    this.task.start();
  }

  /** No more sweeps; resolves once a sweep in flight has ended. */
  stop(): Promise<void> {
    this.loopDelay.disable();
    this.clock.stop();
    return this.task.stop();
  }

  /** One sweep; never throws (database errors are logged once per kind). */
  async sweep(): Promise<void> {
    const { store, changes, settings, sessions, stats, log } = this.d;
    const now = Date.now();
    const timeout = settings.heartbeatTimeoutMs;
    const blockedMs = this.loopDelay.max / 1e6;
    stats.loopDelayP99MaxMs = Math.max(stats.loopDelayP99MaxMs, this.loopDelay.percentile(99) / 1e6);
    this.loopDelay.reset();
    if (blockedMs > settings.heartbeatIntervalMs + 1000) this.d.grace.stalled(blockedMs);
    const judge = this.d.grace.mayMarkOffline(changes.healthy);
    // Silence as of the last moment this process had caught up with its input (see above), at most one timeout back.
    this.clock.sample();
    const judgeAt = Math.min(now, Math.max(this.clock.caughtUpAt, now - timeout));
    let heldForLag = false;
    for (const s of judge ? [...sessions.values()] : []) {
      // Agents heartbeat once they have their first desired state: until the transport took it (a connect
      // storm's backlog), a session is not silent, for at most FIRST_DESIRED_WAIT timeouts after its hello.
      if (s.firstDesiredAt === undefined && now - s.openedAt <= FIRST_DESIRED_WAIT * timeout) continue;
      const heardAt = Math.max(s.lastSeenAt, s.firstDesiredAt ?? 0);
      const silentMs = judgeAt - heardAt;
      if (silentMs <= timeout && now - heardAt > timeout) heldForLag = true;
      if (silentMs > timeout) {
        stats.silentClosed++;
        if (s.heartbeats === 0) stats.silentClosedNoHeartbeat++;
        stats.silentMaxMs = Math.max(stats.silentMaxMs, silentMs);
        s.close(new DeadlineExceededError(`no message from node "${s.node}" for ${timeout} ms: session closed`, { node: s.node }));
        this.d.detach(s);
      }
    }
    if (heldForLag) stats.sweepsHeldForLag++;
    try {
      const live = new Set([...sessions.values()].filter((s) => !s.closed).map((s) => s.node));
      const stale = judge ? await store.nodes.markStale(judgeAt - timeout, live) : [];
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
