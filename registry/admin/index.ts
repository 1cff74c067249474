/**
 * Public surface of the registry's admin part: authentication (users,
 * passwords, login tokens, roles, cluster and query tokens), the Admin API
 * servant, and the durable task runner.
 */

// ---- authentication ---------------------------------------------------------------
export {
  createAuthenticator, AUTH_DEFAULTS, hasRole, bearerToken, isLoopbackPeer, peerHost,
  type AuthOptions, type AuthenticatorDeps, type RegistryAuthenticator,
} from "./auth";
export { hashPassword, verifyPassword, validatePassword, SCRYPT_DEFAULTS, PASSWORD_MIN_LENGTH } from "./passwords";

// ---- Admin API ----------------------------------------------------------------------
export { RegistryAdminServant, ADMIN_API_DEFAULTS } from "./admin-servant";
export { PLACEMENT_DEFAULTS } from "./placement";

// ---- tasks ----------------------------------------------------------------------------
export { TaskRunner, TASK_RUNNER_DEFAULTS, type TaskRunnerOptions } from "./task-runner";

// ---- the registry part ------------------------------------------------------------------
export { adminPart, type AdminPart } from "./part";
