/**
 * REST paths for gRPC methods from their `google.api.http` annotations
 * (googleapis' HttpRule, as grpc-gateway and Envoy's transcoder read it),
 * found in the descriptors the servants' server reflection returns.
 *
 *   rpc GetBook(GetBookRequest) returns (Book) {
 *     option (google.api.http) = { get: "/v1/shelves/{shelf}/books/{book}" };
 *   }
 *   GET /v1/shelves/s1/books/7?with_tags=true  ->  GetBook({shelf: "s1", book: 7, with_tags: true})
 *
 * Templates: literal segments, `*` (one segment), `**` (the rest),
 * `{field.path}` (one segment) or `{field.path=shelves/*}` (those segments,
 * `/` kept), and a final `:verb`. The request is built from the path
 * variables, then the body (`body: "*"`: the whole request; `body: "field"`:
 * that field; none: no body), then, unless the body is `*`, the query
 * parameters (`a.b=1`, repeated as `tag=x&tag=y`); values are turned into
 * the field's JSON form (bools, numbers) and checked by the transcoder like
 * any JSON request. `response_body` answers with that field of the reply.
 * `additional_bindings` are more templates for the same method. The most
 * specific template wins (more literal segments, then fewer wildcards).
 */
import { ScalarType, type DescField, type DescMessage, type JsonValue } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { InvalidArgumentError } from "sgridnext";
import type { MethodTranscoder } from "./transcoder";

/** The field number of `google.api.http` on google.protobuf.MethodOptions. */
export const HTTP_RULE_EXTENSION = 72295728;

export interface HttpBinding {
  /** GET, POST, PUT, DELETE, PATCH or a custom kind, upper case. */
  readonly verb: string;
  readonly template: string;
  /** "" (no body), "*" (the whole request) or a top-level field name. */
  readonly body: string;
  /** "" (the whole reply) or a top-level field of the reply. */
  readonly responseBody: string;
}

interface RawRule {
  verb?: string;
  template?: string;
  body: string;
  responseBody: string;
  more: RawRule[];
}

function decodeRule(bytes: Uint8Array, depth = 0): RawRule {
  const r = new BinaryReader(bytes);
  const rule: RawRule = { body: "", responseBody: "", more: [] };
  const verbs: Record<number, string> = { 2: "GET", 3: "PUT", 4: "POST", 5: "DELETE", 6: "PATCH" };
  while (r.pos < r.len) {
    const [no, wt] = r.tag();
    if (verbs[no] !== undefined && wt === WireType.LengthDelimited) {
      rule.verb = verbs[no];
      rule.template = r.string();
    } else if (no === 8 && wt === WireType.LengthDelimited) {
      const c = new BinaryReader(r.bytes());
      let kind = "";
      let path = "";
      while (c.pos < c.len) {
        const [cn, cw] = c.tag();
        if (cn === 1 && cw === WireType.LengthDelimited) kind = c.string();
        else if (cn === 2 && cw === WireType.LengthDelimited) path = c.string();
        else c.skip(cw);
      }
      rule.verb = kind.toUpperCase();
      rule.template = path;
    } else if (no === 7 && wt === WireType.LengthDelimited) {
      rule.body = r.string();
    } else if (no === 12 && wt === WireType.LengthDelimited) {
      rule.responseBody = r.string();
    } else if (no === 11 && wt === WireType.LengthDelimited && depth === 0) {
      // googleapis: additional bindings do not nest.
      rule.more.push(decodeRule(r.bytes(), depth + 1));
    } else {
      r.skip(wt);
    }
  }
  return rule;
}

/** The method's HTTP bindings (the rule and its additional bindings); none without the annotation. */
export function httpBindingsOf(options: { $unknown?: Array<{ no: number; wireType: WireType; data: Uint8Array }> } | undefined): HttpBinding[] {
  const out: HttpBinding[] = [];
  for (const u of options?.$unknown ?? []) {
    if (u.no !== HTTP_RULE_EXTENSION || u.wireType !== WireType.LengthDelimited) continue;
    // An unknown length-delimited field's data is its length, then the HttpRule's bytes.
    const rule = decodeRule(new BinaryReader(u.data).bytes());
    for (const b of [rule, ...rule.more]) {
      if (b.verb && b.template) out.push({ verb: b.verb, template: b.template, body: b.body, responseBody: b.responseBody });
    }
  }
  return out;
}

type Segment = { lit: string } | { star: true } | { dstar: true };

export interface CompiledTemplate {
  readonly template: string;
  readonly regex: RegExp;
  /** Field paths of the variables, in the order of the regex's groups. */
  readonly variables: ReadonlyArray<{ path: string; multi: boolean }>;
  /** For ordering: literal segments, then wildcards (fewer first). */
  readonly literals: number;
  readonly wildcards: number;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function segmentsOf(text: string, template: string): Segment[] {
  return text.split("/").map((s) => {
    if (s === "*") return { star: true } as const;
    if (s === "**") return { dstar: true } as const;
    if (s === "" || /[{}*]/.test(s)) throw new TypeError(`HTTP template "${template}": bad segment "${s}"`);
    return { lit: s };
  });
}

function segmentRegex(seg: Segment): string {
  if ("lit" in seg) return escape(encodeURI(seg.lit));
  if ("star" in seg) return "[^/]+";
  return "[^/]+(?:/[^/]+)*";
}

/** Compiles a google.api.http path template; TypeError naming the template when it does not parse. */
export function compileTemplate(template: string): CompiledTemplate {
  if (!template.startsWith("/")) throw new TypeError(`HTTP template "${template}": must start with /`);
  let rest = template.slice(1);
  let verb = "";
  const lastSlash = rest.lastIndexOf("/");
  const lastClose = rest.lastIndexOf("}");
  const colon = rest.lastIndexOf(":");
  if (colon > lastSlash && colon > lastClose) {
    verb = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!verb) throw new TypeError(`HTTP template "${template}": empty verb`);
  }
  const parts: string[] = [];
  const variables: Array<{ path: string; multi: boolean }> = [];
  let literals = 0;
  let wildcards = 0;
  // Top-level segments, with `{...}` kept whole (a variable's own segments contain `/`).
  const top: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of rest) {
    if (ch === "{") depth++;
    if (ch === "}") depth--;
    if (depth < 0 || depth > 1) throw new TypeError(`HTTP template "${template}": unbalanced braces`);
    if (ch === "/" && depth === 0) { top.push(cur); cur = ""; } else cur += ch;
  }
  if (depth !== 0) throw new TypeError(`HTTP template "${template}": unbalanced braces`);
  top.push(cur);
  for (const seg of top) {
    const v = /^\{([^}=]+)(?:=([^}]*))?\}$/.exec(seg);
    if (v) {
      const field = v[1]!;
      if (!IDENT.test(field)) throw new TypeError(`HTTP template "${template}": bad field path "${field}"`);
      const inner = v[2] === undefined ? [{ star: true } as const] : segmentsOf(v[2], template);
      variables.push({ path: field, multi: inner.length > 1 || inner.some((s) => "dstar" in s) });
      parts.push(`(${inner.map(segmentRegex).join("/")})`);
      for (const s of inner) { if ("lit" in s) literals++; else wildcards++; }
      continue;
    }
    if (seg.includes("{") || seg.includes("}")) throw new TypeError(`HTTP template "${template}": a variable must be a whole segment ("${seg}")`);
    for (const s of segmentsOf(seg, template)) {
      parts.push(segmentRegex(s));
      if ("lit" in s) literals++; else wildcards++;
    }
  }
  const regex = new RegExp(`^/${parts.join("/")}${verb ? `:${escape(verb)}` : ""}$`);
  return { template, regex, variables, literals: literals + (verb ? 1 : 0), wildcards };
}

/** A binding of one method, compiled. */
export interface RestRoute {
  readonly service: string;
  readonly method: string;
  /** `/<service>/<method>`. */
  readonly path: string;
  readonly binding: HttpBinding;
  readonly compiled: CompiledTemplate;
  readonly transcoder: MethodTranscoder;
}

export interface RestMatch {
  readonly route: RestRoute;
  /** Field path -> the decoded path value. */
  readonly variables: ReadonlyArray<[string, string]>;
}

/** Every binding of the given methods, most specific first. Bad templates are skipped and reported to `onBad`. */
export function restRoutes(methods: Iterable<{ service: string; transcoder: MethodTranscoder }>, onBad: (what: string, err: Error) => void = () => undefined): RestRoute[] {
  const out: RestRoute[] = [];
  for (const { service, transcoder } of methods) {
    for (const binding of httpBindingsOf(transcoder.method.proto.options)) {
      try {
        out.push({ service, method: transcoder.method.name, path: `/${service}/${transcoder.method.name}`, binding, compiled: compileTemplate(binding.template), transcoder });
      } catch (err) {
        onBad(`${service}/${transcoder.method.name}`, err as Error);
      }
    }
  }
  return out.sort((a, b) => b.compiled.literals - a.compiled.literals || a.compiled.wildcards - b.compiled.wildcards);
}

/** The first route whose verb and template match; undefined when none does. */
export function matchRest(routes: readonly RestRoute[], verb: string, path: string): RestMatch | undefined {
  for (const route of routes) {
    if (route.binding.verb !== verb) continue;
    const m = route.compiled.regex.exec(path);
    if (!m) continue;
    const variables: Array<[string, string]> = [];
    try {
      route.compiled.variables.forEach((v, i) => {
        const raw = m[i + 1]!;
        // One segment: fully decoded (%2F is a slash in the value); several: the slashes are the template's.
        variables.push([v.path, v.multi ? raw.split("/").map(decodeURIComponent).join("/") : decodeURIComponent(raw)]);
      });
    } catch {
      throw new InvalidArgumentError(`path ${path.slice(0, 200)}: bad percent-encoding`, { field: "(path)" });
    }
    return { route, variables };
  }
  return undefined;
}

function fieldOf(desc: DescMessage, name: string): DescField | undefined {
  return desc.fields.find((f) => f.name === name || f.jsonName === name);
}

/** A path or query value in the field's JSON form (bools and numbers typed, the rest as strings). */
function jsonValue(field: DescField, raw: string, where: string): JsonValue {
  const scalar = field.fieldKind === "scalar" || field.fieldKind === "list" && field.listKind === "scalar" ? field.scalar : undefined;
  // The integer types take their decimal strings as they are (proto3 JSON).
  if (scalar === ScalarType.BOOL) {
    if (raw === "true" || raw === "1") return true;
    if (raw === "false" || raw === "0") return false;
    throw new InvalidArgumentError(`field ${where}: "${raw.slice(0, 40)}" is not a bool (true or false)`, { field: where });
  }
  if ((scalar === ScalarType.DOUBLE || scalar === ScalarType.FLOAT) && raw !== "" && Number.isFinite(Number(raw))) return Number(raw);
  return raw;
}

/** Sets `path` (dotted, .proto or JSON names) of `obj` to `raw`; `append` for repeated query parameters. */
function setField(desc: DescMessage, obj: Record<string, JsonValue>, path: string, raw: string, append: boolean, source: string): void {
  const names = path.split(".");
  let d = desc;
  let o = obj;
  for (let i = 0; i < names.length; i++) {
    const f = fieldOf(d, names[i]!);
    const at = names.slice(0, i + 1).join(".");
    if (!f) throw new InvalidArgumentError(`${source} ${path}: ${d.typeName} has no field "${names[i]}"`, { field: at });
    if (i === names.length - 1) {
      if (f.fieldKind === "message" || f.fieldKind === "map" || f.fieldKind === "list" && f.listKind !== "scalar" && f.listKind !== "enum") {
        throw new InvalidArgumentError(`${source} ${path}: field ${at} is a message, not a value; send it in the body`, { field: at });
      }
      const v = jsonValue(f, raw, at);
      if (f.fieldKind === "list") {
        const list = (append && Array.isArray(o[f.jsonName]) ? o[f.jsonName] : []) as JsonValue[];
        list.push(v);
        o[f.jsonName] = list;
      } else {
        o[f.jsonName] = v;
      }
      return;
    }
    if (f.fieldKind !== "message") throw new InvalidArgumentError(`${source} ${path}: field ${at} is not a message`, { field: at });
    const next = o[f.jsonName];
    o = (next !== null && typeof next === "object" && !Array.isArray(next) ? next : (o[f.jsonName] = {})) as Record<string, JsonValue>;
    d = f.message;
  }
}

/**
 * The request JSON of a matched REST call: path variables, the body by the
 * binding's `body`, and the query parameters (not with `body: "*"`).
 * InvalidArgumentError naming the field or parameter that does not fit.
 */
export function restRequest(match: RestMatch, body: JsonValue | undefined, query: URLSearchParams): JsonValue {
  const { route } = match;
  const desc = route.transcoder.input;
  let req: Record<string, JsonValue> = {};
  const bodyField = route.binding.body;
  if (bodyField === "*") {
    if (body !== undefined) {
      if (body === null || typeof body !== "object" || Array.isArray(body)) throw new InvalidArgumentError(`the body of ${route.binding.verb} ${route.binding.template} is the request: a JSON object`, { field: "(body)" });
      req = { ...body };
    }
  } else if (bodyField) {
    const f = fieldOf(desc, bodyField);
    if (!f) throw new InvalidArgumentError(`the binding's body field "${bodyField}" is not a field of ${desc.typeName}`, { field: bodyField });
    if (body !== undefined) req[f.jsonName] = body;
  }
  for (const [p, v] of match.variables) setField(desc, req, p, v, false, "path variable");
  if (bodyField !== "*") {
    const bound = new Set(match.variables.map(([p]) => p));
    for (const [k, v] of query) {
      if (bound.has(k)) continue;
      setField(desc, req, k, v, true, "query parameter");
    }
  }
  return req;
}

/** The reply JSON a REST call answers: the whole reply, or its `response_body` field. */
export function restResponse(route: RestRoute, reply: JsonValue): JsonValue {
  const name = route.binding.responseBody;
  if (!name || reply === null || typeof reply !== "object" || Array.isArray(reply)) return reply;
  const f = fieldOf(route.transcoder.output, name);
  return f ? (reply as Record<string, JsonValue>)[f.jsonName] ?? null : reply;
}
