/**
 * Bounds for a connect storm (every agent of a cluster saying hello within
 * seconds, e.g. after a registry restart).
 *
 * OpenGate: at most `limit` session opens in progress (their reads and
 * writes interleave), the rest wait in arrival order. Without it, 10,000
 * hellos started 10,000 opens at once: each took as long as all of them
 * together, no agent had its desired state (so none heartbeated) until
 * nearly all had, and memory grew with every open in flight. With it, each
 * open finishes in about its own time and its agent heartbeats from then on.
 * A freed slot passes to the next open at the next turn of the event loop
 * (setImmediate), not in the same microtask checkpoint: on SQLite every
 * query of an open resolves without I/O, so handing slots on directly ran
 * the whole queue of a storm (10,000 opens, a minute) as one chain of
 * microtasks, during which the registry read no socket and ran no timer:
 * no heartbeat was heard, no HTTP/2 ping answered (the agents' connections
 * dropped), and the sweeper then closed thousands of live sessions.
 *
 * KickBatcher: one change-feed kick per turn of the event loop instead of
 * one per open (or observed batch): the change feed then polls once for a
 * whole batch of writes.
 */
import type { ChangeFeed } from "../server/context";

export class OpenGate {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new TypeError(`open limit must be a positive integer, got ${String(limit)}`);
  }

  /** Opens in progress. */
  get inProgress(): number {
    return this.active;
  }

  /** Opens waiting for a slot. */
  get queued(): number {
    return this.waiting.length;
  }

  /** Resolves once a slot is free (at once when one is); pair with release(). */
  acquire(): Promise<void> {
    if (this.active < this.limit) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  /** Frees a slot: the longest-waiting open takes it, at the next turn of the event loop (I/O first). */
  release(): void {
    const next = this.waiting.shift();
    if (next) setImmediate(next); // the slot passes on: `active` unchanged
    else this.active--;
  }
}

export class KickBatcher {
  private pending = false;

  constructor(private readonly changes: Pick<ChangeFeed, "kick">) {}

  /** Kicks the change feed once, after the writes of this turn of the event loop. */
  kick(): void {
    if (this.pending) return;
    this.pending = true;
    setImmediate(() => {
      this.pending = false;
      this.changes.kick();
    });
  }
}
