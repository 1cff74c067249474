/**
 * The registry's parts: each API (and each background job) is a factory from
 * the shared context to its servants and start/stop hooks. RegistryServer
 * builds every part listed in REGISTRY_PARTS, mounts the servants on its
 * adapter(s) under their Obj names, and starts / stops the parts in order.
 *
 * Obj names: Sgrid.Registry.QueryObj, .NodeObj, .ConfigObj, .PatchObj, .AdminObj.
 */
import type { RegistryPartFactory } from "./context";
import { queryPart } from "../query";
import { configPart, patchPart } from "../services";
import { nodePart } from "../node";
import { adminPart } from "../admin";

// The part interfaces live in context.ts (interfaces only), so that a part
// can import them without importing this file, which imports every part.
export type { RegistryPart, RegistryPartFactory } from "./context";

/** Name -> factory; each part adds its own line (imports above). */
export const REGISTRY_PARTS: Record<string, RegistryPartFactory> = {
  query: queryPart,
  config: configPart,
  patch: patchPart,
  node: nodePart,
  admin: (ctx) => adminPart(ctx),
};
