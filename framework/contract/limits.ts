/**
 * Limits every part enforces the same way (the registry decides; clients
 * may show them, never apply a different one).
 */

/**
 * Largest config file, in UTF-8 bytes, at any level: 1 MiB. A servant's
 * Load answers the merge of up to three levels in one gRPC message, which
 * must stay under gRPC's default 4 MiB.
 */
export const CONFIG_FILE_MAX_BYTES = 1024 * 1024;
