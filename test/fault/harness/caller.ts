/**
 * The parent's handle on a caller process (./caller-main.ts): start it, read
 * its running counts, wait for calls, stop it and get the final counts.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Proc } from "../../e2e/helpers/procs";
import { waitFor } from "../../helpers/wait";
import type { CallerCounts } from "./counts";

export interface CallerOptions {
  registry: string;
  objs: string[];
  /** Total calls per second. */
  rate: number;
  /** Its folder: disk cache of endpoints, log. */
  dir: string;
}

export class Caller {
  private constructor(readonly proc: Proc, readonly options: CallerOptions) {}

  static async start(options: CallerOptions): Promise<Caller> {
    fs.mkdirSync(options.dir, { recursive: true });
    const main = path.join(__dirname, "caller-main.js");
    const proc = new Proc("caller", process.execPath, [main, options.registry, path.join(options.dir, "cache"), String(options.rate), ...options.objs], {
      cwd: options.dir, env: { SGRID_LOG_LEVEL: "info" }, logFile: path.join(options.dir, "caller.log"),
    });
    const c = new Caller(proc, options);
    await proc.waitForLine(/^STATS /m, 30_000);
    return c;
  }

  /** The latest counts it printed. */
  counts(): CallerCounts {
    const lines = this.proc.stdout.split("\n");
    for (let i = lines.length - 1; i >= 0; i--) {
      const m = /^(?:STATS|FINAL) (.*)$/.exec(lines[i]!);
      if (m) return JSON.parse(m[1]!) as CallerCounts;
    }
    throw new Error(`the caller printed no counts yet: ${this.proc.stderr.slice(-2000)}`);
  }

  /** Waits until `n` more calls than now succeeded on every Obj; resolves with the counts then. */
  async waitOk(n: number, timeoutMs = 60_000): Promise<CallerCounts> {
    const before = this.counts();
    return waitFor(`${n} more successful calls on every Obj`, () => {
      const now = this.counts();
      return this.options.objs.every((o) => now.byObj[o]!.ok - before.byObj[o]!.ok >= n) ? now : undefined;
    }, timeoutMs, 50);
  }

  /** Stops calling (calls in flight finish) and resolves with the final counts. */
  async stop(): Promise<CallerCounts> {
    this.proc.signal("SIGTERM");
    await this.proc.waitForLine(/^FINAL /m, 30_000);
    await this.proc.exited;
    return this.counts();
  }
}
