/**
 * Migration 0005: the `observed` revision topic. Agents' observed-state
 * reports bump it instead of `instances`, so that what agents report (often)
 * is told apart from what operators and tasks change (desired state, spec).
 * Idempotent, like 0001.
 */
import type { Knex } from "knex";

export const name = "0005_observed_topic";

export async function up(knex: Knex): Promise<void> {
  await knex("revisions").insert({ topic: "observed", rev: 0 }).onConflict("topic").ignore();
}

export async function down(knex: Knex): Promise<void> {
  await knex("revisions").where({ topic: "observed" }).del();
}
