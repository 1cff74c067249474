/**
 * A one-line progress display for long transfers. On a terminal it redraws
 * one line (at most ~10 times a second); anywhere else (CI logs, pipes) it
 * prints nothing until done() prints the one final line, so logs get no
 * progress spam.
 */
import { formatBytes } from "sgridnext-tools";

/** Least time between two redraws, ms. */
const REDRAW_MS = 100;

export class Progress {
  private lastDraw = 0;
  private current = 0;
  private finished = false;
  private readonly startedAt = Date.now();

  constructor(private readonly label: string, private readonly total: number, private readonly stream: NodeJS.WriteStream = process.stderr) {}

  private get tty(): boolean {
    return this.stream.isTTY === true;
  }

  private line(): string {
    const pct = this.total > 0 ? Math.floor((this.current / this.total) * 100) : 100;
    const secs = Math.max((Date.now() - this.startedAt) / 1000, 0.001);
    return `${this.label} ${pct}% ${formatBytes(this.current)} / ${formatBytes(this.total)} (${formatBytes(this.current / secs)}/s)`;
  }

  /** Records progress; redraws on a terminal when due. Never throws. */
  update(current: number): void {
    this.current = current;
    if (!this.tty || this.finished) return;
    const now = Date.now();
    if (now - this.lastDraw < REDRAW_MS && current < this.total) return;
    this.lastDraw = now;
    this.stream.write(`\r\x1b[K${this.line()}`);
  }

  /** Ends the display: on a terminal, the final state on its own line; elsewhere nothing. Idempotent. */
  done(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.tty) this.stream.write(`\r\x1b[K${this.line()}\n`);
  }
}
