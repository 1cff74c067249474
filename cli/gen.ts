import type { Command } from "commander";
import { generate } from "../framework/codegen";

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
      const res = await generate({ inputs, out: opts.out, includes: opts.protoPath, runtime: opts.runtime, tsProtoOptions: opts.tsProtoOpt });
      process.stdout.write(`generated ${res.files.length} file(s) in ${opts.out}\n`);
    });
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
