/**
 * When the registry may mark silent nodes offline.
 *
 * A node's heartbeat time in the database is only a trace of its session:
 * it goes stale whenever the registry could not write it, not only when the
 * node went away. So the offline sweep holds back:
 *
 * - after this process began serving, for one heartbeat timeout: agents
 *   reconnect (their backoff is capped at a few seconds) and heartbeat again
 *   before anyone judges them, however long the registry was down;
 * - while the database does not answer (the change feed's polls fail, or a
 *   heartbeat could not be written), and for one heartbeat timeout after it
 *   answers again: the heartbeats of live sessions land again before the
 *   sweep reads them;
 * - after this process itself stalled (its event loop blocked longer than
 *   a heartbeat interval and a second, e.g. SQLite waiting on a lock inside
 *   a synchronous call): it heard no session meanwhile, so silence is its
 *   own, not the nodes'.
 *
 * Nodes whose session this process holds are never marked offline by its
 * sweep at all (see NodeSessionHub.sweep): a live session is the proof of
 * life, the heartbeat column is only how other registry processes see it.
 */
export class OfflineGrace {
  private graceUntil = Number.POSITIVE_INFINITY;
  private databaseDown = false;
  /** Why the sweep holds back now (for the log), or "" when it does not. */
  reason = "starting";

  constructor(private readonly timeoutMs: number, private readonly now: () => number = Date.now) {}

  /** This process serves from now on: the start-up grace begins. */
  serving(): void {
    this.hold("registry started");
  }

  /** A database call of the session path failed (a heartbeat, a sweep). */
  databaseFailed(): void {
    this.databaseDown = true;
    this.reason = "database unavailable";
  }

  /** This process could not run for `ms` (its event loop was blocked). */
  stalled(ms: number): void {
    this.hold(`registry stalled for ${Math.round(ms)} ms`);
  }

  /**
   * Whether the sweep may mark nodes offline now; `databaseHealthy` is what
   * the change feed last saw. The first healthy call after an outage starts
   * a new grace of one timeout.
   */
  mayMarkOffline(databaseHealthy: boolean): boolean {
    if (!databaseHealthy) {
      this.databaseFailed();
      return false;
    }
    if (this.databaseDown) {
      this.databaseDown = false;
      this.hold("database back");
    }
    if (this.now() < this.graceUntil) return false;
    this.reason = "";
    return true;
  }

  private hold(reason: string): void {
    const until = this.now() + this.timeoutMs;
    this.graceUntil = this.graceUntil === Number.POSITIVE_INFINITY ? until : Math.max(this.graceUntil, until);
    this.reason = reason;
  }
}
