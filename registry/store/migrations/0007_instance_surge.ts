/**
 * Migration 0007: surge instances. A publish, restart or rollback that would
 * stop the last serving endpoint of an Obj first starts the new version
 * beside the old one (registry/admin/surge.ts): a second instance row of the
 * same server on the same node, `surge_of` naming the instance it stands in
 * for, in `slot` 1 (the instance itself is slot 0). The uniqueness of a
 * server on a node becomes (server, node, slot): still one instance, and at
 * most one surge beside it. The new index is made before the old one is
 * dropped, so MySQL's foreign key on server_id always has an index.
 * Idempotent, like 0001.
 */
import type { Knex } from "knex";

export const name = "0007_instance_surge";

export async function up(knex: Knex): Promise<void> {
  if (!(await knex.schema.hasColumn("instances", "slot"))) {
    await knex.schema.alterTable("instances", (t) => {
      t.integer("slot").notNullable().defaultTo(0);
      t.integer("surge_of").unsigned().nullable();
    });
    await knex.schema.alterTable("instances", (t) => {
      t.unique(["server_id", "node_id", "slot"], { indexName: "instances_server_node_slot_unique" });
    });
    await knex.schema.alterTable("instances", (t) => {
      t.dropUnique(["server_id", "node_id"], "instances_server_node_unique");
    });
  }
}

export async function down(knex: Knex): Promise<void> {
  if (!(await knex.schema.hasColumn("instances", "slot"))) return;
  await knex("instances").whereNotNull("surge_of").del();
  await knex.schema.alterTable("instances", (t) => {
    t.unique(["server_id", "node_id"], { indexName: "instances_server_node_unique" });
  });
  await knex.schema.alterTable("instances", (t) => {
    t.dropUnique(["server_id", "node_id", "slot"], "instances_server_node_slot_unique");
  });
  await knex.schema.alterTable("instances", (t) => {
    t.dropColumn("surge_of");
    t.dropColumn("slot");
  });
}
