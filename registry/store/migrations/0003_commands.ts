/**
 * Migration 0003: the `commands` table, the relay of admin commands between
 * registry processes sharing one database. A command for an instance whose
 * node holds its session on another registry process is written here
 * (status `pending`); the process holding the session claims it (`taken`),
 * sends it down the session, and writes the reply back (`done`); the sender
 * polls for that reply and deletes the row. Rows are short-lived; expired
 * ones are pruned. Idempotent, like 0001.
 */
import type { Knex } from "knex";

export const name = "0003_commands";

export async function up(knex: Knex): Promise<void> {
  if (await knex.schema.hasTable("commands")) return;
  const mysql = (knex.client as any).dialect === "mysql";
  await knex.schema.createTable("commands", (t) => {
    if (mysql) {
      t.charset("utf8mb4");
      t.collate("utf8mb4_bin");
      t.engine("InnoDB");
    }
    t.increments("id");
    // No foreign keys: a command outlives nothing and must not block an undeploy.
    t.integer("instance_id").unsigned().notNullable();
    t.string("node", 128).notNullable();
    t.string("command", 128).notNullable();
    t.text("args").notNullable();
    t.integer("timeout_ms").notNullable();
    // Registry process that sent it, and the one that took it to its session.
    t.string("sender", 128).notNullable();
    t.string("owner", 128).nullable();
    // pending -> taken -> done
    t.string("status", 16).notNullable();
    t.boolean("ok").nullable();
    t.text("output", "mediumtext").nullable();
    t.text("error").nullable();
    // Error code for a failed delivery (UNAVAILABLE, DEADLINE_EXCEEDED, COMMAND_FAILED...).
    t.string("error_code", 64).nullable();
    t.bigInteger("created_at").notNullable();
    t.bigInteger("expires_at").notNullable();
    t.bigInteger("done_at").nullable();
    t.index(["status"], "commands_status_index");
    t.index(["expires_at"], "commands_expires_index");
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists("commands");
}
