/**
 * The contract between Sgrid's parts: what the registry, the node agent, the
 * packager and servants must agree on. Every part imports it from here.
 */
export { NAME_PATTERN, VERSION_PATTERN, SHA256_PATTERN, checkName, checkVersion, checkSha256 } from "./names";
export { SERVER_TYPES, MANIFEST_FILE, manifestSchema, type ServerType, type PackageManifest } from "./manifest";
