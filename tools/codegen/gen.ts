/**
 * `sgrid gen`: .proto files in, TypeScript out.
 *
 * All output is produced in memory first and written only when every step
 * succeeded, each file through a temp name + rename, so a failed run leaves
 * no partial output behind.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { CodegenError } from "sgridnext";
import { compileProtos } from "./compile";
import { emitServices, GENERATED_HEADER } from "./services";
import { fastLongReads, localWireClasses, runTsProto, type GeneratedFile } from "./ts-proto";

export interface GenerateOptions {
  /** .proto files and/or directories. */
  inputs: string[];
  /** Output directory (created if missing). */
  out: string;
  /** Import roots (`-I`). */
  includes?: string[];
  /** Module the generated services import the runtime from (default `sgridnext`). */
  runtime?: string;
  /** Extra ts-proto options (`key=value`), appended after Sgrid's defaults. */
  tsProtoOptions?: string[];
}

export interface GenerateResult {
  /** Paths written, relative to `out`. */
  files: string[];
}

/** Puts the Sgrid header on a ts-proto file, keeping its version line. */
function retitle(file: GeneratedFile): GeneratedFile {
  const lines = file.content.split("\n");
  let i = 0;
  let version = "";
  let source = "";
  while (i < lines.length && lines[i]!.startsWith("//")) {
    const l = lines[i]!;
    const v = /protoc-gen-ts_proto\s+(\S+)/.exec(l);
    if (v) version = v[1]!;
    const s = /^\/\/ source: (.*)$/.exec(l);
    if (s) source = s[1]!;
    i++;
  }
  const head = [GENERATED_HEADER, `// source: ${source || file.name.replace(/\.ts$/, ".proto")}`];
  if (version) head.push(`// messages: protoc-gen-ts_proto ${version}`);
  return { name: file.name, content: `${head.join("\n")}\n${lines.slice(i).join("\n")}` };
}

export async function generate(options: GenerateOptions): Promise<GenerateResult> {
  if (!options.out) throw new CodegenError("an output directory is required (--out <dir>)");
  const set = await compileProtos({ inputs: options.inputs, includes: options.includes });
  const messages = (await runTsProto(set, options.tsProtoOptions)).map(retitle).map(localWireClasses).map(fastLongReads);
  const services = emitServices(set, { runtime: options.runtime });
  const all = [...messages, ...services];

  const out = path.resolve(options.out);
  fs.mkdirSync(out, { recursive: true });
  const written: string[] = [];
  const temps: string[] = [];
  try {
    for (const f of all) {
      const target = path.join(out, f.name);
      if (!target.startsWith(out + path.sep)) throw new CodegenError(`refusing to write ${f.name} outside ${out}`);
      fs.mkdirSync(path.dirname(target), { recursive: true });
      const tmp = `${target}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, f.content);
      temps.push(tmp);
    }
    for (const f of all) {
      const target = path.join(out, f.name);
      fs.renameSync(`${target}.${process.pid}.tmp`, target);
      written.push(f.name);
    }
  } catch (err) {
    for (const t of temps) fs.rmSync(t, { force: true });
    throw err;
  }
  return { files: written.sort() };
}
