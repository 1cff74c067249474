/**
 * The registry's change feed: polls the store's revision counters (one cheap
 * SELECT of a few rows) and emits `change` with the topics whose counter
 * moved, whether the write was made by this process or by another registry
 * sharing the database.
 *
 * Default period 200 ms (see REGISTRY_DEFAULTS.changePollMs): watchers see a
 * change well within 1 s, at 5 small queries per second. A local writer calls
 * `kick()` after committing to poll at once.
 *
 * Contract: never throws out of a poll. While the database is unreachable it
 * logs once per outage, keeps the last counters, keeps polling, and logs once
 * when the database answers again (the first good poll then reports every
 * topic that moved meanwhile). A listener that throws is logged, not fatal.
 */
import { EventEmitter } from "node:events";
import type { Logger } from "sgridnext";
import { TOPICS, type RegistryStore, type Topic } from "../store";
import type { ChangeFeed } from "./context";

export interface ChangeFeedOptions {
  /** Poll period, ms. Default 200. */
  intervalMs?: number;
  log: Logger;
}

export const CHANGE_FEED_DEFAULTS = Object.freeze({ intervalMs: 200 });

export class PollingChangeFeed extends EventEmitter<{ change: [Set<Topic>] }> implements ChangeFeed {
  private current: Record<Topic, number> = Object.fromEntries(TOPICS.map((t) => [t, 0])) as Record<Topic, number>;
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private again = false;
  private stopped = true;
  private down = false;
  private readonly intervalMs: number;
  private readonly log: Logger;
  /** Polls that succeeded / failed since start (for tests and diagnostics). */
  readonly stats = { polls: 0, failures: 0 };

  constructor(private readonly store: Pick<RegistryStore, "revisions" | "safeUrl">, options: ChangeFeedOptions) {
    super();
    this.intervalMs = options.intervalMs ?? CHANGE_FEED_DEFAULTS.intervalMs;
    if (!(this.intervalMs >= 1)) throw new TypeError(`change feed intervalMs must be >= 1, got ${options.intervalMs}`);
    this.log = options.log;
  }

  get revisions(): Readonly<Record<Topic, number>> {
    return this.current;
  }

  /** False while the last poll failed (the database is unreachable). */
  get healthy(): boolean {
    return !this.down;
  }

  /**
   * Reads the counters once (without emitting: they are the starting point)
   * and starts polling. Rejects with the store's error when the first read
   * fails, so a registry that cannot read its database does not start.
   */
  async start(): Promise<void> {
    if (!this.stopped) return;
    this.current = await this.store.revisions.get();
    this.stopped = false;
    this.schedule();
  }

  /** Stops polling; waits for a poll in flight. Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.polling;
  }

  kick(): void {
    if (this.stopped) return;
    if (this.polling) {
      this.again = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.pollNow();
  }

  private schedule(): void {
    if (this.stopped || this.timer || this.polling) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.pollNow();
    }, this.again ? 0 : this.intervalMs);
    this.timer.unref?.();
  }

  private pollNow(): void {
    this.again = false;
    this.polling = this.poll().finally(() => {
      this.polling = undefined;
      this.schedule();
    });
  }

  private async poll(): Promise<void> {
    let next: Record<Topic, number>;
    try {
      next = await this.store.revisions.get();
    } catch (err) {
      this.stats.failures++;
      if (!this.down) {
        this.down = true;
        this.log.warn({ db: this.store.safeUrl, err: (err as Error)?.message }, "database unreachable: serving from memory, writes fail UNAVAILABLE until it returns");
      }
      return;
    }
    this.stats.polls++;
    if (this.down) {
      this.down = false;
      this.log.info({ db: this.store.safeUrl }, "database reachable again");
    }
    if (this.stopped) return;
    const moved = new Set<Topic>();
    for (const t of TOPICS) if (next[t] !== this.current[t]) moved.add(t);
    this.current = next;
    if (moved.size === 0) return;
    try {
      this.emit("change", moved);
    } catch (err) {
      this.log.error({ err, topics: [...moved] }, "change listener failed");
    }
  }
}
