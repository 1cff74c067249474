/**
 * Runs ts-proto's protoc plugin on a compiled descriptor set.
 *
 * The plugin is driven through its stable protoc-plugin contract
 * (CodeGeneratorRequest on stdin, CodeGeneratorResponse on stdout) in a child
 * Node process, so we depend on nothing internal to ts-proto.
 */
import { spawn } from "node:child_process";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { CodeGeneratorResponse } from "ts-proto-descriptors";
import { CodegenError } from "sgridnext";
import type { CompiledSet } from "./compile";

/**
 * ts-proto options chosen for idiomatic TypeScript:
 * - `forceLong=number`: int64 fields are plain numbers (exact up to 2^53; pass
 *   `--ts-proto-opt forceLong=bigint` where that is not enough);
 * - `useDate=true`: Timestamp fields are `Date`;
 * - `oneof=unions-value`: oneofs are discriminated unions `{ $case, value }`;
 * - `outputServices=false`: services are emitted by our own generator;
 * - `esModuleInterop=true`, `env=node`, `useOptionals=none` (every field
 *   present on decoded messages; proxies and servants accept DeepPartial).
 */
export const DEFAULT_TS_PROTO_OPTIONS: readonly string[] = Object.freeze([
  "esModuleInterop=true",
  "env=node",
  "forceLong=number",
  "useDate=true",
  "oneof=unions-value",
  "outputServices=false",
  "useOptionals=none",
  "outputJsonMethods=true",
  "outputPartialMethods=true",
]);

export interface GeneratedFile {
  name: string;
  content: string;
}

export async function runTsProto(set: CompiledSet, extraOptions: string[] = []): Promise<GeneratedFile[]> {
  // An extra option replaces the default of the same key: ts-proto takes the first value of a key it is given twice.
  // One --ts-proto-opt may hold several, comma-separated, as ts-proto's own parameter does.
  const extras = extraOptions.flatMap((o) => o.split(",")).map((o) => o.trim()).filter((o) => o !== "");
  const keyOf = (opt: string) => opt.split("=")[0]!.trim();
  const overridden = new Set(extras.map(keyOf));
  const parameter = [...DEFAULT_TS_PROTO_OPTIONS.filter((opt) => !overridden.has(keyOf(opt))), ...extras].join(",");
  // The descriptors go through as the compiler's raw bytes: decoding and
  // re-encoding them would lose field presence (a oneof_index of 0 reads as unset).
  const writer = new BinaryWriter();
  for (const name of set.toGenerate) writer.uint32((1 << 3) | 2).string(name);
  writer.uint32((2 << 3) | 2).string(parameter);
  for (const raw of set.rawFiles) writer.uint32((15 << 3) | 2).bytes(raw);
  const request = writer.finish();
  const plugin = require.resolve("ts-proto/build/src/plugin.js");
  const out = await new Promise<Buffer>((resolve, reject) => {
    const child = spawn(process.execPath, [plugin], { stdio: ["pipe", "pipe", "pipe"] });
    const chunks: Buffer[] = [];
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => chunks.push(c));
    child.stderr.setEncoding("utf8").on("data", (d: string) => { stderr += d; });
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) reject(new CodegenError(`ts-proto failed: ${stderr.replace(/^FAILED!/, "").split("\n")[0]}`));
      else resolve(Buffer.concat(chunks));
    });
    child.stdin.end(Buffer.from(request));
  });
  const response = CodeGeneratorResponse.decode(out);
  if (response.error) throw new CodegenError(`ts-proto: ${response.error}`);
  return response.file.map((f) => ({ name: f.name, content: f.content }));
}

/** ts-proto's import of the wire classes, as it writes it. */
const WIRE_IMPORT = /^import \{ ((?:BinaryReader|BinaryWriter)(?:, (?:BinaryReader|BinaryWriter))?) \} from "@bufbuild\/protobuf\/wire";$/m;

/**
 * Makes the wire classes module-level constants of a ts-proto file (and types of the same names): compiled to
 * CommonJS, each use of an imported name reads it off the library's module object, where it is a re-export
 * getter (a dictionary-mode object, so an inline-cache miss and a getter call per decode of every message). The
 * file's code is unchanged otherwise. A file without that import is returned as it is.
 */
export function localWireClasses(file: GeneratedFile): GeneratedFile {
  const m = WIRE_IMPORT.exec(file.content);
  if (m === null) return file;
  const names = m[1]!.split(", ");
  const imported = `import { ${names.map((n) => `${n} as Wire${n}`).join(", ")} } from "@bufbuild/protobuf/wire";`;
  const locals = [
    "// Module-level: through the import, every use read the library's re-export getter (CommonJS output).",
    ...names.flatMap((n) => [`const ${n} = Wire${n};`, `type ${n} = Wire${n};`]),
    "",
  ].join("\n");
  let content = file.content.replace(WIRE_IMPORT, imported);
  // After the file's other imports: ts-proto writes its package constant right after them.
  const at = content.search(/^export const protobufPackage = /m);
  if (at >= 0) content = `${content.slice(0, at)}${locals}\n${content.slice(at)}`;
  else content = content.replace(imported, `${imported}\n${locals}`);
  return { name: file.name, content };
}


/** ts-proto's reads of a varint int64 / uint64 field as a number (forceLong=number, the default). */
const LONG_READ = /longToNumber\(reader\.(uint64|int64)\(\)\)/g;

/** The helper the reads above become, at the end of the file (after ts-proto's longToNumber). */
const SAFE_VARINT = `
// Reads a varint of at most 8 bytes whose value is a safe integer (what int64 ids, sizes and times are)
// straight into a number; returns -1, the reader unmoved, for anything else, which then takes
// longToNumber's path (BigInt, then its decimal string, then Number) with its errors. The reader's buffer is private in
// its typings: a release without it takes that path every time.
function safeVarint(reader: BinaryReader): number {
  const buf = (reader as unknown as { buf?: Uint8Array }).buf;
  if (buf === undefined) return -1;
  const end = reader.len;
  let pos = reader.pos;
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 8 && pos < end; i++) {
    const b = buf[pos++]!;
    value += (b & 0x7f) * scale;
    if (b < 0x80) {
      if (value > globalThis.Number.MAX_SAFE_INTEGER) return -1;
      reader.pos = pos;
      return value;
    }
    scale *= 128;
  }
  return -1;
}
`;

/**
 * Rewrites a ts-proto file's `longToNumber(reader.uint64())` (and int64) as a read that makes no BigInt
 * for a safe value (safeVarint): the library decodes every 64-bit varint to a BigInt, which longToNumber
 * turns into a string and then a number, three allocations per field. Values, errors and the reader's
 * position are as before; only forceLong=number files have these reads. Other files are returned as they are.
 */
export function fastLongReads(file: GeneratedFile): GeneratedFile {
  if (!file.content.includes("longToNumber(reader.")) return file;
  if (!/^function longToNumber\(/m.test(file.content)) return file;
  const content = file.content.replace(LONG_READ, (_, kind: string) => `readLong(reader, ${kind === "uint64" ? "true" : "false"})`);
  const helper = `${SAFE_VARINT}
function readLong(reader: BinaryReader, unsigned: boolean): number {
  const fast = safeVarint(reader);
  return fast >= 0 ? fast : longToNumber(unsigned ? reader.uint64() : reader.int64());
}
`;
  return { name: file.name, content: `${content.trimEnd()}\n${helper}` };
}
