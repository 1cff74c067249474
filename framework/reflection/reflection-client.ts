/**
 * A client of server reflection that knows no generated code: lists an
 * adapter's services, describes a service or method, and calls a method with
 * JSON in and JSON out (proto3 JSON mapping). The descriptors come from the
 * adapter's grpc.reflection.v1 service; the call itself goes through an
 * ordinary proxy, so it may target the same adapter, another one of the same
 * Obj on either transport, or the Obj name itself.
 *
 * Built for tools such as the admin console's "try a call" page.
 */
import type { DescMessage, FileRegistry, JsonValue } from "@bufbuild/protobuf";
import type { FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import type { Communicator } from "../communicator";
import { InvalidArgumentError, NotFoundError, SgridError, UnavailableError } from "../errors";
import type { ServerReflectionResponse } from "../gen/grpc/reflection/v1/reflection";
import { ServerReflectionProxy } from "../gen/grpc/reflection/v1/reflection.sgrid";
import type { CallOptions } from "../proxy/call-options";
import { ProxyBase, type ProxyClass } from "../proxy/proxy-base";
import { Status } from "../status";
import type { MessageCodec, MethodDescriptor, MethodKind, ServiceDescriptor } from "../transport/base";

export interface ReflectedMethod {
  /** Method name as in the .proto (`Say`). */
  readonly name: string;
  /** Wire path (`/demo.echo.v1.Echo/Say`). */
  readonly path: string;
  readonly kind: MethodKind;
  /** Fully-qualified message type names. */
  readonly requestType: string;
  readonly responseType: string;
  readonly idempotent: boolean;
}

export interface ReflectedService {
  /** Fully-qualified name (`demo.echo.v1.Echo`). */
  readonly name: string;
  /** The .proto file that declares it. */
  readonly file: string;
  readonly methods: readonly ReflectedMethod[];
}

export interface ReflectionClientOptions {
  /** Time allowed for each reflection request, ms. Default 5000. */
  timeoutMs?: number;
}

export interface JsonCallOptions extends CallOptions {
  /** Where to send the call (any `stringToProxy` target). Default: the adapter reflection was asked. */
  target?: string;
  /** Server-streaming and bidi methods: stop reading (and cancel the call) after this many messages. Default: no limit. */
  maxMessages?: number;
}

export const REFLECTION_CLIENT_DEFAULTS = Object.freeze({ timeoutMs: 5000 });

/** `pkg.Svc/Method`, `/pkg.Svc/Method` or `pkg.Svc.Method` -> [service, method]. */
function splitMethodName(name: string): [string, string] {
  const trimmed = name.trim().replace(/^\//, "");
  const slash = trimmed.lastIndexOf("/");
  const dot = trimmed.lastIndexOf(".");
  const at = slash >= 0 ? slash : dot;
  if (at <= 0 || at === trimmed.length - 1) throw new InvalidArgumentError(`"${name}" is not a method name (expected package.Service/Method)`);
  return [trimmed.slice(0, at), trimmed.slice(at + 1)];
}

/** @bufbuild/protobuf, loaded by the first client that needs it: index.ts exports this class, and a servant that never reflects should not pay for the library. */
function protobuf(): typeof import("@bufbuild/protobuf") & typeof import("@bufbuild/protobuf/wkt") {
  return { ...(require("@bufbuild/protobuf") as typeof import("@bufbuild/protobuf")), ...(require("@bufbuild/protobuf/wkt") as typeof import("@bufbuild/protobuf/wkt")) };
}

function jsonCodec(schema: DescMessage, registry: FileRegistry): MessageCodec<JsonValue> {
  const { fromBinary, fromJson, toBinary, toJson } = protobuf();
  return {
    encode: (json) => {
      try {
        return toBinary(schema, fromJson(schema, json as JsonValue, { registry }));
      } catch (err) {
        throw new InvalidArgumentError(`request is not a valid ${schema.typeName} in JSON: ${(err as Error).message}`);
      }
    },
    decode: (bytes) => toJson(schema, fromBinary(schema, bytes), { registry, alwaysEmitImplicit: true }),
  };
}

export class ReflectionClient {
  private readonly reflection: ServerReflectionProxy;
  private readonly timeoutMs: number;
  private registry: FileRegistry | undefined;
  private readonly fileOfService = new Map<string, string>();
  private readonly proxies = new Map<string, ProxyClass<ProxyBase>>();

  /** `target`: a gRPC adapter (`host:port`, or any proxy target of a gRPC endpoint). */
  constructor(private readonly communicator: Communicator, private readonly target: string, options: ReflectionClientOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? REFLECTION_CLIENT_DEFAULTS.timeoutMs;
    this.reflection = communicator.stringToProxy(ServerReflectionProxy, target, { preferNative: false });
  }

  /** One request on its own reflection stream. Throws the error_response's code as a typed error. */
  private async ask(request: Parameters<ServerReflectionProxy["serverReflectionInfo"]>[0] extends AsyncIterable<infer R> ? R : never): Promise<ServerReflectionResponse["messageResponse"]> {
    async function* one() { yield request; }
    for await (const res of this.reflection.serverReflectionInfo(one(), { timeoutMs: this.timeoutMs })) {
      const m = res.messageResponse;
      if (m?.$case === "errorResponse") {
        const status = m.value.errorCode as Status;
        if (status === Status.NOT_FOUND) throw new NotFoundError(m.value.errorMessage);
        throw new SgridError(Status[status] ?? "UNKNOWN", m.value.errorMessage, { status });
      }
      return m;
    }
    throw new UnavailableError(`server reflection at ${this.target} closed the stream without an answer`);
  }

  /** Full names of the services the adapter hosts. */
  async listServices(): Promise<string[]> {
    const m = await this.ask({ messageRequest: { $case: "listServices", value: "" } });
    if (m?.$case !== "listServicesResponse") throw new UnavailableError(`server reflection at ${this.target} answered list_services with ${m?.$case}`);
    return m.value.service.map((s) => s.name);
  }

  /**
   * The descriptors of the file declaring `service`, with its imports, linked
   * into a registry (fetched once per service; later services add to it).
   * NotFoundError when the adapter does not know the service.
   */
  async descriptors(service: string): Promise<FileRegistry> {
    return this.load(service);
  }

  private async load(service: string): Promise<FileRegistry> {
    if (this.registry?.getService(service)) return this.registry;
    const m = await this.ask({ messageRequest: { $case: "fileContainingSymbol", value: service } });
    if (m?.$case !== "fileDescriptorResponse") throw new UnavailableError(`server reflection at ${this.target} answered file_containing_symbol with ${m?.$case}`);
    const { create, createFileRegistry, fromBinary, FileDescriptorProtoSchema, FileDescriptorSetSchema } = protobuf();
    const protos = m.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b));
    const byName = new Map<string, FileDescriptorProto>();
    for (const f of this.registry?.files ?? []) if (f.proto) byName.set(f.proto.name, f.proto);
    for (const p of protos) byName.set(p.name, p);
    // The registry wants every import before the file importing it.
    const ordered: FileDescriptorProto[] = [];
    const seen = new Set<string>();
    const visit = (name: string) => {
      const p = byName.get(name);
      if (!p || seen.has(name)) return;
      seen.add(name);
      for (const dep of p.dependency) visit(dep);
      ordered.push(p);
    };
    for (const name of byName.keys()) visit(name);
    try {
      this.registry = createFileRegistry(create(FileDescriptorSetSchema, { file: ordered }));
    } catch (err) {
      throw new UnavailableError(`server reflection at ${this.target} returned descriptors that do not link: ${(err as Error).message}`);
    }
    if (protos[0]) this.fileOfService.set(service, protos[0].name);
    if (!this.registry.getService(service)) throw new NotFoundError(`service "${service}" is not declared in the descriptors server reflection returned`);
    return this.registry;
  }

  /** The methods of a service. Throws NotFoundError when the adapter does not know it. */
  async describeService(name: string): Promise<ReflectedService> {
    const registry = await this.load(name);
    const svc = registry.getService(name)!;
    return {
      name: svc.typeName,
      file: this.fileOfService.get(name) ?? svc.file.name,
      methods: svc.methods.map((m) => ({
        name: m.name,
        path: `/${svc.typeName}/${m.name}`,
        kind: m.methodKind === "server_streaming" ? "server_stream" : m.methodKind === "client_streaming" ? "client_stream" : m.methodKind === "bidi_streaming" ? "bidi" : "unary",
        requestType: m.input.typeName,
        responseType: m.output.typeName,
        idempotent: m.idempotency !== 0,
      })),
    };
  }

  /** One method (`package.Service/Method`); throws NotFoundError for an unknown service or method. */
  async describeMethod(name: string): Promise<ReflectedMethod> {
    const [service, method] = splitMethodName(name);
    const found = (await this.describeService(service)).methods.find((m) => m.name === method);
    if (!found) throw new NotFoundError(`service "${service}" has no method "${method}"`);
    return found;
  }

  /** The method's request message with every field at its default, as proto3 JSON (a skeleton to edit). */
  async requestSkeleton(name: string): Promise<JsonValue> {
    const method = await this.describeMethod(name);
    const registry = this.registry!;
    const schema = registry.getMessage(method.requestType);
    if (!schema) throw new NotFoundError(`message "${method.requestType}" is not in the descriptors server reflection returned`);
    const { create, toJson } = protobuf();
    return toJson(schema, create(schema), { registry, alwaysEmitImplicit: true });
  }

  /**
   * Checks a JSON request (an array for client-streaming and bidi methods)
   * against the method's message type without sending it: InvalidArgumentError
   * naming the field that does not fit, NotFoundError for an unknown method.
   */
  async checkRequest(method: string, request: JsonValue | JsonValue[]): Promise<void> {
    const [service, name] = splitMethodName(method);
    const m = (await this.proxyClass(service)).service.methods[name];
    if (!m) throw new NotFoundError(`service "${service}" has no method "${name}"`);
    checkEncodes(m, request);
  }

  /** A proxy class for one service, built from its descriptors, with JSON codecs. */
  private async proxyClass(service: string): Promise<ProxyClass<ProxyBase>> {
    let cls = this.proxies.get(service);
    if (cls) return cls;
    const registry = await this.load(service);
    const desc = await this.describeService(service);
    const methods: Record<string, MethodDescriptor> = {};
    for (const m of desc.methods) {
      methods[m.name] = {
        name: m.name, path: m.path, kind: m.kind, idempotent: m.idempotent,
        requestCodec: jsonCodec(registry.getMessage(m.requestType)!, registry),
        responseCodec: jsonCodec(registry.getMessage(m.responseType)!, registry),
      };
    }
    const descriptor: ServiceDescriptor = { name: service.slice(service.lastIndexOf(".") + 1), fullName: service, methods };
    cls = class extends ProxyBase { static readonly service = descriptor; };
    this.proxies.set(service, cls);
    return cls;
  }

  /**
   * Calls a method with a JSON request (an array of them for client-streaming
   * and bidi methods) and returns the JSON response (an array for
   * server-streaming and bidi methods). A request that does not fit the
   * message type is an InvalidArgumentError before anything is sent.
   */
  async call(method: string, request: JsonValue | JsonValue[], options: JsonCallOptions = {}): Promise<JsonValue | JsonValue[]> {
    const [service, name] = splitMethodName(method);
    const cls = await this.proxyClass(service);
    const m = cls.service.methods[name];
    if (!m) throw new NotFoundError(`service "${service}" has no method "${name}"`);
    const { target, maxMessages, ...callOptions } = options;
    // Checked here, before anything is sent: a transport would report a failed encode as INTERNAL.
    checkEncodes(m, request);
    const invoker = this.communicator.stringToProxy(cls, target ?? this.target).$invoker;
    const many = (): AsyncIterable<JsonValue> => {
      const list = Array.isArray(request) ? request : [request];
      return (async function* () { yield* list; })();
    };
    switch (m.kind) {
      case "unary": return invoker.unary(m, request as never, callOptions) as Promise<JsonValue>;
      case "client_stream": return invoker.clientStream(m, many() as never, callOptions) as Promise<JsonValue>;
      case "server_stream": return collect(invoker.serverStream(m, request as never, callOptions), maxMessages);
      default: return collect(invoker.bidi(m, many() as never, callOptions), maxMessages);
    }
  }
}

function checkEncodes(m: MethodDescriptor, request: JsonValue | JsonValue[]): void {
  const many = m.kind === "client_stream" || m.kind === "bidi";
  if (many && !Array.isArray(request)) throw new InvalidArgumentError(`${m.path} takes a stream: send a JSON array of requests`, { field: "request" });
  (many ? (request as JsonValue[]) : [request]).forEach((r, i) => {
    try {
      m.requestCodec.encode(r as never);
    } catch (err) {
      throw new InvalidArgumentError(many ? `request [${i}]: ${(err as Error).message}` : (err as Error).message, { field: "request" });
    }
  });
}

async function collect(source: AsyncIterable<unknown>, max = Infinity): Promise<JsonValue[]> {
  const out: JsonValue[] = [];
  if (max <= 0) return out;
  // Leaving the loop early cancels the call.
  for await (const v of source) {
    out.push(v as JsonValue);
    if (out.length >= max) break;
  }
  return out;
}
