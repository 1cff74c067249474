/**
 * A task run every `intervalMs`, the one shape for Sgrid's periodic work
 * (sweepers, refreshes, samplers, pollers):
 * - never overlaps itself: the next run is scheduled when the current one
 *   ends, so a slow run delays the next instead of piling up;
 * - never keeps the process alive (its timer is unref'ed);
 * - a run that throws or rejects goes to `onError` and the schedule goes on;
 * - stop() cancels what is scheduled and resolves once a run in flight has
 *   finished, so a component's teardown can await it.
 *
 * ```
 *   start() ─▶ [wait initialDelayMs] ─▶ run ─▶ [wait intervalMs] ─▶ run ─▶ …
 *   stop()  ─▶ no new run; resolves after the run in flight (if any)
 * ```
 */
export interface PeriodicTaskOptions {
  /** Between the end of one run and the start of the next, ms. */
  intervalMs: number;
  /** Before the first run, ms. Default: intervalMs. */
  initialDelayMs?: number;
  /** Where a failed run's error goes. Default: ignored. */
  onError?: (err: unknown) => void;
}

export class PeriodicTask {
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private stopped = true;
  private readonly intervalMs: number;
  private readonly initialDelayMs: number;

  /** Throws TypeError for a non-positive or non-finite interval. */
  constructor(private readonly fn: () => unknown, private readonly options: PeriodicTaskOptions) {
    if (!(options.intervalMs > 0) || !Number.isFinite(options.intervalMs)) throw new TypeError(`PeriodicTask: intervalMs must be > 0, got ${options.intervalMs}`);
    this.intervalMs = options.intervalMs;
    this.initialDelayMs = options.initialDelayMs ?? options.intervalMs;
    if (!(this.initialDelayMs >= 0)) throw new TypeError(`PeriodicTask: initialDelayMs must be >= 0, got ${this.initialDelayMs}`);
  }

  /** Starts the schedule. Idempotent. Returns this. */
  start(): this {
    if (!this.stopped) return this;
    this.stopped = false;
    // Started again while a run is still in flight (stop() then start()): that run schedules the next.
    if (!this.inFlight) this.schedule(this.initialDelayMs);
    return this;
  }

  get running(): boolean {
    return !this.stopped;
  }

  /** Runs the task now (out of schedule, still never overlapping); resolves when that run ends. */
  runNow(): Promise<void> {
    if (this.inFlight) return this.inFlight;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    return this.runOnce();
  }

  /** Stops the schedule; resolves when a run in flight has finished. Idempotent; never rejects. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    await this.inFlight;
  }

  private schedule(delayMs: number): void {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.runOnce();
    }, delayMs);
    this.timer.unref();
  }

  private runOnce(): Promise<void> {
    const run = (async () => {
      try {
        await this.fn();
      } catch (err) {
        this.options.onError?.(err);
      }
    })();
    this.inFlight = run.then(() => {
      this.inFlight = undefined;
      this.schedule(this.intervalMs);
    });
    return this.inFlight;
  }
}
