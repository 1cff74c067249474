/**
 * Public surface of the admin app (`sgridnext/admin`).
 */

// ---- the app and its server ----------------------------------------------------
export { createAdminApp, type AdminApp } from "./app";
export { AdminServer } from "./server";
export { ADMIN_DEFAULTS, resolveAdminOptions, type AdminOptions, type ResolvedAdminOptions } from "./options";

// ---- errors ---------------------------------------------------------------------------
export * from "./errors";
