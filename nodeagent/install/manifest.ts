/**
 * Reading the package manifest (framework/contract/manifest.ts) of an unpacked release.
 *
 * `sgrid.json` at the root of the package:
 * ```json
 * { "app": "Demo", "server": "HelloServer", "type": "node", "entry": "dist/main.js",
 *   "version": "1.4.0", "framework": "0.1.0" }
 * ```
 * A `node` package without `sgrid.json` may rely on its `package.json`
 * instead: the entry is its `main` (default `index.js`, as Node itself does),
 * app and server are those of the server being installed.
 *
 * The entry must be a relative path that resolves (through links) to a
 * regular file inside the release; for `binary` it must also be executable.
 * A manifest naming another app or server is refused, so a package uploaded
 * to the wrong server cannot be started as this one.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { prettifyError } from "../lazy-schema";
import { MANIFEST_FILE, manifestSchema, type PackageManifest, type ServerType } from "sgridnext";
import { PackageManifestError } from "./errors";

/** Where the manifest of an unpacked release came from. */
export type ManifestSource = "sgrid.json" | "package.json";

/** Largest manifest file read; real ones are a few hundred bytes. */
const MAX_MANIFEST_BYTES = 256 * 1024;

export interface ManifestExpectation {
  app: string;
  server: string;
  /** When given, the package's type must be this one. */
  type?: ServerType;
}

/**
 * Reads and validates the manifest of the release unpacked at `dir`, and
 * checks that its entry exists inside the release. Rejects with
 * PackageManifestError naming the problem.
 */
export async function readManifest(dir: string, expect: ManifestExpectation): Promise<{ manifest: PackageManifest; source: ManifestSource }> {
  const sgridJson = await readSmallJson(dir, MANIFEST_FILE);
  let manifest: PackageManifest;
  let source: ManifestSource;
  if (sgridJson !== undefined) {
    const parsed = manifestSchema.safeParse(sgridJson);
    if (!parsed.success) {
      throw new PackageManifestError(`${MANIFEST_FILE} is invalid: ${prettifyError(parsed.error).replace(/\n/g, "; ")}`, { file: MANIFEST_FILE });
    }
    manifest = parsed.data;
    source = "sgrid.json";
  } else {
    const pkg = await readSmallJson(dir, "package.json");
    if (pkg === undefined) {
      throw new PackageManifestError(`package has neither ${MANIFEST_FILE} nor package.json at its root`, {});
    }
    const main = (pkg as { main?: unknown }).main ?? "index.js";
    const version = (pkg as { version?: unknown }).version;
    const parsed = manifestSchema.safeParse({
      app: expect.app, server: expect.server, type: "node", entry: main,
      ...(typeof version === "string" && version !== "" ? { version } : {}),
    });
    if (!parsed.success) {
      throw new PackageManifestError(`package.json "main" is invalid: ${prettifyError(parsed.error).replace(/\n/g, "; ")}`, { file: "package.json" });
    }
    manifest = parsed.data;
    source = "package.json";
  }
  if (manifest.app !== expect.app || manifest.server !== expect.server) {
    throw new PackageManifestError(`package is for ${manifest.app}.${manifest.server}, not ${expect.app}.${expect.server}`, { app: manifest.app, server: manifest.server });
  }
  if (expect.type !== undefined && manifest.type !== expect.type) {
    throw new PackageManifestError(`package is of type ${manifest.type}, but the server is of type ${expect.type}`, { type: manifest.type });
  }
  await checkEntry(dir, manifest);
  return { manifest, source };
}

/**
 * Resolves the manifest's entry inside `dir` and checks it is a regular file
 * (executable for `binary`). Returns its real absolute path.
 */
export async function checkEntry(dir: string, manifest: PackageManifest): Promise<string> {
  const root = await fs.promises.realpath(dir);
  let real: string;
  try {
    real = await fs.promises.realpath(path.join(root, manifest.entry));
  } catch {
    throw new PackageManifestError(`entry "${manifest.entry}" does not exist in the package`, { entry: manifest.entry });
  }
  if (!isInside(root, real)) {
    throw new PackageManifestError(`entry "${manifest.entry}" resolves outside the release`, { entry: manifest.entry });
  }
  const st = await fs.promises.stat(real);
  if (!st.isFile()) throw new PackageManifestError(`entry "${manifest.entry}" is not a regular file`, { entry: manifest.entry });
  if (manifest.type === "binary" && (st.mode & 0o111) === 0) {
    throw new PackageManifestError(`entry "${manifest.entry}" of a binary server is not executable`, { entry: manifest.entry });
  }
  return real;
}

/** True when `p` is `root` or below it (both absolute and normalised). */
export function isInside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel === "" || (rel !== ".." && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}

/** Reads a small JSON file at the release root; undefined when it does not exist. Never follows a link. */
async function readSmallJson(dir: string, name: string): Promise<unknown> {
  const file = path.join(dir, name);
  let st: fs.Stats;
  try {
    st = await fs.promises.lstat(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  if (!st.isFile()) throw new PackageManifestError(`${name} is not a regular file`, { file: name });
  if (st.size > MAX_MANIFEST_BYTES) throw new PackageManifestError(`${name} is larger than ${MAX_MANIFEST_BYTES} bytes`, { file: name });
  const text = await fs.promises.readFile(file, "utf8");
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new PackageManifestError(`${name} is not valid JSON: ${(err as Error).message}`, { file: name });
  }
}
