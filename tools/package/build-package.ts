/**
 * `sgrid package`: builds `<App>.<Server>-<version>.tgz`, the package a node
 * agent installs, from a project folder.
 *
 * The package holds, in this order:
 * 1. `sgrid.json`, the manifest the agent reads (nodeagent/install/manifest.ts:
 *    app, server, type, entry, version, framework), generated here;
 * 2. the project's files: its `include` paths (from the project's
 *    `sgrid.json`, plus `--include`), minus its `exclude` paths;
 * 3. for a node project, by default (`"bundle": true`), the entry bundled
 *    with everything it requires into one file at the entry's path
 *    (tools/package/bundle.ts: esbuild), plus the few packages that cannot
 *    be bundled (native addons, `bundleExternal`) with their dependencies;
 *    with `"bundle": false` (or `--no-bundle`), the production part of its
 *    installed `node_modules` instead.
 *
 * How node_modules get in (and why): the packages npm installed, minus those
 * its lockfile (`node_modules/.package-lock.json`, else `package-lock.json`)
 * marks `dev`, minus `excludeDeps` (default: the `@bufbuild/buf` compiler
 * binaries, ~90 MB that only `sgrid gen` needs), minus every `.bin` folder.
 * This is what `npm prune --omit=dev` would leave, taken without touching the
 * project and without network: the build machine's native modules go in as
 * built, so build on the same OS / CPU / Node major as the nodes.
 * A dependency that is a link (`npm link`, a `file:` directory) is refused:
 * install it from a tarball or a registry first.
 *
 * The archive is deterministic: entries sorted, directories before their
 * contents, mtime fixed (1985-10-26, as npm pack does), owner and group left
 * out, modes 0755 (directories, files with any execute bit) or 0644, gzip
 * header without a time. Symbolic links are kept only when they resolve
 * inside the package; absolute paths and `..` never occur.
 *
 * The project's own `sgrid.json` (written by `sgrid create`) says
 * `{ app, server, type, entry, version?, include?, exclude?, excludeDeps?,
 * bundle?, bundleExternal? }`; flags override it. Defaults when neither
 * says: type `node` when a package.json exists, else `binary`; entry =
 * package.json `main` for node; bundle = true for node; include =
 * `["package.json"]` for a bundled node server (the bundle replaces `dist`),
 * `["dist", "package.json"]` for an unbundled one, the entry's top folder
 * (or the entry itself) otherwise; exclude = `["dist/test"]` for node; version =
 * `--version`, else the project's sgrid.json `version`, else package.json
 * `version`, else the UTC time `YYYYMMDD.HHMMSS`.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import {
  ConfigError, FailedPreconditionError, InvalidArgumentError,
  MANIFEST_FILE, NAME_PATTERN, SERVER_TYPES, manifestSchema, type PackageManifest, type ServerType,
} from "sgridnext";
import { compareEntries, hashFile, writeArchive, type Entry } from "./archive";
import { bundleEntry } from "./bundle";

export { formatBytes, hashFile, PACKAGE_MTIME } from "./archive";

/** Dependencies left out of node packages unless the project's `excludeDeps` says otherwise. */
export const DEFAULT_EXCLUDE_DEPS = Object.freeze(["@bufbuild/buf", "@bufbuild/buf-*"]);
/** Version labels: safe in a file name. */
const VERSION_LABEL = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;

export interface PackageOptions {
  /** Project folder. Default the current directory. */
  dir?: string;
  /** Output folder. Default the project folder. */
  out?: string;
  /** `App.Server` when the project has no sgrid.json (or to override it). */
  name?: string;
  type?: ServerType;
  /** Entry, relative to the project. */
  entry?: string;
  /** Version label. */
  version?: string;
  /** Extra paths to include, relative to the project. */
  include?: string[];
  /** Bundle a node server (default: the project's sgrid.json `bundle`, else true). */
  bundle?: boolean;
}

export interface PackageResult {
  file: string;
  size: number;
  sha256: string;
  manifest: PackageManifest;
  /** Entries written (files, directories, links), the manifest included. */
  entries: number;
  /** For a bundled node server: the packages inlined into the bundle (name@version), sorted. */
  bundled?: string[];
}

interface ProjectConfig {
  app?: string;
  server?: string;
  type?: string;
  entry?: string;
  version?: string;
  include?: string[];
  exclude?: string[];
  excludeDeps?: string[];
  bundle?: boolean;
  bundleExternal?: string[];
  sourceMaps?: boolean;
}

interface LockPackage {
  dev?: boolean;
  link?: boolean;
  resolved?: string;
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as unknown;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new ConfigError(`${file} is not valid JSON: ${(err as Error).message}`, { file });
  }
}

function isInside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel === "" || (!rel.startsWith(`..${path.sep}`) && rel !== ".." && !path.isAbsolute(rel));
}

/** Normalises a project-relative path given by a user; throws for absolute or escaping paths. */
function relPath(what: string, p: string): string {
  const norm = path.posix.normalize(p.replace(/\\/g, "/")).replace(/\/+$/, "");
  if (!norm || norm === "." || path.posix.isAbsolute(norm) || norm === ".." || norm.startsWith("../")) {
    throw new InvalidArgumentError(`${what} ${JSON.stringify(p)} must be a path inside the project`, { [what]: p });
  }
  return norm;
}

function utcStamp(d = new Date()): string {
  const z = (n: number) => String(n).padStart(2, "0");
  return `${d.getUTCFullYear()}${z(d.getUTCMonth() + 1)}${z(d.getUTCDate())}.${z(d.getUTCHours())}${z(d.getUTCMinutes())}${z(d.getUTCSeconds())}`;
}

function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${glob.split("*").map((s) => s.replace(/[.+?^${}()|[\]\\/]/g, "\\$&")).join("[^/]*")}$`);
}

/**
 * Collects entries under `rel` (a file, link or folder), depth first, sorted.
 * `skip(rel, isDir)` prunes. Links must resolve inside `root`.
 */
function walk(root: string, rel: string, out: Map<string, Entry>, skip: (rel: string, isDir: boolean) => boolean): void {
  const abs = path.join(root, rel);
  const st = fs.lstatSync(abs);
  if (st.isSymbolicLink()) {
    let real: string;
    try {
      real = fs.realpathSync(abs);
    } catch {
      throw new FailedPreconditionError(`${rel} is a dangling link; remove it or leave it out of the package`, { path: rel });
    }
    if (!isInside(fs.realpathSync(root), real)) {
      throw new FailedPreconditionError(`${rel} is a link to ${real}, outside the project; packages hold no links out of their tree`, { path: rel });
    }
    if (path.isAbsolute(fs.readlinkSync(abs))) {
      throw new FailedPreconditionError(`${rel} is a link with an absolute target; make it relative`, { path: rel });
    }
    out.set(rel, { rel, kind: "symlink" });
    return;
  }
  if (st.isDirectory()) {
    if (skip(rel, true)) return;
    out.set(rel, { rel, kind: "dir" });
    for (const name of fs.readdirSync(abs).sort()) walk(root, `${rel}/${name}`, out, skip);
    return;
  }
  if (st.isFile()) {
    if (!skip(rel, false)) out.set(rel, { rel, kind: "file" });
    return;
  }
  // Sockets, fifos, devices: never packaged (the agent refuses them too).
}

/** Adds the directories leading to `rel` (so every entry's parent precedes it). */
function addParents(rel: string, out: Map<string, Entry>): void {
  const segs = rel.split("/");
  for (let i = 1; i < segs.length; i++) {
    const p = segs.slice(0, i).join("/");
    if (!out.has(p)) out.set(p, { rel: p, kind: "dir" });
  }
}

/** The production packages of an installed node_modules, as folder paths (`node_modules/a/node_modules/b`). */
function productionPackages(root: string, excludeDeps: readonly string[]): string[] {
  const nm = path.join(root, "node_modules");
  if (!fs.existsSync(nm)) return [];
  const lock = (readJson(path.join(nm, ".package-lock.json")) ?? readJson(path.join(root, "package-lock.json"))) as
    { packages?: Record<string, LockPackage> } | undefined;
  if (!lock?.packages) {
    throw new FailedPreconditionError(`no npm lockfile in ${root} (node_modules/.package-lock.json or package-lock.json): run npm install first`, { dir: root });
  }
  const excluded = excludeDeps.map(globToRegExp);
  const dropped: string[] = [];
  const keep: string[] = [];
  for (const [key, info] of Object.entries(lock.packages).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (!key.startsWith("node_modules/")) continue; // the root project, workspaces
    if (dropped.some((d) => key.startsWith(`${d}/`))) continue;
    const name = key.slice(key.lastIndexOf("node_modules/") + "node_modules/".length);
    if (info.dev || excluded.some((re) => re.test(name))) {
      dropped.push(key);
      continue;
    }
    const abs = path.join(root, key);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(abs);
    } catch {
      continue; // optional dependency not installed on this platform
    }
    if (info.link || st.isSymbolicLink()) {
      throw new FailedPreconditionError(
        `${key} is a link (npm link or a file: directory dependency${info.resolved ? ` -> ${info.resolved}` : ""}); install it from a tarball or a registry before packaging`,
        { path: key },
      );
    }
    keep.push(key);
  }
  return keep;
}

/** Reads the project, decides what goes in, and writes the package. */
export async function buildPackage(options: PackageOptions = {}): Promise<PackageResult> {
  const root = path.resolve(options.dir ?? ".");
  if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) throw new InvalidArgumentError(`project directory ${root} does not exist`, { dir: root });
  const project = (readJson(path.join(root, MANIFEST_FILE)) ?? {}) as ProjectConfig;
  const pkgJson = readJson(path.join(root, "package.json")) as { main?: string; version?: string; dependencies?: Record<string, string> } | undefined;

  let app = project.app;
  let server = project.server;
  if (options.name !== undefined) {
    const parts = options.name.split(".");
    if (parts.length !== 2) throw new InvalidArgumentError(`--name ${JSON.stringify(options.name)} must be <App>.<Server>`, { name: options.name });
    [app, server] = parts as [string, string];
  }
  if (!app || !server) {
    throw new InvalidArgumentError(`no server name: ${root} has no ${MANIFEST_FILE} with "app" and "server"; pass --name <App>.<Server>`, { dir: root });
  }
  for (const [what, v] of [["application", app], ["server", server]] as const) {
    if (!NAME_PATTERN.test(v)) throw new InvalidArgumentError(`invalid ${what} name ${JSON.stringify(v)}`, { [what]: v });
  }

  const type = (options.type ?? project.type ?? (pkgJson ? "node" : "binary")) as ServerType;
  if (!SERVER_TYPES.includes(type)) throw new InvalidArgumentError(`unknown server type ${JSON.stringify(type)} (expected ${SERVER_TYPES.join(", ")})`, { type });
  const entryRaw = options.entry ?? project.entry ?? (type === "node" ? pkgJson?.main : undefined);
  if (!entryRaw) throw new InvalidArgumentError(`no entry for a ${type} server: pass --entry <path> (or set "entry" in ${MANIFEST_FILE})`, {});
  const entry = relPath("entry", entryRaw);

  const version = options.version ?? project.version ?? pkgJson?.version ?? utcStamp();
  if (!VERSION_LABEL.test(version)) throw new InvalidArgumentError(`invalid version label ${JSON.stringify(version)} (expected ${VERSION_LABEL.source})`, { version });

  const bundle = type === "node" && (options.bundle ?? project.bundle ?? true);
  if (project.bundleExternal !== undefined && (!Array.isArray(project.bundleExternal) || project.bundleExternal.some((n) => typeof n !== "string"))) {
    throw new InvalidArgumentError(`${MANIFEST_FILE} "bundleExternal" must be a list of package names`, {});
  }
  const include = [
    ...(project.include ?? (type === "node" ? (bundle ? ["package.json"] : ["dist", "package.json"]) : [entry.split("/")[0]!])),
    ...(options.include ?? []),
  ].map((p) => relPath("include", p));
  const exclude = (project.exclude ?? (type === "node" ? ["dist/test"] : [])).map((p) => relPath("exclude", p));
  const outDir = path.resolve(options.out ?? root);
  const fileName = `${app}.${server}-${version}.tgz`;
  const outFile = path.join(outDir, fileName);

  const skip = (rel: string, isDir: boolean) =>
    rel === MANIFEST_FILE || exclude.some((x) => rel === x || rel.startsWith(`${x}/`)) ||
    (isDir && (rel.endsWith("/node_modules") || rel === "node_modules")) || path.join(root, rel) === outFile;

  const entries = new Map<string, Entry>();
  for (const inc of include) {
    if (inc === MANIFEST_FILE) continue;
    if (!fs.existsSync(path.join(root, inc)) && !isLink(path.join(root, inc))) {
      throw new FailedPreconditionError(`${inc} does not exist in ${root}${type === "node" && inc === "dist" ? ": build first (npm run build)" : ""}`, { path: inc });
    }
    addParents(inc, entries);
    walk(root, inc, entries, skip);
  }

  let framework: string | undefined;
  let bundled: string[] | undefined;
  if (type === "node") {
    if (pkgJson?.dependencies && Object.keys(pkgJson.dependencies).length > 0 && !fs.existsSync(path.join(root, "node_modules"))) {
      throw new FailedPreconditionError(`${root} has dependencies but no node_modules: run npm install first`, { dir: root });
    }
    let deps = productionPackages(root, project.excludeDeps ?? DEFAULT_EXCLUDE_DEPS);
    if (bundle) {
      if (!fs.existsSync(path.join(root, entry))) {
        throw new FailedPreconditionError(`entry ${entry} does not exist in ${root}: build first (npm run build)`, { entry });
      }
      const res = await bundleEntry({ root, entry, packages: deps, external: project.bundleExternal ?? [] });
      for (const f of res.files) {
        addParents(f.rel, entries);
        entries.set(f.rel, { rel: f.rel, kind: "memory", content: f.content });
      }
      deps = res.keep;
      bundled = res.bundled;
    }
    const depSkip = (rel: string, isDir: boolean) => isDir && (path.posix.basename(rel) === "node_modules" || path.posix.basename(rel) === ".bin");
    for (const dep of deps) {
      addParents(dep, entries);
      // walk() prunes nested node_modules; each nested package is its own lock entry.
      const abs = path.join(root, dep);
      entries.set(dep, { rel: dep, kind: "dir" });
      for (const name of fs.readdirSync(abs).sort()) walk(root, `${dep}/${name}`, entries, depSkip);
    }
    const fw = readJson(path.join(root, "node_modules/sgridnext/package.json")) as { version?: string } | undefined;
    framework = fw?.version;
  }
  if (![...entries.values()].some((e) => e.rel === entry && e.kind !== "dir")) {
    throw new FailedPreconditionError(
      `entry ${entry} is not among the packaged files${type === "node" ? " (build first: npm run build)" : ` (include it: --include ${entry.split("/")[0]})`}`,
      { entry },
    );
  }
  if (type === "binary" && (fs.statSync(path.join(root, entry)).mode & 0o111) === 0) {
    throw new FailedPreconditionError(`entry ${entry} of a binary server is not executable (chmod +x ${entry})`, { entry });
  }

  const manifest = manifestSchema.parse({
    app, server, type, entry, version, ...(framework ? { framework } : {}), ...(bundled && project.sourceMaps !== false ? { sourceMaps: true } : {}),
  });
  const sorted = [...entries.values()].sort((a, b) => compareEntries(a.rel, b.rel));
  fs.mkdirSync(outDir, { recursive: true });
  const tmp = `${outFile}.${process.pid}.tmp`;
  try {
    await writeArchive(root, tmp, manifest, sorted);
    fs.renameSync(tmp, outFile);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  const { size, sha256 } = await hashFile(outFile);
  return { file: outFile, size, sha256, manifest, entries: sorted.length + 1, ...(bundled ? { bundled } : {}) };
}

function isLink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}
