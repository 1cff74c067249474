/**
 * What server reflection knows about one adapter: the services it hosts and
 * the compiled .proto descriptors `sgrid gen` embedded in their generated
 * code (`ServiceDescriptor.protoFiles`), indexed by file name, by symbol
 * (packages' messages, enums, services, methods, extensions) and by extension.
 */
import type { DescriptorProto, FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import type { ServiceDescriptor } from "../transport/base";

interface IndexedFile {
  readonly bytes: Uint8Array;
  readonly proto: FileDescriptorProto;
}

/** Strips the leading dot of a fully-qualified type reference (`.pkg.Msg` -> `pkg.Msg`). */
function typeName(ref: string): string {
  return ref.startsWith(".") ? ref.slice(1) : ref;
}

export class DescriptorIndex {
  private readonly files = new Map<string, IndexedFile>();
  private readonly symbols = new Map<string, string>();
  private readonly extensions = new Map<string, Map<number, string>>();
  private readonly messageTypes = new Set<string>();
  /** Full names of the hosted services, sorted. */
  readonly services: readonly string[];

  constructor(services: Iterable<ServiceDescriptor>) {
    const names = new Set<string>();
    for (const svc of services) {
      names.add(svc.fullName);
      for (const b64 of svc.protoFiles ?? []) this.addFile(Buffer.from(b64, "base64"));
    }
    this.services = [...names].sort();
  }

  private addFile(bytes: Uint8Array): void {
    // Loaded on the first reflection request (the index is built then): a servant nobody reflects on never loads @bufbuild/protobuf's descriptors.
    const { fromBinary } = require("@bufbuild/protobuf") as typeof import("@bufbuild/protobuf");
    const { FileDescriptorProtoSchema } = require("@bufbuild/protobuf/wkt") as typeof import("@bufbuild/protobuf/wkt");
    const proto = fromBinary(FileDescriptorProtoSchema, bytes);
    if (this.files.has(proto.name)) return;
    this.files.set(proto.name, { bytes, proto });
    const prefix = proto.package ? `${proto.package}.` : "";
    this.addMessages(proto.name, prefix, proto.messageType);
    for (const e of proto.enumType) this.symbols.set(prefix + e.name, proto.name);
    for (const s of proto.service) {
      this.symbols.set(prefix + s.name, proto.name);
      for (const m of s.method) this.symbols.set(`${prefix}${s.name}.${m.name}`, proto.name);
    }
    for (const ext of proto.extension) this.addExtension(proto.name, prefix, ext);
  }

  private addMessages(file: string, prefix: string, messages: readonly DescriptorProto[]): void {
    for (const m of messages) {
      const full = prefix + m.name;
      this.symbols.set(full, file);
      this.messageTypes.add(full);
      for (const e of m.enumType) this.symbols.set(`${full}.${e.name}`, file);
      for (const ext of m.extension) this.addExtension(file, `${full}.`, ext);
      this.addMessages(file, `${full}.`, m.nestedType);
    }
  }

  private addExtension(file: string, prefix: string, ext: { name: string; extendee: string; number: number }): void {
    this.symbols.set(prefix + ext.name, file);
    const base = typeName(ext.extendee);
    const byNumber = this.extensions.get(base) ?? new Map<number, string>();
    byNumber.set(ext.number, file);
    this.extensions.set(base, byNumber);
  }

  /** A file and everything it imports, transitively (the file first), as serialized descriptors; undefined if unknown. */
  fileWithImports(name: string): Uint8Array[] | undefined {
    if (!this.files.has(name)) return undefined;
    const out: Uint8Array[] = [];
    const seen = new Set<string>();
    const visit = (n: string) => {
      const f = this.files.get(n);
      if (!f || seen.has(n)) return;
      seen.add(n);
      out.push(f.bytes);
      for (const dep of f.proto.dependency) visit(dep);
    };
    visit(name);
    return out;
  }

  /** The file declaring a fully-qualified symbol (`pkg.Service`, `pkg.Service.Method`, `pkg.Message`), if known. */
  fileOfSymbol(symbol: string): string | undefined {
    return this.symbols.get(typeName(symbol));
  }

  /** The file declaring extension `number` of `type`, if known. */
  fileOfExtension(type: string, number: number): string | undefined {
    return this.extensions.get(typeName(type))?.get(number);
  }

  /** Extension numbers known for a message type; undefined when the type itself is unknown. */
  extensionNumbers(type: string): number[] | undefined {
    const name = typeName(type);
    if (!this.messageTypes.has(name)) return undefined;
    return [...(this.extensions.get(name)?.keys() ?? [])].sort((a, b) => a - b);
  }
}
