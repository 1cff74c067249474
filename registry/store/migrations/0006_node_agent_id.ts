/**
 * Migration 0006: `nodes.agent_id`, the identity of the agent that holds a
 * node's session (a random id each agent keeps in its data directory), so
 * that every registry process can refuse a second agent under a node name
 * another agent is in session with. Idempotent, like 0001.
 */
import type { Knex } from "knex";

export const name = "0006_node_agent_id";

export async function up(knex: Knex): Promise<void> {
  if (await knex.schema.hasColumn("nodes", "agent_id")) return;
  await knex.schema.alterTable("nodes", (t) => {
    t.string("agent_id", 64).notNullable().defaultTo("");
  });
}

export async function down(knex: Knex): Promise<void> {
  if (!(await knex.schema.hasColumn("nodes", "agent_id"))) return;
  await knex.schema.alterTable("nodes", (t) => {
    t.dropColumn("agent_id");
  });
}
