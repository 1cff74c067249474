/**
 * JSON <-> protobuf binary for the methods the HTTP front exposes, from the
 * descriptors a servant's server reflection returns (no generated code).
 *
 * proto3 JSON mapping, as @bufbuild/protobuf implements it: lowerCamelCase
 * field names on output (both the JSON name and the .proto name accepted on
 * input), 64-bit integers as strings, enums by name, bytes as base64,
 * well-known types in their JSON forms. A request that does not fit is an
 * InvalidArgumentError whose `data.field` is the JSON path of the first
 * field that does not fit (`envelope.attributes.x`, `items[2].id`).
 */
import { fromBinary, fromJson, toBinary, toJson, type DescField, type DescMessage, type DescMethod, type FileRegistry, type JsonValue } from "@bufbuild/protobuf";
import { InvalidArgumentError, NotFoundError, type ReflectionClient } from "sgridnext";

export type MethodKind = "unary" | "server_stream" | "client_stream" | "bidi";

/** The message types whose JSON form is not an object of fields (left to the library to judge whole). */
const WKT_SPECIAL = new Set([
  "google.protobuf.Any", "google.protobuf.Duration", "google.protobuf.Timestamp", "google.protobuf.FieldMask", "google.protobuf.Struct",
  "google.protobuf.Value", "google.protobuf.ListValue", "google.protobuf.NullValue", "google.protobuf.DoubleValue", "google.protobuf.FloatValue",
  "google.protobuf.Int64Value", "google.protobuf.UInt64Value", "google.protobuf.Int32Value", "google.protobuf.UInt32Value",
  "google.protobuf.BoolValue", "google.protobuf.StringValue", "google.protobuf.BytesValue", "google.protobuf.Empty",
]);

function isPlainObject(v: unknown): v is Record<string, JsonValue> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function fieldByJsonKey(desc: DescMessage, key: string): DescField | undefined {
  return desc.fields.find((f) => f.jsonName === key || f.name === key);
}

/** The library's reason, without its own prefix naming the message type. */
function reason(err: unknown): string {
  const msg = (err as Error).message ?? String(err);
  return msg.replace(/^cannot decode (field|message) [\w.]+ from JSON: /, "");
}

function describeJson(v: JsonValue): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return "an object";
  return `${typeof v} ${JSON.stringify(v)}`.slice(0, 80);
}

/**
 * Finds the first field of `json` that does not decode as `desc`, as a JSON
 * path from `path`. Only called after a decode failed, so it may be slow.
 * Returns undefined when no single field is to blame.
 */
function locate(desc: DescMessage, json: JsonValue, path: string, registry: FileRegistry): { field: string; why: string } | undefined {
  if (WKT_SPECIAL.has(desc.typeName)) {
    try { fromJson(desc, json, { registry }); return undefined; } catch (err) { return { field: path || "(request)", why: reason(err) }; }
  }
  if (!isPlainObject(json)) return { field: path || "(request)", why: `expected a JSON object for ${desc.typeName}, got ${describeJson(json)}` };
  for (const [key, value] of Object.entries(json)) {
    const at = path ? `${path}.${key}` : key;
    const field = fieldByJsonKey(desc, key);
    if (!field) return { field: at, why: `${desc.typeName} has no field "${key}"` };
    if (value === null) continue;
    const inner = innerLocate(field, value, at, registry);
    if (inner) return inner;
    try {
      fromJson(desc, { [key]: value }, { registry });
    } catch (err) {
      return { field: at, why: reason(err) };
    }
  }
  return undefined;
}

/** Descends into message-typed values of a field (singular, list elements, map values). */
function innerLocate(field: DescField, value: JsonValue, at: string, registry: FileRegistry): { field: string; why: string } | undefined {
  if (field.fieldKind === "message") return locate(field.message, value, at, registry);
  if (field.fieldKind === "list" && field.listKind === "message") {
    if (!Array.isArray(value)) return { field: at, why: `expected a JSON array, got ${describeJson(value)}` };
    for (let i = 0; i < value.length; i++) {
      const found = locate(field.message, value[i]!, `${at}[${i}]`, registry);
      if (found) return found;
    }
  }
  if (field.fieldKind === "map" && field.mapKind === "message" && isPlainObject(value)) {
    for (const [k, v] of Object.entries(value)) {
      const found = locate(field.message, v, `${at}.${k}`, registry);
      if (found) return found;
    }
  }
  return undefined;
}

/** One method's codecs between proto3 JSON and the wire. */
export class MethodTranscoder {
  /** `/package.Service/Method`. */
  readonly path: string;
  readonly kind: MethodKind;

  constructor(readonly method: DescMethod, private readonly registry: FileRegistry) {
    this.path = `/${method.parent.typeName}/${method.name}`;
    const k = method.methodKind;
    this.kind = k === "server_streaming" ? "server_stream" : k === "client_streaming" ? "client_stream" : k === "bidi_streaming" ? "bidi" : "unary";
  }

  get input(): DescMessage { return this.method.input; }
  get output(): DescMessage { return this.method.output; }

  /**
   * A JSON request (already parsed) -> the request message's bytes.
   * InvalidArgumentError with `data.field` naming the first field that does not fit.
   */
  requestFromJson(json: JsonValue): Uint8Array {
    try {
      return toBinary(this.input, fromJson(this.input, json, { registry: this.registry }));
    } catch (err) {
      const found = locate(this.input, json, "", this.registry);
      const field = found?.field ?? "(request)";
      const why = found?.why ?? reason(err);
      throw new InvalidArgumentError(`field ${field}: ${why}`, { field, message: this.input.typeName });
    }
  }

  /** Response bytes -> proto3 JSON (fields at their defaults included, so a client sees every key). */
  responseToJson(bytes: Uint8Array): JsonValue {
    return toJson(this.output, fromBinary(this.output, bytes), { registry: this.registry, alwaysEmitImplicit: true });
  }

  /** Request bytes -> JSON (for logs and tests); response JSON -> bytes (for stand-ins). */
  requestToJson(bytes: Uint8Array): JsonValue {
    return toJson(this.input, fromBinary(this.input, bytes), { registry: this.registry, alwaysEmitImplicit: true });
  }

  responseFromJson(json: JsonValue): Uint8Array {
    return toBinary(this.output, fromJson(this.output, json, { registry: this.registry }));
  }
}

export const DESCRIPTORS_DEFAULTS = Object.freeze({ ttlMs: 60_000 });

/**
 * Transcoders for every method of the services it was asked about, loaded
 * through server reflection and kept for `ttlMs` (a servant's descriptors
 * change only with a new release: a field it added is known to the gateway
 * at most that long after; `forget(service)` drops one at once).
 */
export class Descriptors {
  private readonly services = new Map<string, { at: number; methods: Promise<Map<string, MethodTranscoder>> }>();
  private readonly ttlMs: number;
  private readonly now: () => number;

  /** `reflect(service)`: a ReflectionClient of an adapter that hosts the service. */
  constructor(private readonly reflect: (service: string) => ReflectionClient | Promise<ReflectionClient>, options: { ttlMs?: number; now?: () => number } = {}) {
    this.ttlMs = options.ttlMs ?? DESCRIPTORS_DEFAULTS.ttlMs;
    this.now = options.now ?? Date.now;
  }

  /** The transcoder of `service`/`method`; NotFoundError when the service or the method is unknown. */
  async method(service: string, method: string): Promise<MethodTranscoder> {
    const methods = await this.service(service);
    const m = methods.get(method);
    if (!m) throw new NotFoundError(`service "${service}" has no method "${method}"`, { service, method });
    return m;
  }

  /** Every method of a service, by name. */
  service(service: string): Promise<Map<string, MethodTranscoder>> {
    const now = this.now();
    const kept = this.services.get(service);
    if (kept && now - kept.at < this.ttlMs) return kept.methods;
    const entry = { at: now, methods: this.load(service) };
    this.services.set(service, entry);
    // A failed load is not kept: the next request tries again.
    entry.methods.catch(() => { if (this.services.get(service) === entry) this.services.delete(service); });
    return entry.methods;
  }

  forget(service: string): void {
    this.services.delete(service);
  }

  private async load(service: string): Promise<Map<string, MethodTranscoder>> {
    const client = await this.reflect(service);
    const registry = await client.descriptors(service);
    const svc = registry.getService(service);
    if (!svc) throw new NotFoundError(`service "${service}" is not in the descriptors server reflection returned`, { service });
    return new Map(svc.methods.map((m) => [m.name, new MethodTranscoder(m, registry)]));
  }
}
