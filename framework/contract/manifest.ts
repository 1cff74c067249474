/**
 * The package manifest: what a package says about itself, as the packager
 * (`sgrid package`) writes it and the node agent reads it.
 *
 * `sgrid.json` at the root of the package:
 * ```json
 * { "app": "Demo", "server": "HelloServer", "type": "node", "entry": "dist/main.js",
 *   "version": "1.4.0", "framework": "0.1.0", "sourceMaps": true }
 * ```
 * The entry must be a relative path without `..` segments; the agent also
 * checks that it resolves to a regular file inside the release.
 */
import * as path from "node:path";
import type { z } from "zod";
import { NAME_PATTERN } from "./names";

export const SERVER_TYPES = ["node", "java", "binary"] as const;
/** How a server's program is started. */
export type ServerType = (typeof SERVER_TYPES)[number];

/** The manifest's file name at the root of a package (and of a project). */
export const MANIFEST_FILE = "sgrid.json";

/** The manifest's zod schema; zod is loaded when a manifest is first checked (index.ts loads this module for every servant, which never checks one). */
function buildManifestSchema() {
  const { z } = require("zod") as typeof import("zod");
  const relativePath = z.string().min(1).max(1024)
    .refine((p) => !p.includes("\0") && !path.isAbsolute(p) && !p.split(/[\\/]/).includes(".."), {
      message: "must be a relative path without '..' segments",
    });

  return z.object({
    app: z.string().regex(NAME_PATTERN),
    server: z.string().regex(NAME_PATTERN),
    type: z.enum(SERVER_TYPES),
    entry: relativePath,
    version: z.string().min(1).max(128).optional(),
    framework: z.string().min(1).max(128).optional(),
    /** Start a node server with `--enable-source-maps` (a bundle ships its map beside it). */
    sourceMaps: z.boolean().optional(),
  });
}

type ManifestSchema = ReturnType<typeof buildManifestSchema>;
let built: ManifestSchema | undefined;

/** Checks a parsed sgrid.json: `manifestSchema.safeParse(json)` / `.parse(json)`, as a zod schema does. */
export const manifestSchema: Pick<ManifestSchema, "safeParse" | "parse"> = {
  safeParse: (value: unknown) => (built ??= buildManifestSchema()).safeParse(value),
  parse: (value: unknown) => (built ??= buildManifestSchema()).parse(value),
};

/** A validated package manifest. */
export type PackageManifest = z.infer<ManifestSchema>;
