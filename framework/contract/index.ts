/**
 * The contract between Sgrid's parts: what the registry, the node agent, the
 * packager, the admin app, the CLI and servants must agree on. Every part
 * imports it from here (through the runtime's index).
 */
export {
  NAME_PATTERN, NODE_NAME_PATTERN, CONFIG_FILE_PATTERN, VERSION_PATTERN, SHA256_PATTERN,
  nameProblem, nameRefinement, checkNameOf, isNameOf, parseObjName, isFullObjName, checkName, checkVersion, checkSha256,
  type NameKind,
} from "./names";
export { ENV, ENV_CONTRACT_KEYS, DEFAULT_INHERITED_ENV, PROTOCOLS, ADMIN_APP_METADATA, type EnvContractKey, type AdapterProtocol } from "./env";
export { SERVER_TYPES, MANIFEST_FILE, manifestSchema, type ServerType, type PackageManifest } from "./manifest";
export { CONFIG_FILE_MAX_BYTES } from "./limits";
export { ENDPOINT_INACTIVE_REASONS, SUSPECT_INACTIVE_REASONS, isSuspectReason, type EndpointInactiveReason } from "./endpoints";
export { TAG_KEY_PATTERN, TAG_VALUE_PATTERN, MAX_NODE_TAGS, checkTagKey, parseTag, parseTags, formatTags, type TagMap } from "./tags";
