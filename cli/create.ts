/**
 * `sgrid create <App>.<Server>`: scaffolds a new service from `templates/`.
 *
 * A template is a folder copied file by file. In file contents and file
 * names, `{{key}}` is replaced by the value of `key` (see {@link templateValues});
 * a `{{...}}` left unreplaced is a bug in the template and fails the create
 * before anything is written. A file named `_gitignore` becomes `.gitignore`
 * (npm pack drops `.gitignore` files from a published package).
 *
 * Defaults, and why:
 * - `--obj GreeterObj`: the Obj of the issue's walk-through; the service in
 *   the .proto is the Obj name without its `Obj` suffix (`Greeter`).
 * - `--dir ./<Server>`: one folder per server, as Tars lays them out.
 * - `--template node`: a TypeScript servant on the framework.
 * - The `sgridnext` dependency (the runtime) and the `sgridnext-tools` dev
 *   dependency (`sgrid-tools gen` and `sgrid-tools package`): the very
 *   packages this `sgrid` belongs to, packed with `npm pack` into the new
 *   project's `vendor/` and depended on as `file:vendor/<name>-<version>.tgz`.
 *   So the project installs and builds where this CLI runs, whether or not
 *   the npm registry has sgridnext, and on exactly the runtime version the
 *   platform speaks. `--from-registry` depends on `^<version>` from the
 *   registry instead; `--sgridnext <spec>` / `--sgridnext-tools <spec>` (or
 *   `SGRID_CREATE_SGRIDNEXT` / `SGRID_CREATE_SGRIDNEXT_TOOLS`) set either spec.
 * - Versions of `typescript`, `mocha`, `chai` and the `@types` packages:
 *   those this package itself is built and tested with, so a new project
 *   starts on a known-good set.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import type { Command } from "commander";
import { FailedPreconditionError, InvalidArgumentError, checkNameOf } from "sgridnext";

/** Folder holding the templates: `<package root>/templates` (compiled file lives in dist/cli). */
export const TEMPLATES_DIR = path.resolve(__dirname, "../../templates");
export const TEMPLATES = ["node", "binary"] as const;
export type TemplateName = (typeof TEMPLATES)[number];

export const CREATE_DEFAULTS = Object.freeze({ obj: "GreeterObj", template: "node" as TemplateName });

export interface CreateOptions {
  /** `App.Server`, e.g. `Demo.HelloServer`. */
  name: string;
  /** Obj name. Default `GreeterObj`. */
  obj?: string;
  /** Target folder. Default `./<Server>` under the current directory. */
  dir?: string;
  /** Template. Default `node`. */
  template?: TemplateName;
  /** npm spec of the sgridnext dependency. Default: this CLI's own runtime, packed into vendor/. */
  sgridnext?: string;
  /** npm spec of the sgridnext-tools dev dependency. Default: this CLI's own tools, packed into vendor/. */
  sgridnextTools?: string;
  /** Depend on `^<version>` of both from the npm registry instead of packing them. */
  fromRegistry?: boolean;
}

/** A package `sgrid create` packs into the new project's vendor/ (see {@link packVendored}). */
export interface VendoredPackage {
  name: "sgridnext" | "sgridnext-tools";
  version: string;
  /** The installed package folder it is packed from. */
  source: string;
  /** Where the tarball goes, relative to the project (what package.json depends on after `file:`). */
  file: string;
}

export interface CreateResult {
  dir: string;
  app: string;
  server: string;
  obj: string;
  template: TemplateName;
  /** Paths written, relative to `dir`, sorted. */
  files: string[];
  /** Packages still to pack into vendor/ ({@link packVendored}); empty when every spec was given or taken from the registry. */
  vendor: VendoredPackage[];
}

interface OwnPackageJson {
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
}

function ownPackage(): OwnPackageJson {
  return require("../../package.json") as OwnPackageJson;
}

/** The folder and version of an installed package this CLI depends on (in a checkout: the workspace folder). */
function ownDependency(name: VendoredPackage["name"]): { source: string; version: string } {
  const manifest = require.resolve(`${name}/package.json`);
  const { version } = require(manifest) as { version: string };
  return { source: fs.realpathSync(path.dirname(manifest)), version };
}

/** Splits and checks `App.Server`; throws InvalidArgumentError naming the bad part. */
export function parseServerName(name: string): { app: string; server: string } {
  const parts = String(name).split(".");
  if (parts.length !== 2) {
    throw new InvalidArgumentError(`server name ${JSON.stringify(name)} must be <App>.<Server>, e.g. Demo.HelloServer`, { name: String(name) });
  }
  const [app, server] = parts as [string, string];
  return { app: checkNameOf("application", app), server: checkNameOf("server", server) };
}

/**
 * Checks an Obj name (the contract's grammar); returns the proto service
 * name made from it: the Obj without an `Obj` suffix (`GreeterObj` ->
 * `Greeter`), `-` turned into `_` (a proto identifier).
 */
export function serviceOfObj(obj: string): string {
  checkNameOf("Obj", obj);
  const base = obj.length > 3 && obj.endsWith("Obj") ? obj.slice(0, -3) : obj;
  return base.replace(/-/g, "_");
}

/** `GreeterService` -> `greeter-service`. */
function kebab(s: string): string {
  return s.replace(/([a-z0-9])([A-Z])/g, "$1-$2").replace(/([A-Z])([A-Z][a-z])/g, "$1-$2").toLowerCase();
}

/** Every `{{key}}` a template may use. */
export function templateValues(app: string, server: string, obj: string, sgridnext: string, sgridnextTools = sgridnext): Record<string, string> {
  const pkg = ownPackage();
  const service = serviceOfObj(obj);
  const dev = pkg.devDependencies;
  return {
    app, server, obj, service,
    serviceKebab: kebab(service),
    protoPackage: `${app}.${server}`.toLowerCase().replace(/-/g, "_"),
    packageName: `${app}-${server}`.toLowerCase(),
    sgridnext,
    sgridnextTools,
    sgridVersion: pkg.version,
    bufProtobuf: pkg.devDependencies["@bufbuild/protobuf"] ?? pkg.dependencies["@bufbuild/protobuf"] ?? "^2.0.0",
    typescript: dev.typescript ?? "~5.9",
    mocha: dev.mocha ?? "^11.0.0",
    chai: dev.chai ?? "^4.5.0",
    typesChai: dev["@types/chai"] ?? "^4.3.0",
    typesMocha: dev["@types/mocha"] ?? "^10.0.0",
    typesNode: dev["@types/node"] ?? "^20.0.0",
  };
}

/** Replaces `{{key}}`; throws when a placeholder has no value (a template bug, named with its file). */
export function render(text: string, values: Record<string, string>, where: string): string {
  return text.replace(/\{\{(\w+)\}\}/g, (_m, key: string) => {
    const v = values[key];
    if (v === undefined) throw new TypeError(`template ${where} uses unknown placeholder {{${key}}}`);
    return v;
  });
}

/** Files of a template, relative, sorted (for a stable order of writes and of the result). */
function listTemplate(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else if (e.isFile()) out.push(r);
    }
  };
  walk("");
  return out.sort();
}

/**
 * Creates the project. Rejects with InvalidArgumentError for a bad name or
 * template, FailedPreconditionError when the target exists and is not an
 * empty directory. Everything is rendered in memory before the first write.
 */
export function createProject(options: CreateOptions): CreateResult {
  const { app, server } = parseServerName(options.name);
  const obj = options.obj ?? CREATE_DEFAULTS.obj;
  serviceOfObj(obj);
  const template = options.template ?? CREATE_DEFAULTS.template;
  if (!(TEMPLATES as readonly string[]).includes(template)) {
    throw new InvalidArgumentError(`unknown template ${JSON.stringify(template)} (expected one of: ${TEMPLATES.join(", ")})`, { template: String(template) });
  }
  const dir = path.resolve(options.dir ?? server);
  const vendor: VendoredPackage[] = [];
  const spec = (name: VendoredPackage["name"], given: string | undefined): string => {
    if (given !== undefined) {
      if (!given.trim()) throw new InvalidArgumentError(`--${name} must not be empty`);
      return given;
    }
    const own = ownDependency(name);
    if (options.fromRegistry) return `^${own.version}`;
    const file = `vendor/${name}-${own.version}.tgz`;
    if (template === "node") vendor.push({ name, version: own.version, source: own.source, file });
    return `file:${file}`;
  };
  const sgridnext = spec("sgridnext", options.sgridnext);
  const sgridnextTools = spec("sgridnext-tools", options.sgridnextTools);

  if (fs.existsSync(dir)) {
    const st = fs.statSync(dir);
    if (!st.isDirectory()) throw new FailedPreconditionError(`target ${dir} exists and is not a directory`, { dir });
    if (fs.readdirSync(dir).length > 0) throw new FailedPreconditionError(`target directory ${dir} is not empty; choose another --dir`, { dir });
  }

  const values = templateValues(app, server, obj, sgridnext, sgridnextTools);
  const root = path.join(TEMPLATES_DIR, template);
  const rendered = listTemplate(root).map((rel) => {
    const src = path.join(root, rel);
    let target = render(rel, values, rel);
    target = target.split("/").map((seg) => (seg === "_gitignore" ? ".gitignore" : seg)).join("/");
    const mode = fs.statSync(src).mode & 0o111 ? 0o755 : 0o644;
    return { target, content: render(fs.readFileSync(src, "utf8"), values, rel), mode };
  });

  fs.mkdirSync(dir, { recursive: true });
  for (const f of rendered) {
    const file = path.join(dir, f.target);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, f.content, { mode: f.mode, flag: "wx" });
    fs.chmodSync(file, f.mode);
  }
  return { dir, app, server, obj, template, files: rendered.map((f) => f.target).sort(), vendor };
}

const execFileP = promisify(execFile);

/**
 * Packs each package of `result.vendor` with `npm pack` into the project's
 * vendor/ folder. Rejects with FailedPreconditionError when a package is not
 * built (no dist/) or npm pack fails, naming it.
 */
export async function packVendored(result: CreateResult): Promise<void> {
  for (const v of result.vendor) {
    if (!fs.existsSync(path.join(v.source, "dist", "index.js"))) {
      throw new FailedPreconditionError(`${v.name} at ${v.source} is not built (no dist/index.js): run npm run build in the Sgrid checkout first`, { package: v.name });
    }
    const dest = path.join(result.dir, path.dirname(v.file));
    fs.mkdirSync(dest, { recursive: true });
    let packed: string;
    try {
      const { stdout } = await execFileP("npm", ["pack", "--json", "--pack-destination", dest, v.source], {
        cwd: result.dir, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, npm_config_update_notifier: "false", npm_config_fund: "false" },
      });
      packed = (JSON.parse(stdout) as Array<{ filename: string }>)[0]!.filename;
    } catch (err) {
      throw new FailedPreconditionError(`npm pack of ${v.name} (${v.source}) failed: ${(err as Error).message}`, { package: v.name });
    }
    if (packed !== path.basename(v.file)) fs.renameSync(path.join(dest, packed), path.join(result.dir, v.file));
    result.files.push(v.file);
  }
  result.files.sort();
}

/** {@link createProject}, then {@link packVendored}; a failed pack removes what was created. */
export async function create(options: CreateOptions): Promise<CreateResult> {
  const existed = fs.existsSync(path.resolve(options.dir ?? parseServerName(options.name).server));
  const res = createProject(options);
  try {
    await packVendored(res);
  } catch (err) {
    if (existed) for (const f of fs.readdirSync(res.dir)) fs.rmSync(path.join(res.dir, f), { recursive: true, force: true });
    else fs.rmSync(res.dir, { recursive: true, force: true });
    throw err;
  }
  return res;
}

export function registerCreate(program: Command): void {
  program
    .command("create")
    .description("scaffold a new service project from a template")
    .argument("<App.Server>", "application and server name, e.g. Demo.HelloServer")
    .option("--obj <name>", "Obj (servant) name; the proto service is its name without \"Obj\"", CREATE_DEFAULTS.obj)
    .option("--dir <path>", "target directory (must not exist or be empty); default ./<Server>")
    .option("--template <name>", `template: ${TEMPLATES.join(" | ")}`, CREATE_DEFAULTS.template)
    .option("--sgridnext <spec>", "npm spec for the sgridnext dependency (env SGRID_CREATE_SGRIDNEXT); default: this sgrid's own runtime, packed into vendor/")
    .option("--sgridnext-tools <spec>", "npm spec for the sgridnext-tools dev dependency (env SGRID_CREATE_SGRIDNEXT_TOOLS); default: packed into vendor/ likewise")
    .option("--from-registry", "depend on ^<version> of sgridnext and sgridnext-tools from the npm registry instead of packing them")
    .action(async (name: string, opts: { obj: string; dir?: string; template: string; sgridnext?: string; sgridnextTools?: string; fromRegistry?: boolean }) => {
      const res = await create({
        name, obj: opts.obj, dir: opts.dir, template: opts.template as TemplateName,
        sgridnext: opts.sgridnext ?? (process.env.SGRID_CREATE_SGRIDNEXT || undefined),
        sgridnextTools: opts.sgridnextTools ?? (process.env.SGRID_CREATE_SGRIDNEXT_TOOLS || undefined),
        fromRegistry: opts.fromRegistry,
      });
      const out = (s: string) => process.stdout.write(`${s}\n`);
      out(`created ${res.app}.${res.server} (${res.template}) in ${res.dir}`);
      for (const f of res.files) out(`  ${f}`);
      if (res.vendor.length > 0) {
        out("");
        out(`${res.vendor.map((v) => `${v.name} ${v.version}`).join(" and ")}: packed from this sgrid's own copy into vendor/`);
        out("  (package.json depends on those tarballs, not on the npm registry; sgrid create --from-registry uses published versions)");
      }
      const rel = path.relative(process.cwd(), res.dir) || ".";
      out("");
      out("next:");
      out(`  cd ${rel}`);
      if (res.template === "node") {
        out("  npm install");
        out("  npm test                       # generates src/gen, builds, runs the servant test");
        out("  SGRID_TARGET_PORT=10000 npm start");
        out("  npm run package                # -> " + `${res.app}.${res.server}-0.1.0.tgz`);
      } else {
        out("  SGRID_TARGET_PORT=10000 ./bin/server");
        out("  sgrid package                  # see README.md");
      }
    });
}
