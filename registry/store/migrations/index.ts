/**
 * Every schema migration, in order. Migrations are modules, not files found
 * by globbing, so they run from compiled output and from a bundle alike.
 * Append new ones; never edit or reorder a released one.
 */
import type { Knex } from "knex";
import * as m0001 from "./0001_initial";

export interface MigrationModule extends Knex.Migration {
  /** Stable name recorded in the migrations table. */
  readonly name: string;
}

export const MIGRATIONS: readonly MigrationModule[] = Object.freeze([m0001]);
