/**
 * Migration 0004: the `login_sessions` table, login tokens of people using the
 * Admin API. Only the token's sha256 is stored (a database dump does not let
 * anyone log in), with the user and an expiry, so that every registry process
 * sharing the database accepts the same token. Expired rows are pruned by the
 * registry. Idempotent, like 0001.
 */
import type { Knex } from "knex";

export const name = "0004_login_sessions";

export async function up(knex: Knex): Promise<void> {
  if (await knex.schema.hasTable("login_sessions")) return;
  const mysql = (knex.client as any).dialect === "mysql";
  await knex.schema.createTable("login_sessions", (t) => {
    if (mysql) {
      t.charset("utf8mb4");
      t.collate("utf8mb4_bin");
      t.engine("InnoDB");
    }
    // sha256 hex of the token.
    t.string("token_hash", 64).primary();
    // No foreign key: a deleted user's sessions are removed by the store, and
    // a session of an unknown user is refused anyway.
    t.string("user_name", 64).notNullable();
    t.bigInteger("created_at").notNullable();
    t.bigInteger("expires_at").notNullable();
    t.index(["user_name"], "login_sessions_user_index");
    t.index(["expires_at"], "login_sessions_expires_index");
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists("login_sessions");
}
