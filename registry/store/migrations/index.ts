/**
 * Every schema migration, in order. Migrations are modules, not files found
 * by globbing, so they run from compiled output and from a bundle alike.
 * Append new ones; never edit or reorder a released one.
 */
import type { Knex } from "knex";
import * as m0001 from "./0001_initial";
import * as m0002 from "./0002_instance_launch";
import * as m0003 from "./0003_commands";
import * as m0004 from "./0004_login_sessions";
import * as m0005 from "./0005_observed_topic";
import * as m0006 from "./0006_node_agent_id";
import * as m0007 from "./0007_instance_surge";
import * as m0008 from "./0008_call_stats";
import * as m0009 from "./0009_patch_package_version";
import * as m0011 from "./0011_placement";
import * as m0012 from "./0012_package_chunks";

export interface MigrationModule extends Knex.Migration {
  /** Stable name recorded in the migrations table. */
  readonly name: string;
}

export const MIGRATIONS: readonly MigrationModule[] = Object.freeze([m0001, m0002, m0003, m0004, m0005, m0006, m0007, m0008, m0009, m0011, m0012]);
