/**
 * Parses and links .proto files into descriptors, offline.
 *
 * Uses the `buf` compiler shipped inside the @bufbuild/buf npm package (a
 * binary in a registry package, no download at install or run time). buf
 * gives file:line:column errors, bundles the well-known types, and produces
 * a FileDescriptorSet with source info (comments) and imports included —
 * exactly what ts-proto and our service emitter need.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { FileDescriptorSet, type FileDescriptorProto } from "ts-proto-descriptors";
import { CodegenError } from "sgridnext";

export interface CompileInput {
  /** .proto files and/or directories (searched recursively). */
  inputs: string[];
  /** Import roots (`-I`); by default each directory input, and for a file input its directory. */
  includes?: string[];
}

export interface CompiledSet {
  /** Every file needed, imports first (topological). */
  files: FileDescriptorProto[];
  /** The same files as the compiler's serialized FileDescriptorProto bytes (presence intact). */
  rawFiles: Uint8Array[];
  /** Names (relative to their root) of the files to generate code for. */
  toGenerate: string[];
}

/**
 * The buf binary: from the platform package (`@bufbuild/buf-<os>-<arch>`, an
 * optional dependency of sgridnext for Linux x64 and arm64), from the
 * `@bufbuild/buf` wrapper if the project installed it, or `SGRID_BUF` / `buf`
 * on PATH. (The platform packages are depended on directly because the
 * wrapper's optional dependencies for other systems are not all reachable
 * from every npm mirror, and `npm ci` then refuses the lockfile.)
 */
function bufBinary(): string {
  if (process.env.SGRID_BUF) return process.env.SGRID_BUF;
  const arch = process.arch === "arm64" ? "aarch64" : process.arch;
  for (const pkg of [`@bufbuild/buf-${process.platform}-${arch}`, `@bufbuild/buf-${process.platform}-${process.arch}`, "@bufbuild/buf"]) {
    try {
      const bin = path.join(path.dirname(require.resolve(`${pkg}/package.json`)), "bin", process.platform === "win32" ? "buf.exe" : "buf");
      if (fs.existsSync(bin)) return bin;
    } catch { /* not installed */ }
  }
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    const bin = path.join(dir, "buf");
    if (dir && fs.existsSync(bin)) return bin;
  }
  throw new CodegenError(`no buf compiler for ${process.platform}-${process.arch}: install @bufbuild/buf (npm i -D @bufbuild/buf) or set SGRID_BUF to a buf binary`);
}

function walkProtos(dir: string, out: string[]): void {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === "node_modules" || entry.name.startsWith(".")) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) walkProtos(full, out);
    else if (entry.isFile() && entry.name.endsWith(".proto")) out.push(full);
  }
}

function isInside(parent: string, child: string): boolean {
  const rel = path.relative(parent, child);
  return rel !== "" && !rel.startsWith("..") && !path.isAbsolute(rel);
}

/** Adds the offending import to buf's terse "imported file does not exist". */
function enrich(stderr: string): string {
  return stderr.split("\n").map((line) => {
    const m = /^(.+\.proto):(\d+):(\d+):imported file does not exist$/.exec(line.trim());
    if (!m) return line;
    try {
      const src = fs.readFileSync(m[1]!, "utf8").split("\n")[Number(m[2]) - 1] ?? "";
      const imp = /import\s+(?:public\s+|weak\s+)?"([^"]+)"/.exec(src);
      if (imp) return `${m[1]}:${m[2]}:${m[3]}: import "${imp[1]}" not found (looked in the import roots; add one with -I)`;
    } catch { /* keep buf's line */ }
    return line;
  }).join("\n").trim();
}

function run(cmd: string, args: string[], cwd: string): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, BUF_CACHE_DIR: path.join(os.tmpdir(), "sgrid-buf-cache") } });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => { stderr += d; });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, stderr }));
  });
}

/**
 * Compiles the inputs. Throws CodegenError whose message carries every
 * compiler error as `file:line:column: message`.
 */
export async function compileProtos(input: CompileInput): Promise<CompiledSet> {
  if (input.inputs.length === 0) throw new CodegenError("no .proto files or directories given");
  const cwd = process.cwd();
  const includes = (input.includes ?? []).map((p) => path.resolve(p));
  for (const inc of includes) {
    if (!fs.existsSync(inc) || !fs.statSync(inc).isDirectory()) throw new CodegenError(`import root ${inc} is not a directory`);
  }
  const dirInputs: string[] = [];
  const fileInputs: string[] = [];
  for (const raw of input.inputs) {
    const abs = path.resolve(raw);
    if (!fs.existsSync(abs)) throw new CodegenError(`${raw}: no such file or directory`);
    const st = fs.statSync(abs);
    if (st.isDirectory()) dirInputs.push(abs);
    else if (abs.endsWith(".proto")) fileInputs.push(abs);
    else throw new CodegenError(`${raw}: not a .proto file`);
  }
  // Each file belongs to one root: an explicit -I, else an input directory holding it, else its own directory.
  const targets = new Map<string, Set<string>>(); // root -> files
  const add = (root: string, file: string) => {
    const set = targets.get(root) ?? new Set<string>();
    set.add(path.relative(root, file).split(path.sep).join("/"));
    targets.set(root, set);
  };
  const rootFor = (file: string) =>
    includes.find((inc) => isInside(inc, file)) ?? dirInputs.find((d) => isInside(d, file)) ?? path.dirname(file);
  for (const dir of dirInputs) {
    const found: string[] = [];
    walkProtos(dir, found);
    if (found.length === 0) throw new CodegenError(`${path.relative(cwd, dir) || dir}: no .proto files in this directory`);
    for (const f of found) add(rootFor(f), f);
  }
  for (const f of fileInputs) add(rootFor(f), f);
  for (const inc of includes) if (!targets.has(inc)) targets.set(inc, new Set());

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sgrid-gen-"));
  try {
    const image = path.join(tmp, "image.binpb");
    const roots = [...targets.keys()];
    const toGenerate = [...new Set([...targets.values()].flatMap((s) => [...s]))];
    let args: string[];
    if (roots.length === 1) {
      const root = roots[0]!;
      args = ["build", path.relative(cwd, root) || ".", "--as-file-descriptor-set", "-o", image,
        ...[...targets.get(root)!].flatMap((f) => ["--path", path.join(path.relative(cwd, root) || ".", f)])];
    } else {
      // Several roots: a buf v2 workspace, one module per root, relative to cwd.
      const modules = roots.map((r) => ({ path: path.relative(cwd, r) || "." }));
      for (const m of modules) {
        if (m.path.startsWith("..")) throw new CodegenError(`import root ${m.path} is outside the current directory; run sgrid gen from a directory that contains every root`);
      }
      args = ["build", ".", "--config", JSON.stringify({ version: "v2", modules }), "--as-file-descriptor-set", "-o", image,
        ...roots.flatMap((r) => [...targets.get(r)!].map((f) => ["--path", path.join(path.relative(cwd, r) || ".", f)]).flat())];
    }
    const res = await run(bufBinary(), args, cwd);
    if (res.code !== 0) {
      throw new CodegenError(enrich(res.stderr) || `buf exited with code ${res.code}`);
    }
    const bytes = fs.readFileSync(image);
    const set = FileDescriptorSet.decode(bytes);
    const rawFiles: Uint8Array[] = [];
    const reader = new BinaryReader(bytes);
    while (reader.pos < reader.len) {
      const [field, wireType] = reader.tag();
      if (field === 1 && wireType === WireType.LengthDelimited) rawFiles.push(reader.bytes());
      else reader.skip(wireType);
    }
    const names = new Set(set.file.map((f) => f.name));
    for (const name of toGenerate) {
      if (!names.has(name)) throw new CodegenError(`${name}: compiled, but missing from the descriptor set (duplicate of another root?)`);
    }
    return { files: set.file, rawFiles, toGenerate };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
