/**
 * Migration 0012: packages in the database, so that every registry process
 * sharing it can serve every package (registry/services/storage.ts).
 *
 * - `package_chunks`: the bytes of one upload (`upload_id`, random per
 *   upload) in pieces of at most `chunk_bytes` (1 MiB, less when MySQL's
 *   `max_allowed_packet` is small), each with its own sha256, checked when
 *   read. MEDIUMBLOB on MySQL (up to 16 MiB; BLOB would stop at 64 KiB).
 * - `package_blobs`: one row per stored package (its sha256 is the key),
 *   written only once every chunk of its upload is in and the whole file's
 *   size and sha256 matched; it names the upload whose chunks hold the
 *   bytes. Chunks without a blob row are an upload in progress or one a dead
 *   registry left behind (swept after a day).
 * Idempotent, like 0001.
 */
import type { Knex } from "knex";

export const name = "0012_package_chunks";

export async function up(knex: Knex): Promise<void> {
  const mysql = (knex.client as any).dialect === "mysql";
  const innodb = (t: Knex.CreateTableBuilder) => {
    if (mysql) {
      t.charset("utf8mb4");
      t.collate("utf8mb4_bin");
      t.engine("InnoDB");
    }
  };
  if (!(await knex.schema.hasTable("package_blobs"))) {
    await knex.schema.createTable("package_blobs", (t) => {
      innodb(t);
      t.string("storage_key", 64).notNullable().primary();
      t.string("upload_id", 32).notNullable();
      t.bigInteger("size").notNullable();
      t.integer("chunk_bytes").notNullable();
      t.integer("chunk_count").notNullable();
      // ms since the epoch; refreshed when the same bytes are uploaded again (the sweep's age).
      t.bigInteger("created_at").notNullable();
    });
  }
  if (!(await knex.schema.hasTable("package_chunks"))) {
    await knex.schema.createTable("package_chunks", (t) => {
      innodb(t);
      t.string("upload_id", 32).notNullable();
      t.integer("seq").notNullable();
      t.integer("size").notNullable();
      t.string("sha256", 64).notNullable();
      if (mysql) t.specificType("data", "mediumblob").notNullable();
      else t.binary("data").notNullable();
      t.bigInteger("created_at").notNullable();
      t.primary(["upload_id", "seq"]);
      t.index(["created_at"], "package_chunks_created_index");
    });
  }
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists("package_chunks");
  await knex.schema.dropTableIfExists("package_blobs");
}
