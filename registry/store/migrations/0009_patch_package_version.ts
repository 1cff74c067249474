/**
 * Migration 0009: the package's own version (its sgrid.json or package.json
 * `version`, read by the registry's package check) kept with each patch, to
 * show beside the registry's vN. Older patches have "". Idempotent, like 0001.
 */
import type { Knex } from "knex";

export const name = "0009_patch_package_version";

export async function up(knex: Knex): Promise<void> {
  if (!(await knex.schema.hasColumn("patches", "package_version"))) {
    await knex.schema.alterTable("patches", (t) => {
      t.string("package_version", 128).notNullable().defaultTo("");
    });
  }
}

export async function down(knex: Knex): Promise<void> {
  if (!(await knex.schema.hasColumn("patches", "package_version"))) return;
  await knex.schema.alterTable("patches", (t) => {
    t.dropColumn("package_version");
  });
}
