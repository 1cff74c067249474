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
 * - `--obj GreeterObj`: the Obj of the walk-through; the service in
 *   the .proto is the Obj name without its `Obj` suffix (`Greeter`).
 * - `--dir ./<Server>`: one folder per server, as Tars lays them out.
 * - `--template node`: a TypeScript servant on the framework.
 * - `sgridnext` dependency: `^<this package's version>`; `--sgridnext <spec>`
 *   or `SGRID_CREATE_SGRIDNEXT` replace it (a `file:` tarball for offline
 *   use and tests).
 * - Versions of `typescript`, `mocha`, `chai` and the `@types` packages:
 *   those this package itself is built and tested with, so a new project
 *   starts on a known-good set.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Command } from "commander";
import { FailedPreconditionError, InvalidArgumentError } from "../framework/errors";

/** Folder holding the templates: `<package root>/templates` (compiled file lives in dist/cli). */
export const TEMPLATES_DIR = path.resolve(__dirname, "../../templates");
export const TEMPLATES = ["node", "binary"] as const;
export type TemplateName = (typeof TEMPLATES)[number];

/** Application and server names: a letter, then letters and digits (they become package, folder and proto names). */
export const CREATE_NAME_PATTERN = /^[A-Za-z][A-Za-z0-9]{0,63}$/;
/** Obj names: a name as above ending in `Obj`, with something before the suffix. */
export const OBJ_PATTERN = /^[A-Za-z][A-Za-z0-9]{0,60}Obj$/;
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
  /** npm spec of the sgridnext dependency. Default `^<version of this package>`. */
  sgridnext?: string;
}

export interface CreateResult {
  dir: string;
  app: string;
  server: string;
  obj: string;
  template: TemplateName;
  /** Paths written, relative to `dir`, sorted. */
  files: string[];
}

interface OwnPackageJson {
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
}

function ownPackage(): OwnPackageJson {
  return require("../../package.json") as OwnPackageJson;
}

/** Splits and checks `App.Server`; throws InvalidArgumentError naming the bad part. */
export function parseServerName(name: string): { app: string; server: string } {
  const parts = String(name).split(".");
  if (parts.length !== 2) {
    throw new InvalidArgumentError(`server name ${JSON.stringify(name)} must be <App>.<Server>, e.g. Demo.HelloServer`, { name: String(name) });
  }
  const [app, server] = parts as [string, string];
  for (const [what, value] of [["application", app], ["server", server]] as const) {
    if (!CREATE_NAME_PATTERN.test(value)) {
      throw new InvalidArgumentError(
        `invalid ${what} name ${JSON.stringify(value)}: use letters and digits only, starting with a letter, at most 64`,
        { [what]: value },
      );
    }
  }
  return { app, server };
}

/** Checks an Obj name; returns the service name (the Obj without its `Obj` suffix). */
export function serviceOfObj(obj: string): string {
  if (!OBJ_PATTERN.test(obj)) {
    throw new InvalidArgumentError(
      `invalid Obj name ${JSON.stringify(obj)}: use letters and digits, starting with a letter and ending in "Obj" (e.g. GreeterObj)`,
      { obj: String(obj) },
    );
  }
  return obj.slice(0, -3);
}

/** `GreeterService` -> `greeter-service`. */
function kebab(s: string): string {
  return s.replace(/([a-z0-9])([A-Z])/g, "$1-$2").replace(/([A-Z])([A-Z][a-z])/g, "$1-$2").toLowerCase();
}

/** Every `{{key}}` a template may use. */
export function templateValues(app: string, server: string, obj: string, sgridnext: string): Record<string, string> {
  const pkg = ownPackage();
  const service = serviceOfObj(obj);
  const dev = pkg.devDependencies;
  return {
    app, server, obj, service,
    serviceKebab: kebab(service),
    protoPackage: `${app}.${server}`.toLowerCase(),
    packageName: `${app}-${server}`.toLowerCase(),
    sgridnext,
    sgridVersion: pkg.version,
    bufProtobuf: pkg.dependencies["@bufbuild/protobuf"] ?? "^2.0.0",
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
  const sgridnext = options.sgridnext ?? `^${ownPackage().version}`;
  if (!sgridnext.trim()) throw new InvalidArgumentError("--sgridnext must not be empty");
  const dir = path.resolve(options.dir ?? server);

  if (fs.existsSync(dir)) {
    const st = fs.statSync(dir);
    if (!st.isDirectory()) throw new FailedPreconditionError(`target ${dir} exists and is not a directory`, { dir });
    if (fs.readdirSync(dir).length > 0) throw new FailedPreconditionError(`target directory ${dir} is not empty; choose another --dir`, { dir });
  }

  const values = templateValues(app, server, obj, sgridnext);
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
  return { dir, app, server, obj, template, files: rendered.map((f) => f.target).sort() };
}

export function registerCreate(program: Command): void {
  program
    .command("create")
    .description("scaffold a new service project from a template")
    .argument("<App.Server>", "application and server name, e.g. Demo.HelloServer")
    .option("--obj <name>", "Obj (servant) name; the proto service is its name without \"Obj\"", CREATE_DEFAULTS.obj)
    .option("--dir <path>", "target directory (must not exist or be empty); default ./<Server>")
    .option("--template <name>", `template: ${TEMPLATES.join(" | ")}`, CREATE_DEFAULTS.template)
    .option("--sgridnext <spec>", "npm spec for the sgridnext dependency (env SGRID_CREATE_SGRIDNEXT); default ^<this version>")
    .action((name: string, opts: { obj: string; dir?: string; template: string; sgridnext?: string }) => {
      const res = createProject({
        name, obj: opts.obj, dir: opts.dir, template: opts.template as TemplateName,
        sgridnext: opts.sgridnext ?? (process.env.SGRID_CREATE_SGRIDNEXT || undefined),
      });
      const out = (s: string) => process.stdout.write(`${s}\n`);
      out(`created ${res.app}.${res.server} (${res.template}) in ${res.dir}`);
      for (const f of res.files) out(`  ${f}`);
      const rel = path.relative(process.cwd(), res.dir) || ".";
      out("");
      out("next:");
      out(`  cd ${rel}`);
      if (res.template === "node") {
        out("  npm install");
        out("  npm test                       # generates src/gen, builds, runs the servant test");
        out("  SGRID_TARGET_PORT=10000 npm start");
        out("  npx sgrid package              # -> " + `${res.app}.${res.server}-0.1.0.tgz`);
      } else {
        out("  SGRID_TARGET_PORT=10000 ./bin/server");
        out("  sgrid package                  # see README.md");
      }
    });
}
