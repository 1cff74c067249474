/**
 * Migration 0013: `node_heartbeats`, each node's last heartbeat time in a
 * narrow table of its own (`node_id` -> `heartbeat_at`, ms since the epoch).
 * The heartbeat flush writes every online node every few seconds; in
 * `nodes` that rewrote the whole row (host info JSON and all, ~800 bytes)
 * for an 8-byte change, here it rewrites 16 bytes. The row goes with its
 * node (ON DELETE CASCADE).
 *
 * `nodes.last_heartbeat_at` stays: registry processes of the previous
 * version, sharing the database during a rolling upgrade, still write it, so
 * readers take the newer of the two (registry/store/knex/nodes.ts). The
 * migration copies the existing times. Idempotent, like 0001.
 */
import type { Knex } from "knex";

export const name = "0013_node_heartbeats";

export async function up(knex: Knex): Promise<void> {
  if (await knex.schema.hasTable("node_heartbeats")) return;
  if ((knex.client as any).dialect === "mysql") {
    await knex.schema.createTable("node_heartbeats", (t) => {
      t.charset("utf8mb4");
      t.collate("utf8mb4_bin");
      t.engine("InnoDB");
      t.integer("node_id").unsigned().notNullable().primary();
      t.foreign("node_id", "node_heartbeats_node_fk").references("id").inTable("nodes").onDelete("CASCADE");
      t.bigInteger("heartbeat_at").notNullable();
    });
  } else {
    // INTEGER PRIMARY KEY: the key is the rowid itself, one b-tree, no separate index.
    await knex.raw("create table node_heartbeats (node_id integer primary key references nodes (id) on delete cascade, heartbeat_at bigint not null)");
  }
  await knex.raw("insert into node_heartbeats (node_id, heartbeat_at) select id, last_heartbeat_at from nodes where last_heartbeat_at is not null");
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists("node_heartbeats");
}
