/**
 * Counters of the node session hub, shared by its parts (sessions,
 * heartbeats, observed reports, desired pushes, sweeper), for diagnostics
 * and the heartbeat benchmark.
 */
export interface HubStats {
  sessionsOpened: number;
  heartbeatsReceived: number;
  heartbeatsRecorded: number;
  /** Failed heartbeat writes (a flush or one node's; their heartbeats are retried at the next flush). */
  heartbeatErrors: number;
  /** Heartbeats not written because their session closed before the flush. */
  heartbeatsDropped: number;
  observedReports: number;
  desiredSent: number;
  nodesMarkedOffline: number;
  /** Commands sent through the relay table (their node's session is held elsewhere). */
  commandsRelayed: number;
  /** Sessions the offline sweeper closed as silent. */
  silentClosed: number;
  /** Of those, sessions that had sent no heartbeat at all. */
  silentClosedNoHeartbeat: number;
  /** The longest silence of a session the sweeper closed, ms. */
  silentMaxMs: number;
  /** Sweeps that closed no session although some looked silent, because the registry itself was lagging (./offline-sweeper.ts). */
  sweepsHeldForLag: number;
  /** The largest event-loop delay (p99 over a sweep interval) a sweep saw, ms. */
  loopDelayP99MaxMs: number;
}

export function newHubStats(): HubStats {
  return { sessionsOpened: 0, heartbeatsReceived: 0, heartbeatsRecorded: 0, heartbeatErrors: 0, heartbeatsDropped: 0, observedReports: 0, desiredSent: 0, nodesMarkedOffline: 0, commandsRelayed: 0,
    silentClosed: 0, silentClosedNoHeartbeat: 0, silentMaxMs: 0, sweepsHeldForLag: 0, loopDelayP99MaxMs: 0 };
}

/** Appends an event to the log; a failure is logged, never thrown (an event must not break a session). */
export type AppendEvent = (e: Parameters<import("../store").RegistryStore["events"]["append"]>[0]) => Promise<void>;
