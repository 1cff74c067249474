/**
 * Migration 0008: `call_stats`, the service monitor's storage. One row per
 * minute, instance, side (server / client), scope (Obj or called service)
 * and method, holding that minute's sums: calls, errors, errors by code,
 * the latency histogram and the total time. Rows older than the retention
 * (7 days) are deleted by the registry's sweep, so the table stays bounded.
 * Idempotent, like 0001.
 */
import type { Knex } from "knex";

export const name = "0008_call_stats";

export async function up(knex: Knex): Promise<void> {
  if (await knex.schema.hasTable("call_stats")) return;
  const mysql = (knex.client as any).dialect === "mysql";
  await knex.schema.createTable("call_stats", (t) => {
    if (mysql) {
      t.charset("utf8mb4");
      t.collate("utf8mb4_bin");
      t.engine("InnoDB");
    }
    t.bigIncrements("id").primary();
    // Start of the minute, ms since the epoch.
    t.bigInteger("minute").notNullable();
    t.string("application", 64).notNullable();
    t.string("server", 64).notNullable();
    t.string("node", 64).notNullable();
    t.bigInteger("instance_id").notNullable();
    t.string("side", 8).notNullable();
    t.string("scope", 255).notNullable();
    t.string("method", 255).notNullable();
    t.bigInteger("calls").notNullable();
    t.bigInteger("errors").notNullable();
    t.text("errors_by_code").notNullable();
    t.text("buckets").notNullable();
    t.double("total_ms").notNullable();
    t.unique(["minute", "instance_id", "side", "scope", "method"], { indexName: "call_stats_key" });
    t.index(["application", "server", "minute"], "call_stats_server_index");
    t.index(["minute"], "call_stats_minute_index");
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists("call_stats");
}
