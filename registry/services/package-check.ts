/**
 * The one check every uploaded package passes, whichever way it came (the
 * admin app, `sgrid publish`, a direct Patch.Upload): the registry runs it
 * on the stored bytes before the patch row is created, so a package refused
 * here is refused the same way on every path.
 *
 * A package is what `sgrid package` writes and an agent installs:
 * - gzip-compressed (`.tgz`): a plain tar, a zip, random bytes are refused;
 * - the whole gzip stream is readable to its end (a truncated or damaged file
 *   is refused, not just one whose first block is fine);
 * - the data inside is a tar archive, every header checksum right, not cut
 *   off inside an entry;
 * - it has a manifest at its root: `sgrid.json` valid for the contract's
 *   schema and naming this application and server (and, when the server has
 *   one, its type), whose entry is a file of the package; or, for a `node`
 *   server, a `package.json` that is a JSON object.
 * What only a node can check (paths escaping the release, links, sizes once
 * unpacked, the entry's mode) stays with the agent's unpacker.
 *
 * Refusals are PATCH_INVALID (INVALID_ARGUMENT), the message naming the
 * problem; the caller removes the stored file.
 */
import { Transform, Writable, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { Parser, type ReadEntry } from "tar";
import { z } from "zod";
import { MANIFEST_FILE, manifestSchema } from "sgridnext";
import { PatchInvalidError } from "./errors";

/** Largest manifest read; real ones are a few hundred bytes. */
const MAX_MANIFEST_BYTES = 256 * 1024;
const GZIP_MAGIC = [0x1f, 0x8b];

export interface PackageExpectation {
  application: string;
  server: string;
  /** The server's type (`node`, `java`, `binary`); empty = not known. */
  type?: string;
}

function invalid(message: string): PatchInvalidError {
  return new PatchInvalidError(message, { field: "file" });
}

/** `./a/b` -> `a/b`; directories keep no trailing slash. */
function entryPath(p: string): string {
  return p.replace(/^(\.\/)+/, "").replace(/\/+$/, "");
}

/** What the check learnt about a valid package. */
export interface PackageFacts {
  /** The package's own version (its manifest's, else its package.json's `version`), "" when it has none. */
  packageVersion: string;
}

/** Longest package version kept (the manifest schema's limit). */
const MAX_PACKAGE_VERSION = 128;

/** Reads the package from `source` to its end; resolves with its facts when it is a valid package, rejects with PatchInvalidError otherwise. */
export async function checkPackage(source: Readable, expect: PackageExpectation): Promise<PackageFacts> {
  const what = `package of ${expect.application}.${expect.server}`;
  const manifests = new Map<string, Buffer>();
  const files = new Set<string>();
  let entries = 0;
  let first = true;
  const parser = new Parser({
    strict: true,
    onReadEntry: (entry: ReadEntry) => {
      entries++;
      const name = entryPath(entry.path);
      if (entry.type === "File" || entry.type === "OldFile" || entry.type === "ContiguousFile") files.add(name);
      if ((name === MANIFEST_FILE || name === "package.json") && entry.type === "File" && entry.size <= MAX_MANIFEST_BYTES) {
        const parts: Buffer[] = [];
        entry.on("data", (d: Buffer) => parts.push(d));
        entry.on("end", () => manifests.set(name, Buffer.concat(parts)));
      } else {
        entry.resume();
      }
    },
  });
  const magic = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (first) {
        first = false;
        if (chunk.length < 2 || chunk[0] !== GZIP_MAGIC[0] || chunk[1] !== GZIP_MAGIC[1]) {
          cb(invalid(`${what} is not a .tgz: the file is not gzip-compressed (build it with sgrid package)`));
          return;
        }
      }
      cb(null, chunk);
    },
    flush(cb) {
      cb(first ? invalid(`${what} is empty`) : null);
    },
  });
  const gunzip = createGunzip();
  let parseError: Error | undefined;
  parser.on("error", (e: Error) => (parseError ??= e));
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (parseError) {
        cb(parseError);
        return;
      }
      if (parser.write(chunk)) cb();
      else parser.once("drain", () => cb(parseError ?? null));
    },
    final(cb) {
      parser.once("end", () => cb(parseError ?? null));
      parser.end();
    },
  });
  try {
    await pipeline(source, magic, gunzip, sink);
  } catch (err) {
    if (err instanceof PatchInvalidError) throw err;
    if (err === parseError) throw invalid(`${what} is not a readable .tgz: the tar archive inside is not one or is cut off (${(err as Error).message})`);
    const code = (err as NodeJS.ErrnoException).code ?? "";
    if (code.startsWith("Z_") || code.startsWith("ERR_ZLIB") || code === "") throw invalid(`${what} is not a readable .tgz: bad gzip data (${(err as Error).message})`);
    throw err;
  }
  if (entries === 0) throw new PatchInvalidError(`${what} is not a readable .tgz: the data inside is not a tar archive (no entries)`, { field: "file" });
  return { packageVersion: checkManifest(what, expect, manifests, files) };
}

/** The package's own version from a package.json's parsed text ("" when it has none that fits). */
function versionOf(json: unknown): string {
  const v = typeof json === "object" && json !== null ? (json as { version?: unknown }).version : undefined;
  return typeof v === "string" && v.length <= MAX_PACKAGE_VERSION ? v : "";
}

function parseOrUndefined(text: Buffer | undefined): unknown {
  try {
    return text === undefined ? undefined : JSON.parse(text.toString("utf8"));
  } catch {
    return undefined;
  }
}

/** Checks the manifest; returns the package's own version ("" when none). */
function checkManifest(what: string, expect: PackageExpectation, manifests: Map<string, Buffer>, files: Set<string>): string {
  const sgrid = manifests.get(MANIFEST_FILE);
  if (sgrid) {
    let json: unknown;
    try {
      json = JSON.parse(sgrid.toString("utf8"));
    } catch (err) {
      throw new PatchInvalidError(`${what}: ${MANIFEST_FILE} is not valid JSON (${(err as Error).message})`, { field: "file" });
    }
    const parsed = manifestSchema.safeParse(json);
    if (!parsed.success) {
      throw new PatchInvalidError(`${what}: ${MANIFEST_FILE} is invalid: ${z.prettifyError(parsed.error).replace(/\n/g, "; ")}`, { field: "file" });
    }
    const m = parsed.data;
    if (m.app !== expect.application || m.server !== expect.server) {
      throw new PatchInvalidError(`${what}: its ${MANIFEST_FILE} is for ${m.app}.${m.server}`, { field: "file" });
    }
    if (expect.type && m.type !== expect.type) {
      throw new PatchInvalidError(`${what}: its ${MANIFEST_FILE} says type ${m.type}, but the server is of type ${expect.type}`, { field: "file" });
    }
    if (!files.has(entryPath(m.entry.replace(/\\/g, "/")))) {
      throw new PatchInvalidError(`${what}: the entry "${m.entry}" named in ${MANIFEST_FILE} is not a file of the package`, { field: "file" });
    }
    return m.version ?? versionOf(parseOrUndefined(manifests.get("package.json")));
  }
  const pkg = manifests.get("package.json");
  if (pkg && (!expect.type || expect.type === "node")) {
    let json: unknown;
    try {
      json = JSON.parse(pkg.toString("utf8"));
    } catch (err) {
      throw new PatchInvalidError(`${what}: package.json is not valid JSON (${(err as Error).message})`, { field: "file" });
    }
    if (typeof json !== "object" || json === null || Array.isArray(json)) throw new PatchInvalidError(`${what}: package.json is not a JSON object`, { field: "file" });
    return versionOf(json);
  }
  throw new PatchInvalidError(`${what} has no ${MANIFEST_FILE} at its root${!expect.type || expect.type === "node" ? " (nor a package.json)" : ""}: build it with sgrid package`, { field: "file" });
}
