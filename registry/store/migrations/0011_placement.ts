/**
 * Migration 0011: node tags and placements.
 *
 * - `nodes.agent_tags`: the tags the agent sent in its last hello (`--tag`,
 *   its config file), JSON {key: value}; replaced on every hello.
 * - `nodes.admin_tags`: the tags people set (admin, CLI), JSON {key: value
 *   or null}; a value overrides the agent's for that key, null hides the
 *   agent's tag. Kept across agent restarts.
 * - `placements`: one per placed server: the placement query, the count,
 *   the instance template new instances are made from (adapters, env,
 *   limits, health check, launch, version, start), and the reconciler's
 *   last status (placed, matching nodes, the reasons an instance could not
 *   be placed). Idempotent, like 0001.
 */
import type { Knex } from "knex";

export const name = "0011_placement";

export async function up(knex: Knex): Promise<void> {
  const mysql = (knex.client as any).dialect === "mysql";
  for (const column of ["agent_tags", "admin_tags"]) {
    if (!(await knex.schema.hasColumn("nodes", column))) {
      await knex.schema.alterTable("nodes", (t) => {
        // TEXT has no default on MySQL: nullable, read as {} (rows.ts).
        t.text(column).nullable();
      });
    }
  }
  if (await knex.schema.hasTable("placements")) return;
  await knex.schema.createTable("placements", (t) => {
    if (mysql) {
      t.charset("utf8mb4");
      t.collate("utf8mb4_bin");
      t.engine("InnoDB");
    }
    t.increments("id").primary();
    t.integer("server_id").unsigned().notNullable().unique().references("id").inTable("servers").onDelete("CASCADE");
    t.string("query", 1024).notNullable();
    t.integer("count").unsigned().notNullable();
    t.text("template").notNullable();
    t.text("status").nullable();
    t.string("created_by", 64).notNullable().defaultTo("");
    t.bigInteger("created_at").notNullable();
    t.bigInteger("updated_at").notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists("placements");
  for (const column of ["agent_tags", "admin_tags"]) {
    if (await knex.schema.hasColumn("nodes", column)) {
      await knex.schema.alterTable("nodes", (t) => {
        t.dropColumn(column);
      });
    }
  }
}
