/**
 * The build-time commands, registered on a commander program: by
 * `sgrid-tools` (this package's own bin, what a service project's scripts
 * call) and by the platform's `sgrid` (so one command still does everything).
 *
 * Light to load on purpose (`sgridnext-tools/commands`): registering them
 * loads neither the code generator (ts-proto) nor the packager (esbuild,
 * tar) nor the runtime; each action loads what it runs.
 */
import { CommanderError, type Command } from "commander";
import type { ServerType } from "sgridnext";
// The contract module alone (names, manifest), not the whole runtime.
import { SERVER_TYPES } from "sgridnext/internal/contract/manifest";

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export function registerGen(program: Command): void {
  program
    .command("gen")
    .description("generate typed servants, proxies and messages from .proto files")
    .argument("<inputs...>", ".proto files or directories (searched recursively)")
    .requiredOption("-o, --out <dir>", "output directory")
    .option("-I, --proto-path <dir>", "import root (repeatable); default: each input directory, or a file's own directory", collect, [])
    .option("--runtime <module>", "module the generated code imports the runtime from", "sgridnext")
    .option("--ts-proto-opt <key=value>", "extra ts-proto option (repeatable)", collect, [])
    .action(async (inputs: string[], opts: { out: string; protoPath: string[]; runtime: string; tsProtoOpt: string[] }) => {
      const { generate } = require("./codegen") as typeof import("./codegen");
      const res = await generate({ inputs, out: opts.out, includes: opts.protoPath, runtime: opts.runtime, tsProtoOptions: opts.tsProtoOpt });
      process.stdout.write(`generated ${res.files.length} file(s) in ${opts.out}\n`);
    });
}

export function registerPackage(program: Command): void {
  program
    .command("package")
    .description("build <App>.<Server>-<version>.tgz (manifest + program) for upload")
    .option("--dir <path>", "project directory", ".")
    .option("--out <dir>", "output directory (default: the project directory)")
    .option("--name <App.Server>", "server name (default: from the project's sgrid.json)")
    .option("--type <type>", `server type: ${SERVER_TYPES.join(" | ")} (default: sgrid.json, else node with a package.json)`)
    .option("--entry <path>", "program to start, relative to the project (default: sgrid.json, else package.json main)")
    .option("--version <label>", "version label in the file name and manifest (default: sgrid.json / package.json version)")
    .option("--include <path>", "extra file or folder to include (repeatable)", (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option("--no-bundle", "node servers: ship the production node_modules as installed instead of one bundled file (sgrid.json \"bundle\": false)")
    .option("--json", "print the result as JSON")
    .action(async (opts: { dir: string; out?: string; name?: string; type?: string; entry?: string; version?: string; include: string[]; json?: boolean; bundle?: boolean }) => {
      const { buildPackage, formatBytes } = require("./package/build-package") as typeof import("./package/build-package");
      const res = await buildPackage({
        dir: opts.dir, out: opts.out, name: opts.name, type: opts.type as ServerType | undefined, entry: opts.entry, version: opts.version, include: opts.include,
        // commander sets bundle=true unless --no-bundle: only the flag overrides sgrid.json.
        bundle: opts.bundle === false ? false : undefined,
      });
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ file: res.file, size: res.size, sha256: res.sha256, manifest: res.manifest, entries: res.entries })}\n`);
        return;
      }
      process.stdout.write(`${res.file}\n  size   ${res.size} bytes (${formatBytes(res.size)}), ${res.entries} entries\n  sha256 ${res.sha256}\n` +
        `  ${res.manifest.app}.${res.manifest.server} ${res.manifest.type} entry=${res.manifest.entry} version=${res.manifest.version}` +
        `${res.manifest.framework ? ` sgridnext=${res.manifest.framework}` : ""}\n` +
        `${res.bundled ? `  bundled ${res.bundled.length} package(s) into ${res.manifest.entry}\n` : ""}`);
    });
}

/**
 * Parses argv and runs the command. A failure prints one line (`<program>:
 * <message>` for a Sgrid error, the stack for anything else) and sets exit
 * code 1; commander's own exits (help, version, usage) keep their code.
 */
export async function runCommand(program: Command, argv: string[]): Promise<void> {
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
      return;
    }
    const { SgridError } = require("sgridnext") as typeof import("sgridnext");
    if (err instanceof SgridError) {
      process.stderr.write(`${program.name()}: ${err.message}\n`);
    } else {
      process.stderr.write(`${program.name()}: ${(err as Error)?.stack ?? String(err)}\n`);
    }
    process.exitCode = 1;
  }
}
