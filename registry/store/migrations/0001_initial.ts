/**
 * Migration 0001: the registry's first schema.
 *
 * Runs unchanged on SQLite and MySQL/MariaDB. Idempotent table by table:
 * MySQL commits DDL implicitly, so a process that died half-way leaves some
 * tables behind, and the next run must create only the missing ones.
 *
 * Conventions: times are BIGINT milliseconds since the epoch (no timezone or
 * DATETIME precision differences between dialects); JSON is TEXT written and
 * parsed by the store; MySQL tables use utf8mb4_bin so that names compare
 * case-sensitively, as they do on SQLite.
 */
import type { Knex } from "knex";

export const name = "0001_initial";

const TOPICS = ["nodes", "servers", "instances", "patches", "configs", "tasks", "users", "events"];

/** Tables in creation order (referenced tables first); dropped in reverse. */
const TABLES: Array<[string, (t: Knex.CreateTableBuilder) => void]> = [
  ["revisions", (t) => {
    t.string("topic", 32).primary();
    t.bigInteger("rev").notNullable().defaultTo(0);
  }],
  ["nodes", (t) => {
    t.increments("id");
    t.string("name", 128).notNullable().unique("nodes_name_unique");
    t.string("address", 255).notNullable().defaultTo("");
    t.string("agent_version", 64).notNullable().defaultTo("");
    t.text("host_info").notNullable();
    t.bigInteger("last_heartbeat_at").nullable();
    t.boolean("online").notNullable().defaultTo(false);
    t.bigInteger("created_at").notNullable();
    t.bigInteger("updated_at").notNullable();
  }],
  ["servers", (t) => {
    t.increments("id");
    t.string("application", 64).notNullable();
    t.string("name", 64).notNullable();
    t.string("type", 16).notNullable();
    // No foreign key: servers and patches would reference each other; the store checks it.
    t.integer("default_patch_id").unsigned().nullable();
    t.text("defaults").notNullable();
    // Last patch version handed out; bumped under the row lock to number patches.
    t.integer("patch_seq").notNullable().defaultTo(0);
    t.bigInteger("created_at").notNullable();
    t.bigInteger("updated_at").notNullable();
    t.unique(["application", "name"], { indexName: "servers_app_name_unique" });
  }],
  ["patches", (t) => {
    t.increments("id");
    t.integer("server_id").unsigned().notNullable().references("id").inTable("servers").onDelete("CASCADE");
    t.integer("version").notNullable();
    t.string("sha256", 64).notNullable();
    t.bigInteger("size").notNullable();
    t.text("comment").notNullable();
    t.string("uploader", 128).notNullable();
    t.string("storage_key", 255).notNullable();
    t.bigInteger("created_at").notNullable();
    t.unique(["server_id", "version"], { indexName: "patches_server_version_unique" });
    t.index(["storage_key"], "patches_storage_key_index");
  }],
  ["instances", (t) => {
    t.increments("id");
    t.integer("server_id").unsigned().notNullable().references("id").inTable("servers").onDelete("RESTRICT");
    t.integer("node_id").unsigned().notNullable().references("id").inTable("nodes").onDelete("RESTRICT");
    t.text("adapters").notNullable();
    t.text("env").notNullable();
    t.text("limits").notNullable();
    t.text("health_check").nullable();
    t.string("desired_state", 16).notNullable();
    t.integer("desired_patch_id").unsigned().nullable().references("id").inTable("patches").onDelete("RESTRICT");
    t.string("observed_state", 16).notNullable();
    t.integer("pid").nullable();
    t.integer("observed_patch_id").unsigned().nullable();
    t.integer("restarts").notNullable().defaultTo(0);
    t.text("last_exit_reason").nullable();
    t.boolean("drained").notNullable().defaultTo(false);
    t.bigInteger("observed_at").nullable();
    t.bigInteger("created_at").notNullable();
    t.bigInteger("updated_at").notNullable();
    t.unique(["server_id", "node_id"], { indexName: "instances_server_node_unique" });
    t.index(["node_id"], "instances_node_index");
  }],
  ["config_files", (t) => {
    t.increments("id");
    t.string("level", 16).notNullable();
    t.string("scope_key", 255).notNullable();
    t.string("file_name", 128).notNullable();
    t.integer("current_version").notNullable().defaultTo(0);
    t.bigInteger("created_at").notNullable();
    t.bigInteger("updated_at").notNullable();
    t.unique(["level", "scope_key", "file_name"], { indexName: "config_files_scope_unique" });
    t.index(["scope_key"], "config_files_scope_index");
  }],
  ["config_versions", (t) => {
    t.increments("id");
    t.integer("file_id").unsigned().notNullable().references("id").inTable("config_files").onDelete("CASCADE");
    t.integer("version").notNullable();
    t.text("content", "mediumtext").notNullable();
    t.string("author", 128).notNullable();
    t.text("comment").notNullable();
    t.integer("rolled_back_from").nullable();
    t.bigInteger("created_at").notNullable();
    t.unique(["file_id", "version"], { indexName: "config_versions_file_version_unique" });
  }],
  ["tasks", (t) => {
    t.increments("id");
    t.string("kind", 16).notNullable();
    t.text("params").notNullable();
    t.string("status", 16).notNullable();
    t.string("created_by", 128).notNullable();
    t.text("reason").nullable();
    t.string("owner", 128).nullable();
    t.bigInteger("lease_until").nullable();
    t.bigInteger("created_at").notNullable();
    t.bigInteger("started_at").nullable();
    t.bigInteger("finished_at").nullable();
    t.bigInteger("updated_at").notNullable();
    t.index(["status"], "tasks_status_index");
  }],
  ["task_items", (t) => {
    t.increments("id");
    t.integer("task_id").unsigned().notNullable().references("id").inTable("tasks").onDelete("CASCADE");
    // No foreign key: items are history and outlive an undeployed instance.
    t.integer("instance_id").unsigned().notNullable();
    t.string("application", 64).notNullable();
    t.string("server", 64).notNullable();
    t.string("node", 128).notNullable();
    t.integer("batch").notNullable();
    t.string("status", 16).notNullable();
    t.text("reason").nullable();
    t.bigInteger("started_at").nullable();
    t.bigInteger("finished_at").nullable();
    t.bigInteger("updated_at").notNullable();
    t.index(["task_id"], "task_items_task_index");
  }],
  ["users", (t) => {
    t.increments("id");
    t.string("name", 64).notNullable().unique("users_name_unique");
    t.string("password_hash", 512).notNullable();
    t.bigInteger("created_at").notNullable();
    t.bigInteger("updated_at").notNullable();
  }],
  ["user_roles", (t) => {
    t.increments("id");
    t.integer("user_id").unsigned().notNullable().references("id").inTable("users").onDelete("CASCADE");
    t.string("application", 64).notNullable();
    t.string("role", 16).notNullable();
    t.unique(["user_id", "application"], { indexName: "user_roles_user_app_unique" });
  }],
  ["events", (t) => {
    t.bigIncrements("id");
    t.bigInteger("time").notNullable();
    t.string("actor", 128).notNullable();
    t.string("kind", 64).notNullable();
    t.string("target", 255).notNullable();
    t.text("message").notNullable();
    t.text("data").notNullable();
    t.index(["time"], "events_time_index");
    t.index(["target"], "events_target_index");
    t.index(["kind"], "events_kind_index");
  }],
];

export async function up(knex: Knex): Promise<void> {
  const mysql = (knex.client as any).dialect === "mysql";
  for (const [table, build] of TABLES) {
    if (await knex.schema.hasTable(table)) continue;
    await knex.schema.createTable(table, (t) => {
      if (mysql) {
        t.charset("utf8mb4");
        t.collate("utf8mb4_bin");
        t.engine("InnoDB");
      }
      build(t);
    });
  }
  await knex("revisions").insert(TOPICS.map((topic) => ({ topic, rev: 0 }))).onConflict("topic").ignore();
}

export async function down(knex: Knex): Promise<void> {
  for (const [table] of [...TABLES].reverse()) await knex.schema.dropTableIfExists(table);
}
