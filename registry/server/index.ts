/**
 * The registry process: RegistryServer and what it is built from.
 */
export { RegistryServer, REGISTRY_APP, REGISTRY_SERVER, registryObj, type RegistryAddress } from "./registry-server";
export {
  REGISTRY_DEFAULTS, REGISTRY_ENV, resolveRegistryOptions, optionsFromText, textSettingsFromEnv, parseDuration, parseSize, describeOptions,
  type RegistryServerOptions, type ResolvedRegistryOptions, type RegistryTlsOptions, type RegistryTextSettings,
} from "./options";
export { PollingChangeFeed, CHANGE_FEED_DEFAULTS, type ChangeFeedOptions } from "./change-feed";
export { REGISTRY_PARTS, type RegistryPart, type RegistryPartFactory } from "./parts";
export type { RegistryContext, RegistrySettings, ChangeFeed, Authenticator, AuthUser, SessionHub, PackageStorage } from "./context";
