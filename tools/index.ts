/**
 * Public surface of sgridnext-tools: code generation and packaging, the two
 * things a service project needs at build time (never at run time).
 */

// ---- code generation ---------------------------------------------------------------
export { generate, DEFAULT_TS_PROTO_OPTIONS, GENERATED_HEADER, type GenerateOptions, type GenerateResult } from "./codegen";

// ---- packaging ------------------------------------------------------------------------
export {
  buildPackage, hashFile, formatBytes, PACKAGE_MTIME, DEFAULT_EXCLUDE_DEPS,
  type PackageOptions, type PackageResult,
} from "./package/build-package";

// ---- commands (for the `sgrid` and `sgrid-tools` programs) ------------------------------
export { registerGen, registerPackage, runCommand } from "./commands";
