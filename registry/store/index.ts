/**
 * Public surface of the registry's storage layer. Code outside
 * `registry/store/` imports from here only.
 */

// ---- records and the store interface --------------------------------------------
export * from "./records";
export type * from "./base";

// ---- opening a database ------------------------------------------------------------
export {
  openDatabase, redactUrl, parseDatabaseUrl, databaseInfo, DATABASE_DEFAULTS,
  type DatabaseOptions, type DatabaseTarget, type DatabaseInfo, type Dialect,
} from "./db";
export { migrateLatest, migrationStatus, MIGRATE_DEFAULTS, MIGRATIONS_TABLE, type MigrateOptions } from "./migrate";
export { KnexStore, openStore, type OpenStoreOptions } from "./knex-store";

// ---- helpers services share ------------------------------------------------------------
export { inactiveReason, isEndpointActive } from "./knex/endpoints";
export { scopeKey, instanceScopes, describeConfig } from "./scope";
export { MAX_CONFIG_BYTES } from "./knex/configs";
export type { PackageBlob, PackageBlobRepo, PackageChunk } from "./knex/package-blobs";
export { checkConfigSyntax, configSyntaxProblem, structuredFormat } from "./config-syntax";
export * as validate from "./validate";
export { isConnectionError } from "./db-errors";
