/**
 * Small file helpers for the framework's local copies (endpoint cache, last
 * good config): writes are atomic (temp file in the same directory, fsync,
 * rename), so a process killed mid-write leaves the previous copy intact and
 * a reader never sees half a file.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

/** Writes `data` to `file` atomically, creating the directory. Rejects on I/O errors (callers log them). */
export async function writeFileAtomic(file: string, data: string): Promise<void> {
  const dir = path.dirname(file);
  await fs.promises.mkdir(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  const fh = await fs.promises.open(tmp, "w", 0o644);
  try {
    await fh.writeFile(data, "utf8");
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await fs.promises.rename(tmp, file);
  } catch (err) {
    await fs.promises.rm(tmp, { force: true });
    throw err;
  }
}

/** Reads a file, or undefined when it does not exist. Other errors are thrown. */
export function readFileIfExists(file: string): string | undefined {
  try {
    return fs.readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/**
 * Serialises writes per file and keeps only the latest pending content: a
 * burst of changes costs at most one write in flight plus one queued.
 */
export class LatestWriter {
  private readonly pending = new Map<string, string>();
  private readonly running = new Map<string, Promise<void>>();

  constructor(private readonly onError: (file: string, err: unknown) => void) {}

  /** Schedules a write of `data` to `file`; never throws. */
  write(file: string, data: string): void {
    this.pending.set(file, data);
    if (!this.running.has(file)) this.running.set(file, this.drain(file));
  }

  /** Resolves when every scheduled write has finished. */
  async flush(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running.values()]);
  }

  private async drain(file: string): Promise<void> {
    try {
      for (let data = this.pending.get(file); data !== undefined; data = this.pending.get(file)) {
        this.pending.delete(file);
        try { await writeFileAtomic(file, data); } catch (err) { this.onError(file, err); }
      }
    } finally {
      this.running.delete(file);
    }
  }
}
