/**
 * Crash-safe file replacement, one implementation for every durable local
 * file of Sgrid (the agent's state, the proxies' endpoint cache, the last
 * good config copy): after a crash, even `kill -9` or a power loss on a
 * journaling filesystem, the file holds the old or the new content in full,
 * never a mix or nothing.
 *
 * Steps: write a temp file in the same directory, fsync it, rename it over
 * the target (atomic within one filesystem), fsync the directory so that the
 * rename itself is on disk. The temp file is removed when a step fails.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";

export interface AtomicWriteOptions {
  /** Mode of the file. Default 0o600 (state and caches may hold tokens or config). */
  mode?: number;
  /** Mode of directories created on the way. Default 0o700. */
  dirMode?: number;
}

/** Replaces `file` with `data` atomically and durably, creating its directory. Rejects with the I/O error; callers wrap it. */
export async function writeFileAtomic(file: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  try {
    await fsp.mkdir(dir, { recursive: true, mode: options.dirMode ?? 0o700 });
    const fh = await fsp.open(tmp, "w", options.mode ?? 0o600);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, file);
    const dh = await fsp.open(dir, "r");
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch (err) {
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
}

/** Reads a text file, or undefined when it does not exist. Other errors are thrown. */
export async function readFileIfExists(file: string): Promise<string | undefined> {
  try {
    return await fsp.readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/** {@link readFileIfExists} for synchronous start-up paths (a cache read once before anything runs). */
export function readFileIfExistsSync(file: string): string | undefined {
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
  private readonly pending = new Map<string, string | Uint8Array>();
  private readonly running = new Map<string, Promise<void>>();

  constructor(private readonly onError: (file: string, err: unknown) => void, private readonly options: AtomicWriteOptions = {}) {}

  /** Schedules a write of `data` to `file`; never throws (failures go to onError). */
  write(file: string, data: string | Uint8Array): void {
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
        try {
          await writeFileAtomic(file, data, this.options);
        } catch (err) {
          this.onError(file, err);
        }
      }
    } finally {
      this.running.delete(file);
    }
  }
}
