/**
 * Bundling a node server for its package: the entry and everything it
 * requires from the project and from node_modules, as one CommonJS file
 * (esbuild), so a release holds a few files instead of the thousands of a
 * node_modules tree (grpc-js, protobuf, pino, ... are ~3,500 files and
 * 33 MB installed, of which a servant loads ~400 files).
 *
 * What is not bundled (kept as packages under node_modules/ in the release):
 * - packages with a native addon (a `binding.gyp`, `"gypfile": true`, or a
 *   `.node` file): a `.node` file cannot be inlined;
 * - packages the project lists in `bundleExternal` (sgrid.json), for code
 *   that reads its own files at run time relative to its folder;
 * - with each of those, the packages it depends on (resolved as Node
 *   would, transitively) and those installed inside its folder.
 *
 * The bundle is written at the entry's own path, so `__dirname` in the
 * entry's code is what it was. A source map goes beside it (sources not
 * embedded, to stay small), and the manifest says `"sourceMaps": true`, so
 * the agent starts the server with `--enable-source-maps` and stack traces
 * name the original files and lines (`"sourceMaps": false` in the
 * project's sgrid.json turns that off). The
 * licence texts of the bundled packages go into `THIRD-PARTY-LICENSES.txt`
 * beside the bundle, as their licences ask.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { build, type Message, type Metafile } from "esbuild";
import { FailedPreconditionError } from "sgridnext";

/** A file of the bundle output: where it goes in the package and its bytes. */
export interface BundleFile {
  rel: string;
  content: Buffer;
}

export interface BundleResult {
  files: BundleFile[];
  /** Package folders (`node_modules/...`) that stay unbundled, with their dependency closure. */
  keep: string[];
  /** Packages whose code went into the bundle (name@version), sorted. */
  bundled: string[];
}

export interface BundleOptions {
  /** Project root (absolute). */
  root: string;
  /** The entry, relative to the project (posix). */
  entry: string;
  /** Production package folders of the project (`node_modules/a`, `node_modules/a/node_modules/b`), from its lockfile. */
  packages: readonly string[];
  /** Package names the project wants left unbundled. */
  external: readonly string[];
}

/** Largest number of files looked at per package when searching for a `.node` addon. */
const NATIVE_SCAN_LIMIT = 20_000;

function packageName(folder: string): string {
  return folder.slice(folder.lastIndexOf("node_modules/") + "node_modules/".length);
}

/** True when the package folder holds a native addon. */
export function hasNativeAddon(dir: string): boolean {
  if (fs.existsSync(path.join(dir, "binding.gyp"))) return true;
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")) as { gypfile?: boolean };
    if (pkg.gypfile === true) return true;
  } catch {
    // no readable package.json: judged by its files
  }
  let seen = 0;
  const stack = [dir];
  while (stack.length > 0 && seen < NATIVE_SCAN_LIMIT) {
    const d = stack.pop()!;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) {
      seen++;
      if (e.isDirectory()) {
        if (e.name !== "node_modules") stack.push(path.join(d, e.name));
      } else if (e.name.endsWith(".node")) {
        return true;
      }
    }
  }
  return false;
}

/**
 * The folder Node would load `name` from when required inside `from` (a
 * package folder, or "" for the project): the nearest `node_modules/name`
 * walking up, among `known` folders.
 */
function resolveFolder(name: string, from: string, known: ReadonlySet<string>): string | undefined {
  let base = from;
  for (;;) {
    const candidate = base ? `${base}/node_modules/${name}` : `node_modules/${name}`;
    if (known.has(candidate)) return candidate;
    if (!base) return undefined;
    const i = base.lastIndexOf("/node_modules/");
    base = i < 0 ? "" : base.slice(0, i);
  }
}

/** `folders` and every production package they depend on, transitively. */
function closure(root: string, folders: readonly string[], known: ReadonlySet<string>): string[] {
  const out = new Set<string>();
  const stack = [...folders];
  while (stack.length > 0) {
    const f = stack.pop()!;
    if (out.has(f)) continue;
    out.add(f);
    // Packages installed inside it belong to it, whatever its package.json says.
    for (const k of known) if (k.startsWith(`${f}/node_modules/`)) stack.push(k);
    let deps: Record<string, string> = {};
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(root, f, "package.json"), "utf8")) as {
        dependencies?: Record<string, string>; optionalDependencies?: Record<string, string>;
      };
      deps = { ...pkg.dependencies, ...pkg.optionalDependencies };
    } catch {
      continue;
    }
    for (const name of Object.keys(deps)) {
      const dep = resolveFolder(name, f, known);
      if (dep) stack.push(dep);
    }
  }
  return [...out].sort();
}

function formatMessages(messages: Message[]): string {
  return messages.slice(0, 5).map((m) => `${m.location ? `${m.location.file}:${m.location.line}: ` : ""}${m.text}`).join("; ");
}

/** The package folder (project-relative) a bundled input file belongs to, or undefined for the project's own files. */
function inputPackage(input: string): string | undefined {
  const norm = input.replace(/\\/g, "/");
  const i = norm.lastIndexOf("node_modules/");
  if (i < 0) return undefined;
  const rest = norm.slice(i + "node_modules/".length).split("/");
  const name = rest[0]!.startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0]!;
  return `${norm.slice(0, i)}node_modules/${name}`;
}

function licenceText(root: string, folder: string): string | undefined {
  let names: string[];
  try {
    names = fs.readdirSync(path.join(root, folder));
  } catch {
    return undefined;
  }
  const file = names.sort().find((n) => /^(licen[cs]e|copying|notice)(\.|$)/i.test(n));
  return file ? fs.readFileSync(path.join(root, folder, file), "utf8").trim() : undefined;
}

function bundledPackages(root: string, metafile: Metafile): { ids: string[]; licences: string } {
  const folders = new Set<string>();
  for (const input of Object.keys(metafile.inputs)) {
    const p = inputPackage(path.relative(root, path.resolve(root, input)));
    if (p && !p.startsWith("..")) folders.add(p);
  }
  const ids: string[] = [];
  const parts: string[] = [];
  for (const folder of [...folders].sort()) {
    let id = packageName(folder);
    let licence = "";
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(root, folder, "package.json"), "utf8")) as { version?: string; license?: string };
      id = `${id}@${pkg.version ?? "?"}`;
      licence = pkg.license ?? "";
    } catch {
      // keep the bare name
    }
    ids.push(id);
    const text = licenceText(root, folder);
    parts.push(`${id}${licence ? ` (${licence})` : ""}\n${"-".repeat(72)}\n${text ?? "(no licence file in the package)"}\n`);
  }
  return { ids, licences: `Packages bundled into this server by sgrid package, with their licences.\n\n${parts.join("\n")}` };
}

/**
 * Bundles the entry. Rejects with FailedPreconditionError naming the first
 * errors esbuild reports (a module that cannot be resolved, a syntax error).
 */
export async function bundleEntry(options: BundleOptions): Promise<BundleResult> {
  const known = new Set(options.packages);
  const wanted = new Set(options.external);
  const externalFolders = options.packages.filter((f) => wanted.has(packageName(f)) || hasNativeAddon(path.join(options.root, f)));
  const keep = closure(options.root, externalFolders, known);
  const externalNames = [...new Set(keep.map(packageName))];
  const outfile = path.join(options.root, options.entry);
  let result;
  try {
    result = await build({
      absWorkingDir: options.root,
      entryPoints: [outfile],
      outfile,
      bundle: true,
      write: false,
      platform: "node",
      format: "cjs",
      target: `node${process.versions.node.split(".")[0]}`,
      external: externalNames.flatMap((n) => [n, `${n}/*`]),
      sourcemap: "linked",
      sourcesContent: false,
      // Names kept (error classes and servants are looked up by name); whitespace and syntax minified, the map restores lines.
      keepNames: true,
      minifyWhitespace: true,
      minifySyntax: true,
      legalComments: "none",
      metafile: true,
      logLevel: "silent",
    });
  } catch (err) {
    const errors = (err as { errors?: Message[] }).errors;
    throw new FailedPreconditionError(
      `cannot bundle ${options.entry}: ${errors?.length ? formatMessages(errors) : (err as Error).message}` +
        " (list packages that must stay unbundled in sgrid.json \"bundleExternal\", or set \"bundle\": false)",
      { entry: options.entry },
    );
  }
  const files: BundleFile[] = result.outputFiles.map((f) => ({
    rel: path.relative(options.root, f.path).split(path.sep).join("/"),
    content: Buffer.from(f.contents),
  }));
  const { ids, licences } = bundledPackages(options.root, result.metafile);
  files.push({ rel: path.posix.join(path.posix.dirname(options.entry), "THIRD-PARTY-LICENSES.txt"), content: Buffer.from(licences) });
  return { files: files.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0)), keep, bundled: ids };
}
