/**
 * The merge rule of layered config files (pure: no I/O, no clock).
 *
 * An instance sees a file at up to three levels, most general first:
 * application < server < instance. Levels that do not have the file are
 * skipped. The result:
 *
 * 1. `.json`, `.yaml`, `.yml` (case-insensitive) at one level only: its
 *    content verbatim (comments and formatting kept), once checked to parse
 *    (writes refuse content that does not, but a level stored before that
 *    check may not: CONFIG_LAYER_INVALID with its line and column).
 * 2. `.json`, `.yaml`, `.yml` at two or three levels: every level is parsed
 *    and must be an object (a mapping) at the top; content that is empty or only whitespace (or, in YAML, only comments)
 *    counts as an empty object. Objects are merged key by key, recursively;
 *    on a conflict the more specific level wins. Arrays, scalars and `null`
 *    are values like any other: they replace whole (a `null` does not delete
 *    the key). A key's position is where it first appears (general levels
 *    first). Output: JSON with 2-space indent and a final newline, or YAML
 *    (no anchors). A level that does not parse, or is not an object, fails
 *    the whole load with CONFIG_LAYER_INVALID (FAILED_PRECONDITION) naming
 *    the file, the level and the parser's error (position where the parser
 *    gives one, never an excerpt of the content: configs hold secrets): a half-merged config would be worse than none, and the
 *    fix (correct that level) is the operator's.
 * 3. Any other file (also at one level): each level replaces what the levels below produced,
 *    unless its content starts with the line `#sgrid:append` (trailing spaces
 *    allowed, LF or CRLF); then it is appended, without that line, to the
 *    result of the levels below (a newline is put between them when the
 *    lower part does not end in one). So an instance-level file with the
 *    marker over a server-level file without it gives server + instance;
 *    with the marker at both, application + server + instance.
 *
 * The version string, `a<v>.s<v>.i<v>.<hash>`, lists the current version of
 * each level (0 when the level has no file) and the first 12 hex digits of
 * the sha256 of the merged content; it changes whenever any level gets a new
 * version (put, rollback) and whenever the content changes (also after a
 * level is deleted and re-created). Compare it for equality only.
 */
import { createHash } from "node:crypto";
import YAML from "yaml";
import { NotFoundError } from "sgridnext";
import { configSyntaxProblem, structuredFormat, type ConfigLayers, type ConfigLevel, type ConfigVersionRecord } from "../store";
import { ConfigLayerInvalidError } from "./errors";

/** The first line that makes a non-structured level append instead of replace. */
export const APPEND_MARKER = "#sgrid:append";
const MARKER_RE = /^#sgrid:append[ \t]*(\r?\n|$)/;

export type ConfigFormat = "json" | "yaml" | "text";

/** How a file is merged, by its name's extension (case-insensitive). */
export function configFormat(fileName: string): ConfigFormat {
  return structuredFormat(fileName) ?? "text";
}

const LEVELS: readonly ConfigLevel[] = ["application", "server", "instance"];

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/** Sets an own property, even one named `__proto__` (never touches a prototype). */
function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Deep merge of two plain objects; `over` wins. Returns a new object; inputs are not changed. */
export function mergeObjects(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(base)) setOwn(out, key, base[key]);
  for (const key of Object.keys(over)) {
    const had = Object.prototype.hasOwnProperty.call(out, key);
    const a = had ? out[key] : undefined;
    const b = over[key];
    setOwn(out, key, had && isPlainObject(a) && isPlainObject(b) ? mergeObjects(a, b) : b);
  }
  return out;
}

/** Parser error text without any excerpt of the content (configs may hold secrets). */
function parseErrorText(format: "json" | "yaml", err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  if (format === "yaml") {
    // yaml's messages end with ":\n\n<excerpt>\n^" after the position.
    return message.split("\n")[0]!.replace(/:$/, "");
  }
  // Node's JSON.parse may quote the input: `Unexpected token 's', "{"pass": secret}" is not valid JSON`.
  // or `Unexpected token 'h', ..."assword": hunter2}" is not valid JSON`.
  return message.replace(/, (?:\.\.\.)?".*" is not valid JSON$/s, "");
}

function where(fileName: string, layer: ConfigVersionRecord): string {
  return `config file "${fileName}" at ${layer.level} level (${layer.scopeKey}, version ${layer.version})`;
}

function parseLevel(fileName: string, format: "json" | "yaml", layer: ConfigVersionRecord): Record<string, unknown> {
  if (layer.content.trim() === "") return {};
  let value: unknown;
  try {
    value = format === "json" ? JSON.parse(layer.content) : YAML.parse(layer.content);
  } catch (err) {
    throw new ConfigLayerInvalidError(`${where(fileName, layer)} is not valid ${format === "json" ? "JSON" : "YAML"}: ${parseErrorText(format, err)}`, {
      fileName, level: layer.level, scope: layer.scopeKey, version: layer.version,
    });
  }
  if (value === null || value === undefined) return {}; // YAML with only comments
  if (!isPlainObject(value)) {
    const got = Array.isArray(value) ? "an array" : `a ${typeof value}`;
    throw new ConfigLayerInvalidError(`${where(fileName, layer)} cannot be merged: its top level is ${got}, expected an object`, {
      fileName, level: layer.level, scope: layer.scopeKey, version: layer.version,
    });
  }
  return value;
}

function mergeText(present: ConfigVersionRecord[]): string {
  let out = "";
  for (const layer of present) {
    const m = MARKER_RE.exec(layer.content);
    if (!m) {
      out = layer.content;
      continue;
    }
    const own = layer.content.slice(m[0].length);
    if (out !== "" && !out.endsWith("\n") && own !== "") out += "\n";
    out += own;
  }
  return out;
}

/**
 * Merges one file's levels (see the rule at the top of this file). Throws
 * NOT_FOUND when no level has the file, CONFIG_LAYER_INVALID when a
 * structured level does not parse to an object.
 */
export function mergeConfig(fileName: string, layers: ConfigLayers): { content: string; version: string } {
  const present = LEVELS.map((l) => layers[l]).filter((l): l is ConfigVersionRecord => l != null);
  if (present.length === 0) throw new NotFoundError(`config file "${fileName}" exists at no level`, { fileName });
  const format = configFormat(fileName);
  let content: string;
  if (format === "text") {
    content = mergeText(present);
  } else if (present.length === 1) {
    // Verbatim, but only if it parses: a level stored before the write-time check may not.
    const only = present[0]!;
    const problem = configSyntaxProblem(fileName, only.content);
    if (problem) {
      throw new ConfigLayerInvalidError(`${where(fileName, only)} is not valid ${format === "json" ? "JSON" : "YAML"}: line ${problem.line}, column ${problem.column}: ${problem.message}`, {
        fileName, level: only.level, scope: only.scopeKey, version: only.version,
      });
    }
    content = only.content;
  } else {
    let merged: Record<string, unknown> = {};
    for (const layer of present) merged = mergeObjects(merged, parseLevel(fileName, format, layer));
    content = format === "json"
      ? `${JSON.stringify(merged, null, 2)}\n`
      : YAML.stringify(merged, { aliasDuplicateObjects: false });
  }
  const v = (l: ConfigVersionRecord | null) => (l ? l.version : 0);
  const hash = createHash("sha256").update(content).digest("hex").slice(0, 12);
  return { content, version: `a${v(layers.application)}.s${v(layers.server)}.i${v(layers.instance)}.${hash}` };
}
