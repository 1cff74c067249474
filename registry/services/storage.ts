/**
 * Package storage on the registry's local disk, content-addressed by sha256.
 *
 * Layout under `dir` (two-level fan-out so no directory grows past a few
 * thousand entries):
 *
 *     <dir>/ab/cd/abcd…(64 hex)      a stored package
 *     <dir>/tmp/<random>.part        an upload in progress (removed on failure)
 *
 * Contracts:
 * - `put` writes to a temp file while hashing and counting; it stops reading
 *   as soon as more bytes than declared (or than `maxBytes`) arrive; it checks
 *   the declared size and sha256, then renames into place atomically. On any
 *   failure the temp file is removed and nothing is kept. Storing content
 *   that is already present is a no-op (same key, same bytes).
 * - Keys are exactly 64 lowercase hex characters; anything else is
 *   INVALID_ARGUMENT, so no key can name a path outside `dir`.
 * - `removeUnused` cannot race an upload of the same bytes: uploads `hold`
 *   their key until their patch row is committed, and put's final rename and
 *   removals of one key run one after the other.
 * - `get(key, offset)` streams from `offset` (resumable downloads).
 */
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream, promises as fsp } from "node:fs";
import * as path from "node:path";
import { Transform, type Readable, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { InvalidArgumentError, KeyedMutex, NotFoundError } from "sgridnext";
import type { PackageStorage } from "../server/context";
import { PatchChecksumMismatchError, PatchOffsetOutOfRangeError, PatchSizeMismatchError, PatchTooLargeError } from "./errors";

const KEY_RE = /^[0-9a-f]{64}$/;

/** Throws INVALID_ARGUMENT unless `key` is a sha256 in lowercase hex (64 chars). */
export function validateKey(key: string): string {
  if (typeof key !== "string" || !KEY_RE.test(key)) {
    throw new InvalidArgumentError(`package key ${JSON.stringify(String(key).slice(0, 80))} is not a sha256 (64 lowercase hex characters)`, { key: String(key).slice(0, 80) });
  }
  return key;
}

/** Normalises a declared sha256 (hex, any case) or throws INVALID_ARGUMENT naming it. */
export function normalizeSha256(sha256: string): string {
  const lower = typeof sha256 === "string" ? sha256.trim().toLowerCase() : "";
  if (!KEY_RE.test(lower)) {
    throw new InvalidArgumentError(`declared sha256 ${JSON.stringify(String(sha256).slice(0, 80))} is not 64 hex characters`, { sha256: String(sha256).slice(0, 80) });
  }
  return lower;
}

/** Counts and hashes bytes going through; fails as soon as `limit` is passed. */
class Meter extends Transform {
  readonly hash = createHash("sha256");
  bytes = 0;
  constructor(private readonly limit: number, private readonly tooMany: (seen: number) => Error) {
    super();
  }
  override _transform(chunk: Buffer | string, _enc: BufferEncoding, cb: TransformCallback): void {
    const buf = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    this.bytes += buf.length;
    if (this.bytes > this.limit) {
      cb(this.tooMany(this.bytes));
      return;
    }
    this.hash.update(buf);
    cb(null, buf);
  }
}

export const LOCAL_DISK_DEFAULTS = Object.freeze({
  /**
   * Temp files older than this are left over from a registry that died
   * mid-upload; the first upload after start removes them. 24 h: far longer
   * than any upload, so an upload in progress is never touched.
   */
  staleTempMs: 24 * 60 * 60 * 1000,
});

export class LocalDiskStorage implements PackageStorage {
  readonly dir: string;
  private readonly tmpDir: string;
  private swept: Promise<number> | undefined;
  /** Uploads in flight per key (between the start of put and their row's commit or failure). */
  private readonly held = new Map<string, number>();
  /** Tail of the per-key chain of placements (put's rename) and removals. */
  private readonly locks = new KeyedMutex<string>();

  constructor(dir: string) {
    if (typeof dir !== "string" || dir === "") throw new TypeError("LocalDiskStorage: dir is required");
    this.dir = path.resolve(dir);
    this.tmpDir = path.join(this.dir, "tmp");
  }

  /** Absolute path of a key's file (the key is validated first). */
  pathOf(key: string): string {
    validateKey(key);
    return path.join(this.dir, key.slice(0, 2), key.slice(2, 4), key);
  }

  async put(source: Readable, expect: { sha256: string; size: number; maxBytes: number }): Promise<{ key: string; size: number }> {
    let sha256: string;
    try {
      sha256 = normalizeSha256(expect.sha256);
      checkSize(expect.size, expect.maxBytes);
    } catch (err) {
      source.destroy();
      throw err;
    }
    const declared = expect.size;
    // Whichever is lower stops the read first: more than declared is a
    // mismatch, more than maxBytes (when declared <= maxBytes this cannot
    // happen first) is a limit.
    const meter = new Meter(declared, (seen) =>
      new PatchSizeMismatchError(`package is larger than its declared size ${declared} bytes (at least ${seen} bytes received)`, { declaredSize: declared, receivedAtLeast: seen }));
    await fsp.mkdir(this.tmpDir, { recursive: true });
    this.swept ??= this.sweepTemp(LOCAL_DISK_DEFAULTS.staleTempMs).catch(() => 0);
    const tmp = path.join(this.tmpDir, `${randomBytes(12).toString("hex")}.part`);
    try {
      // flush: fsync before close, so a package whose row is committed is on disk.
      await pipeline(source, meter, createWriteStream(tmp, { flags: "wx", mode: 0o644, flush: true }));
      if (meter.bytes !== declared) {
        throw new PatchSizeMismatchError(`package size ${meter.bytes} bytes does not match its declared size ${declared} bytes`, { declaredSize: declared, actualSize: meter.bytes });
      }
      const actual = meter.hash.digest("hex");
      if (actual !== sha256) {
        throw new PatchChecksumMismatchError(`package sha256 ${actual} does not match the declared sha256 ${sha256}`, { declaredSha256: sha256, actualSha256: actual });
      }
      const final = this.pathOf(actual);
      await fsp.mkdir(path.dirname(final), { recursive: true });
      // rename() replaces an existing file atomically; identical content
      // (same sha256) makes that harmless, and readers holding the old inode
      // keep reading it. Under the key's lock: never interleaved with a removal.
      await this.locks.run(actual, () => fsp.rename(tmp, final));
      return { key: actual, size: meter.bytes };
    } catch (err) {
      source.destroy();
      await fsp.rm(tmp, { force: true }).catch(() => undefined);
      throw err;
    }
  }

  async get(key: string, offset = 0): Promise<Readable> {
    const file = this.pathOf(key);
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new InvalidArgumentError(`offset ${offset} must be a non-negative integer`, { offset });
    }
    const handle = await fsp.open(file, "r").catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") throw new NotFoundError(`package ${key} is not in storage`, { key });
      throw err;
    });
    try {
      const { size } = await handle.stat();
      if (offset > size) {
        throw new PatchOffsetOutOfRangeError(`offset ${offset} is beyond the end of package ${key} (${size} bytes)`, { key, offset, size });
      }
    } catch (err) {
      await handle.close();
      throw err;
    }
    // The stream owns the handle and closes it when done or destroyed.
    return createReadStream("", { fd: handle, start: offset, autoClose: true });
  }

  async has(key: string): Promise<boolean> {
    try {
      return (await fsp.stat(this.pathOf(key))).isFile();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw err;
    }
  }

  /** Removes temp files older than `olderThanMs`; returns how many. Never throws for a file that vanished meanwhile. */
  async sweepTemp(olderThanMs: number): Promise<number> {
    let names: string[];
    try {
      names = await fsp.readdir(this.tmpDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return 0;
      throw err;
    }
    const cutoff = Date.now() - olderThanMs;
    let removed = 0;
    for (const name of names) {
      if (!name.endsWith(".part")) continue;
      const file = path.join(this.tmpDir, name);
      const st = await fsp.stat(file).catch(() => undefined);
      if (st && st.mtimeMs < cutoff) {
        await fsp.rm(file, { force: true });
        removed++;
      }
    }
    return removed;
  }

  /** Idempotent: removing a missing key is not an error. */
  async remove(key: string): Promise<void> {
    await fsp.rm(this.pathOf(key), { force: true });
  }

  async *list(): AsyncIterable<{ key: string; mtimeMs: number }> {
    const dirs = (d: string): Promise<string[]> => fsp.readdir(d).catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT" || err.code === "ENOTDIR") return [];
      throw err;
    });
    for (const a of await dirs(this.dir)) {
      if (!/^[0-9a-f]{2}$/.test(a)) continue; // tmp/ and anything else
      for (const b of await dirs(path.join(this.dir, a))) {
        if (!/^[0-9a-f]{2}$/.test(b)) continue;
        for (const key of await dirs(path.join(this.dir, a, b))) {
          if (!KEY_RE.test(key) || !key.startsWith(a + b)) continue;
          const st = await fsp.stat(path.join(this.dir, a, b, key)).catch(() => undefined);
          if (st?.isFile()) yield { key, mtimeMs: st.mtimeMs };
        }
      }
    }
  }

  hold(key: string): () => void {
    validateKey(key);
    this.held.set(key, (this.held.get(key) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = (this.held.get(key) ?? 1) - 1;
      if (n > 0) this.held.set(key, n); else this.held.delete(key);
    };
  }

  async removeUnused(key: string, inUse: () => Promise<boolean>): Promise<boolean> {
    validateKey(key);
    return this.locks.run(key, async () => {
      if (this.held.has(key) || (await inUse()) || this.held.has(key)) return false;
      await this.remove(key);
      return true;
    });
  }
}

function checkSize(size: number, maxBytes: number): void {
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new InvalidArgumentError(`declared package size ${size} must be a non-negative integer`, { size });
  }
  if (size > maxBytes) {
    throw new PatchTooLargeError(`declared package size ${size} bytes is over the limit of ${maxBytes} bytes`, { size, maxBytes });
  }
}
