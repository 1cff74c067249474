/**
 * Package bytes in the database (migration 0012): what DatabaseStorage
 * (registry/services/storage.ts) is built on. Rows only; hashing, limits and
 * streaming are the storage's. Writes bump no revision counter: the patch
 * row that references a package is what other processes watch.
 *
 * Contracts:
 * - `addChunk` writes one row outside any transaction (an upload is as long
 *   as the network makes it; holding SQLite's write lock for that long would
 *   stall every other writer). The chunks of an upload are invisible until
 *   `commit` writes the blob row.
 * - `commit` is one transaction: when a blob with the key exists already
 *   (the same bytes uploaded before), the new upload takes its place and the
 *   old chunks are deleted (the new ones were just checked end to end, so
 *   uploading the same package again heals a damaged chunk), and its age is
 *   refreshed; otherwise the blob row is written. Either way, afterwards the
 *   key is readable.
 * - `remove` deletes the blob row and its chunks in one transaction.
 */
import type { StoreContext } from "./context";
import { num } from "./context";

/** One stored package. */
export interface PackageBlob {
  key: string;
  uploadId: string;
  size: number;
  chunkBytes: number;
  chunkCount: number;
  createdAt: number;
}

/** One chunk as read: its bytes and the sha256 recorded when it was written. */
export interface PackageChunk {
  data: Buffer;
  sha256: string;
}

export interface PackageBlobRepo {
  addChunk(uploadId: string, seq: number, data: Buffer, sha256: string): Promise<void>;
  /** Makes upload `uploadId` the bytes of `key` (in place of an earlier upload of the same bytes). */
  commit(blob: Omit<PackageBlob, "createdAt">): Promise<void>;
  /** Deletes the chunks of an upload that failed. Idempotent. */
  discard(uploadId: string): Promise<void>;
  find(key: string): Promise<PackageBlob | undefined>;
  /** The chunk, or undefined when the row is missing. */
  chunk(uploadId: string, seq: number): Promise<PackageChunk | undefined>;
  /** Deletes the blob and its chunks. Idempotent. */
  remove(key: string): Promise<void>;
  list(): Promise<PackageBlob[]>;
  /** Deletes chunks written before `before` (ms) by uploads that never committed; returns how many rows. */
  removeOrphanChunks(before: number): Promise<number>;
  /** The largest statement the database accepts, bytes (MySQL's max_allowed_packet); undefined when there is no such limit (SQLite). */
  maxStatementBytes(): Promise<number | undefined>;
}

function toBlob(r: Record<string, unknown>): PackageBlob {
  return {
    key: String(r.storage_key),
    uploadId: String(r.upload_id),
    size: num(r.size),
    chunkBytes: num(r.chunk_bytes),
    chunkCount: num(r.chunk_count),
    createdAt: num(r.created_at),
  };
}

export class KnexPackageBlobRepo implements PackageBlobRepo {
  constructor(private readonly ctx: StoreContext) {}

  async addChunk(uploadId: string, seq: number, data: Buffer, sha256: string): Promise<void> {
    await this.ctx.read((db) => db("package_chunks").insert({ upload_id: uploadId, seq, size: data.length, sha256, data, created_at: this.ctx.now() }));
  }

  async commit(blob: Omit<PackageBlob, "createdAt">): Promise<void> {
    await this.ctx.write(async (trx) => {
      const now = this.ctx.now();
      const existing = await this.ctx.lock(trx("package_blobs").where({ storage_key: blob.key })).first("upload_id");
      if (existing) {
        await trx("package_blobs").where({ storage_key: blob.key }).update({
          upload_id: blob.uploadId, size: blob.size, chunk_bytes: blob.chunkBytes, chunk_count: blob.chunkCount, created_at: now,
        });
        if (String(existing.upload_id) !== blob.uploadId) await trx("package_chunks").where({ upload_id: String(existing.upload_id) }).delete();
        return;
      }
      await trx("package_blobs").insert({
        storage_key: blob.key, upload_id: blob.uploadId, size: blob.size, chunk_bytes: blob.chunkBytes, chunk_count: blob.chunkCount, created_at: now,
      });
    });
  }

  async discard(uploadId: string): Promise<void> {
    await this.ctx.read((db) => db("package_chunks").where({ upload_id: uploadId }).delete());
  }

  async find(key: string): Promise<PackageBlob | undefined> {
    const row = await this.ctx.read((db) => db("package_blobs").where({ storage_key: key }).first());
    return row ? toBlob(row as Record<string, unknown>) : undefined;
  }

  async chunk(uploadId: string, seq: number): Promise<PackageChunk | undefined> {
    const row = await this.ctx.read((db) => db("package_chunks").where({ upload_id: uploadId, seq }).first("data", "sha256"));
    if (!row) return undefined;
    const data = row.data as Buffer | Uint8Array;
    return { data: Buffer.isBuffer(data) ? data : Buffer.from(data), sha256: String(row.sha256) };
  }

  async remove(key: string): Promise<void> {
    await this.ctx.write(async (trx) => {
      const row = await this.ctx.lock(trx("package_blobs").where({ storage_key: key })).first("upload_id");
      if (!row) return;
      await trx("package_chunks").where({ upload_id: String(row.upload_id) }).delete();
      await trx("package_blobs").where({ storage_key: key }).delete();
    });
  }

  async list(): Promise<PackageBlob[]> {
    const rows = await this.ctx.read((db) => db("package_blobs").select().orderBy("storage_key"));
    return (rows as Record<string, unknown>[]).map(toBlob);
  }

  async removeOrphanChunks(before: number): Promise<number> {
    return this.ctx.read(async (db) => {
      const committed = db("package_blobs").select("upload_id");
      return Number(await db("package_chunks").where("created_at", "<", before).whereNotIn("upload_id", committed).delete());
    });
  }

  async maxStatementBytes(): Promise<number | undefined> {
    if (!this.ctx.isMysql) return undefined;
    const raw = await this.ctx.read((db) => db.raw("select @@max_allowed_packet as m"));
    const rows = (Array.isArray(raw) ? raw[0] : raw) as Array<{ m: unknown }>;
    const m = Number(rows[0]?.m);
    return Number.isFinite(m) && m > 0 ? m : undefined;
  }
}
