/**
 * The compiled descriptors that generated code embeds, so that a running
 * servant can answer server reflection (grpc.reflection v1 / v1alpha) with
 * no .proto file at hand.
 *
 * Each embedded descriptor is the compiler's own serialized
 * FileDescriptorProto with its source info (field 9: comments and spans)
 * cut out at the wire level; nothing is decoded and re-encoded, so field
 * presence stays exactly as the compiler wrote it.
 */
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import type { CompiledSet } from "./compile";

const SOURCE_CODE_INFO = 9;

/** A serialized FileDescriptorProto without its source_code_info field. */
export function stripSourceInfo(raw: Uint8Array): Uint8Array {
  const reader = new BinaryReader(raw);
  const kept: Uint8Array[] = [];
  let size = 0;
  while (reader.pos < reader.len) {
    const start = reader.pos;
    const [field, wireType] = reader.tag();
    reader.skip(wireType as WireType, field);
    if (field === SOURCE_CODE_INFO) continue;
    const part = raw.subarray(start, reader.pos);
    kept.push(part);
    size += part.length;
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const part of kept) { out.set(part, at); at += part.length; }
  return out;
}

/** For each file of the set: its own descriptor and every file it imports, transitively, imports first (base64). */
export function embeddedDescriptors(set: CompiledSet): Map<string, string[]> {
  const byName = new Map(set.files.map((f, i) => [f.name, { file: f, raw: set.rawFiles[i]! }]));
  const encoded = new Map<string, string>();
  const b64 = (name: string): string => {
    let s = encoded.get(name);
    if (s === undefined) {
      s = Buffer.from(stripSourceInfo(byName.get(name)!.raw)).toString("base64");
      encoded.set(name, s);
    }
    return s;
  };
  const out = new Map<string, string[]>();
  for (const name of byName.keys()) {
    const order: string[] = [];
    const seen = new Set<string>();
    const visit = (n: string) => {
      if (seen.has(n)) return;
      seen.add(n);
      for (const dep of byName.get(n)?.file.dependency ?? []) if (byName.has(dep)) visit(dep);
      order.push(n);
    };
    visit(name);
    out.set(name, order.map(b64));
  }
  return out;
}
