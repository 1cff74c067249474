/**
 * Migration 0002: instances get their launch options (LaunchOptions of
 * types.proto: args, JVM/node options, entry, run-as user, stop signal and
 * grace, keepalive timeout) as a JSON TEXT column. NULL on existing rows
 * means `{}` (the agent's defaults). Idempotent: MySQL commits DDL at once,
 * so a run that died after the ALTER must not fail the next time.
 */
import type { Knex } from "knex";

export const name = "0002_instance_launch";

export async function up(knex: Knex): Promise<void> {
  if (await knex.schema.hasColumn("instances", "launch")) return;
  await knex.schema.alterTable("instances", (t) => {
    t.text("launch").nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  if (!(await knex.schema.hasColumn("instances", "launch"))) return;
  await knex.schema.alterTable("instances", (t) => {
    t.dropColumn("launch");
  });
}
