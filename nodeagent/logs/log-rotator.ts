/**
 * Checks a set of log files on an interval and rotates those over the size
 * limit (see ./rotate.ts for how and why copy-then-truncate).
 *
 * Defaults: 10 MB x 10 files, as the issue asks and as PM2's
 * pm2-logrotate (10 MB, 30 kept) and supervisord (50 MB x 10) do in
 * spirit; a check every 10 s, so a servant writing 1 MB/s overshoots the
 * limit by at most ~10 MB.
 *
 * Contracts: checks never overlap; a failing file is logged and skipped,
 * never thrown; the timer is unref'ed (it never keeps the agent alive).
 * Emits `rotated` (file) after each rotation.
 */
import { EventEmitter } from "node:events";
import * as path from "node:path";
import { lazySchema } from "../lazy-schema";
import { hasExactly, isInt } from "../plain-checks";
import { getLogger, PeriodicTask } from "sgridnext";
import { rotateIfLarger } from "./rotate";

const log = getLogger("agent.logs");

export interface LogRotatorOptions {
  /** Rotate a file once it is larger than this many bytes. Default 10 MB (10 * 1024 * 1024). */
  maxBytes?: number;
  /** Rotated copies kept per file (`.1` ... `.keep`). Default 10. */
  keep?: number;
  /** Time between checks, ms. Default 10 000. */
  intervalMs?: number;
}

export const LOG_ROTATOR_DEFAULTS = Object.freeze({ maxBytes: 10 * 1024 * 1024, keep: 10, intervalMs: 10_000 });

/** Checked at the agent's start without zod when plainly valid (exported for test/nodeagent/lazy-options.test.ts). */
export const logRotatorOptionsSchema = lazySchema((z) => z.object({
  maxBytes: z.number().int().positive().default(LOG_ROTATOR_DEFAULTS.maxBytes),
  keep: z.number().int().min(0).max(1000).default(LOG_ROTATOR_DEFAULTS.keep),
  intervalMs: z.number().int().positive().default(LOG_ROTATOR_DEFAULTS.intervalMs),
}), (v) => hasExactly(v, { maxBytes: (x) => isInt(x, 1), keep: (x) => isInt(x, 0, 1000), intervalMs: (x) => isInt(x, 1) }, ["maxBytes", "keep", "intervalMs"]));

export class LogRotator extends EventEmitter {
  readonly options: Readonly<Required<LogRotatorOptions>>;
  private readonly files = new Set<string>();
  private readonly task: PeriodicTask;
  private running: Promise<string[]> | undefined;

  constructor(options: LogRotatorOptions = {}) {
    super();
    // The defaults filled first: the schema fills the same ones, and options given in full are taken without zod (lazy-schema.ts).
    this.options = Object.freeze(logRotatorOptionsSchema.parse({ ...LOG_ROTATOR_DEFAULTS, ...options }));
    this.task = new PeriodicTask(() => this.check(), { intervalMs: this.options.intervalMs });
  }

  /** Adds a file to watch (idempotent). */
  add(file: string): void {
    this.files.add(path.resolve(file));
  }

  /** Stops watching a file (idempotent). */
  remove(file: string): void {
    this.files.delete(path.resolve(file));
  }

  /** The files watched. */
  list(): string[] {
    return [...this.files];
  }

  /** Starts checking every `intervalMs` (idempotent). */
  start(): void {
    this.task.start();
  }

  /** Stops checking (idempotent); a check under way finishes. */
  stop(): void {
    void this.task.stop();
  }

  /**
   * Checks every file once now; resolves with the files rotated. A call
   * while a check is under way returns that check. Never rejects.
   */
  check(): Promise<string[]> {
    if (this.running) return this.running;
    this.running = this.checkAll().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async checkAll(): Promise<string[]> {
    const rotated: string[] = [];
    for (const file of [...this.files]) {
      try {
        if (await rotateIfLarger(file, this.options.maxBytes, { keep: this.options.keep })) {
          rotated.push(file);
          log.debug({ file }, "log rotated");
          this.emit("rotated", file);
        }
      } catch (err) {
        log.warn({ file, err: (err as Error).message }, "log rotation failed");
      }
    }
    return rotated;
  }
}
