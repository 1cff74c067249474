/**
 * Package storage in the registry's database, content-addressed by sha256:
 * every registry process sharing the database serves every package, so the
 * one that received an upload may be gone (ARCHITECTURE.md, "Packages").
 *
 * The bytes are rows of `package_chunks` (1 MiB each, less when MySQL's
 * `max_allowed_packet` would not take a row: a BLOB parameter travels
 * hex-escaped, twice its size), each with its sha256; a `package_blobs` row
 * per package names the upload holding its bytes (registry/store/knex/package-blobs.ts).
 *
 * Contracts:
 * - `put` streams: it hashes and counts while writing chunk by chunk (at
 *   most one chunk buffered), stops reading as soon as more bytes than
 *   declared (or than `maxBytes`) arrive, checks the declared size and
 *   sha256, and only then writes the blob row (one transaction). On any
 *   failure the upload's chunks are deleted and nothing is kept. Storing
 *   content that is already present keeps one copy, the new one (so
 *   uploading a package again repairs a damaged chunk).
 * - `get(key, offset)` streams from `offset` (resumable downloads), one
 *   chunk read ahead; each chunk is checked against its sha256 and length
 *   when read, and a mismatch fails the stream with PATCH_CHUNK_CORRUPT
 *   (DATA_LOSS) naming the chunk: a damaged row is never served. Recently
 *   read chunks are kept in memory (`cacheBytes`), and concurrent readers of
 *   one chunk share one query: a publish to many nodes reads each chunk from
 *   the database about once per registry process.
 * - Keys are exactly 64 lowercase hex characters; anything else is
 *   INVALID_ARGUMENT.
 * - `removeUnused` cannot race an upload of the same bytes in this process:
 *   uploads `hold` their key until their patch row is committed, and put's
 *   final step and removals of one key run one after the other. Across
 *   processes, an upload of bytes already stored refreshes the blob's age,
 *   which keeps the sweep (older than an hour) away from it.
 */
import { createHash, randomBytes } from "node:crypto";
import { Readable, Transform, Writable, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { InvalidArgumentError, KeyedMutex, NotFoundError } from "sgridnext";
import type { PackageStorage } from "../server/context";
import type { PackageBlob, PackageBlobRepo, RegistryStore } from "../store";
import { PatchChecksumMismatchError, PatchChunkCorruptError, PatchOffsetOutOfRangeError, PatchSizeMismatchError, PatchTooLargeError } from "./errors";

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

export const DATABASE_STORAGE_DEFAULTS = Object.freeze({
  /** Bytes per chunk row (1 MiB: small next to MySQL's default 16 MiB max_allowed_packet, few rows per package). */
  chunkBytes: 1024 * 1024,
  /** Smallest chunk, whatever the database's packet limit says. */
  minChunkBytes: 16 * 1024,
  /** Room for the rest of an INSERT statement besides the hex-escaped chunk, bytes. */
  statementOverheadBytes: 16 * 1024,
  /** Verified chunks kept in memory for other readers, bytes (a publish to many nodes reads each chunk once). */
  cacheBytes: 64 * 1024 * 1024,
  /**
   * Chunks of an upload that never committed, older than this, are left over
   * from a registry that died mid-upload; the first upload after start (and
   * each package sweep) removes them. 24 h: far longer than any upload.
   */
  staleUploadMs: 24 * 60 * 60 * 1000,
});

export interface DatabaseStorageOptions {
  /** Bytes per chunk row. Default DATABASE_STORAGE_DEFAULTS.chunkBytes (lowered to fit MySQL's max_allowed_packet). */
  chunkBytes?: number;
  /** Verified chunks kept in memory, bytes; 0 turns the cache off. Default DATABASE_STORAGE_DEFAULTS.cacheBytes. */
  cacheBytes?: number;
}

/** Buffers bytes into chunks of `size` and hands each to `write` (awaited: the upload waits for the database). */
class Chunker extends Writable {
  private parts: Buffer[] = [];
  private buffered = 0;
  /** The write in flight (a failing pipeline does not wait for it; the cleanup must). */
  private writing: Promise<void> = Promise.resolve();
  seq = 0;
  constructor(private readonly size: number, private readonly write_: (seq: number, data: Buffer) => Promise<void>) {
    super();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.parts.push(chunk);
    this.buffered += chunk.length;
    this.writing = this.flush(false);
    this.writing.then(() => cb(), cb);
  }
  override _final(cb: (err?: Error | null) => void): void {
    this.writing = this.flush(true);
    this.writing.then(() => cb(), cb);
  }
  /** Resolves once no write is in flight. Never rejects. */
  settled(): Promise<void> {
    return this.writing.catch(() => undefined);
  }
  private async flush(all: boolean): Promise<void> {
    while (this.buffered >= this.size || (all && this.buffered > 0)) {
      const joined = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.buffered);
      const data = joined.subarray(0, Math.min(this.size, joined.length));
      const rest = joined.subarray(data.length);
      this.parts = rest.length > 0 ? [rest] : [];
      this.buffered = rest.length;
      await this.write_(this.seq++, Buffer.from(data));
    }
  }
}

const sha256Of = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

export class DatabaseStorage implements PackageStorage {
  private readonly blobs: PackageBlobRepo;
  private readonly wantChunkBytes: number;
  private readonly cacheBytes: number;
  private chunkBytes: Promise<number> | undefined;
  private swept: Promise<number> | undefined;
  /** Uploads in flight per key (between the start of put and their row's commit or failure). */
  private readonly held = new Map<string, number>();
  /** Tail of the per-key chain of commits (put's last step) and removals. */
  private readonly locks = new KeyedMutex<string>();
  /** Verified chunks by `<upload id>/<seq>`, oldest first. */
  private readonly cache = new Map<string, Buffer>();
  private cached = 0;
  /** Chunk reads in flight, shared by concurrent readers. */
  private readonly reading = new Map<string, Promise<Buffer>>();

  constructor(store: Pick<RegistryStore, "packageBlobs">, options: DatabaseStorageOptions = {}) {
    if (!store?.packageBlobs) throw new TypeError("DatabaseStorage: a store is required");
    const chunkBytes = options.chunkBytes ?? DATABASE_STORAGE_DEFAULTS.chunkBytes;
    if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1) throw new TypeError(`DatabaseStorage: chunkBytes must be a positive integer, got ${chunkBytes}`);
    const cacheBytes = options.cacheBytes ?? DATABASE_STORAGE_DEFAULTS.cacheBytes;
    if (!Number.isSafeInteger(cacheBytes) || cacheBytes < 0) throw new TypeError(`DatabaseStorage: cacheBytes must be a non-negative integer, got ${cacheBytes}`);
    this.blobs = store.packageBlobs;
    this.wantChunkBytes = chunkBytes;
    this.cacheBytes = cacheBytes;
  }

  /** The chunk size uploads use: the one asked for, lowered to what the database's statement limit takes. */
  private chunkSize(): Promise<number> {
    this.chunkBytes ??= this.blobs.maxStatementBytes().then((max) => {
      if (max === undefined) return this.wantChunkBytes;
      const fits = Math.floor((max - DATABASE_STORAGE_DEFAULTS.statementOverheadBytes) / 2);
      return Math.max(DATABASE_STORAGE_DEFAULTS.minChunkBytes, Math.min(this.wantChunkBytes, fits));
    }, (err: unknown) => {
      this.chunkBytes = undefined;
      throw err;
    });
    return this.chunkBytes;
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
    const uploadId = randomBytes(16).toString("hex");
    let chunker: Chunker | undefined;
    try {
      const chunkBytes = await this.chunkSize();
      this.swept ??= this.sweepUnfinished(DATABASE_STORAGE_DEFAULTS.staleUploadMs).catch(() => 0);
      chunker = new Chunker(chunkBytes, (seq, data) => this.blobs.addChunk(uploadId, seq, data, sha256Of(data)));
      await pipeline(source, meter, chunker);
      if (meter.bytes !== declared) {
        throw new PatchSizeMismatchError(`package size ${meter.bytes} bytes does not match its declared size ${declared} bytes`, { declaredSize: declared, actualSize: meter.bytes });
      }
      const actual = meter.hash.digest("hex");
      if (actual !== sha256) {
        throw new PatchChecksumMismatchError(`package sha256 ${actual} does not match the declared sha256 ${sha256}`, { declaredSha256: sha256, actualSha256: actual });
      }
      // Under the key's lock: never interleaved with a removal of the same key.
      await this.locks.run(actual, () => this.blobs.commit({ key: actual, uploadId, size: meter.bytes, chunkBytes, chunkCount: chunker!.seq }));
      return { key: actual, size: meter.bytes };
    } catch (err) {
      source.destroy();
      await chunker?.settled();
      await this.blobs.discard(uploadId).catch(() => undefined);
      throw err;
    }
  }

  async get(key: string, offset = 0): Promise<Readable> {
    validateKey(key);
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new InvalidArgumentError(`offset ${offset} must be a non-negative integer`, { offset });
    }
    const blob = await this.blobs.find(key);
    if (!blob) throw new NotFoundError(`package ${key} is not in storage`, { key });
    if (offset > blob.size) {
      throw new PatchOffsetOutOfRangeError(`offset ${offset} is beyond the end of package ${key} (${blob.size} bytes)`, { key, offset, size: blob.size });
    }
    const read = (seq: number) => this.readChunk(blob, seq);
    async function* bytes(): AsyncGenerator<Buffer> {
      const first = Math.floor(offset / blob!.chunkBytes);
      for (let seq = first; seq < blob!.chunkCount; seq++) {
        const data = await read(seq);
        yield seq === first ? data.subarray(offset - seq * blob!.chunkBytes) : data;
      }
    }
    // Byte mode, default high-water mark: one chunk read ahead of the consumer, no more.
    return Readable.from(bytes(), { objectMode: false });
  }

  /** Chunk `seq` of `blob`, checked against its sha256 and expected length; from the cache when there. */
  private readChunk(blob: PackageBlob, seq: number): Promise<Buffer> {
    const id = `${blob.uploadId}/${seq}`;
    const hit = this.cache.get(id);
    if (hit) {
      this.cache.delete(id);
      this.cache.set(id, hit);
      return Promise.resolve(hit);
    }
    let p = this.reading.get(id);
    if (!p) {
      p = this.loadChunk(blob, seq).then((data) => {
        this.remember(id, data);
        return data;
      }).finally(() => this.reading.delete(id));
      this.reading.set(id, p);
    }
    return p;
  }

  private async loadChunk(blob: PackageBlob, seq: number): Promise<Buffer> {
    const from = seq * blob.chunkBytes;
    const want = Math.min(blob.chunkBytes, blob.size - from);
    const where = `package ${blob.key}: chunk ${seq} (bytes ${from}..${from + want - 1} of ${blob.size})`;
    const row = await this.blobs.chunk(blob.uploadId, seq);
    if (!row) throw new PatchChunkCorruptError(`${where} is missing from the database; upload the package again`, { key: blob.key, chunk: seq });
    const actual = sha256Of(row.data);
    if (row.data.length !== want || actual !== row.sha256) {
      throw new PatchChunkCorruptError(`${where} is damaged in the database: ${row.data.length} bytes with sha256 ${actual}, stored as ${want} bytes with sha256 ${row.sha256}; upload the package again`, {
        key: blob.key, chunk: seq, expectedSha256: row.sha256, actualSha256: actual,
      });
    }
    return row.data;
  }

  private remember(id: string, data: Buffer): void {
    if (data.length > this.cacheBytes) return;
    this.cache.set(id, data);
    this.cached += data.length;
    for (const [k, v] of this.cache) {
      if (this.cached <= this.cacheBytes) break;
      this.cache.delete(k);
      this.cached -= v.length;
    }
  }

  private forget(uploadId: string): void {
    for (const [k, v] of this.cache) {
      if (!k.startsWith(`${uploadId}/`)) continue;
      this.cache.delete(k);
      this.cached -= v.length;
    }
  }

  async has(key: string): Promise<boolean> {
    return (await this.blobs.find(validateKey(key))) !== undefined;
  }

  /** Removes chunks of uploads that never committed, written more than `olderThanMs` ago; returns how many rows. */
  sweepUnfinished(olderThanMs: number): Promise<number> {
    return this.blobs.removeOrphanChunks(Date.now() - olderThanMs);
  }

  /** Idempotent: removing a missing key is not an error. */
  async remove(key: string): Promise<void> {
    const blob = await this.blobs.find(validateKey(key));
    await this.blobs.remove(key);
    if (blob) this.forget(blob.uploadId);
  }

  async *list(): AsyncIterable<{ key: string; mtimeMs: number }> {
    for (const b of await this.blobs.list()) yield { key: b.key, mtimeMs: b.createdAt };
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
