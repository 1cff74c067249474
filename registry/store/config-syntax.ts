/**
 * The syntax check of structured config content, at write time: a `.json`,
 * `.yaml` or `.yml` file (by its name, case-insensitive) whose content does
 * not parse is refused with INVALID_ARGUMENT naming the line and column
 * (1-based), so that a file no servant could read is never stored, whichever
 * path wrote it (Admin API, CLI, admin app, rollback to an old version).
 *
 * Content that is empty or only whitespace passes: the merge rule counts it
 * as an empty object. The top level may be any JSON/YAML value: at one level
 * the file is served verbatim, and only a merge with other levels needs an
 * object (that is checked when the merged view is built).
 *
 * The message never quotes the content (configs hold secrets): the parser's
 * own text is cut before any excerpt.
 */
import YAML from "yaml";
import { InvalidArgumentError } from "sgridnext";

export type StructuredFormat = "json" | "yaml";

/** The structured format of a config file name, or undefined for text files. */
export function structuredFormat(fileName: string): StructuredFormat | undefined {
  const lower = fileName.toLowerCase();
  if (lower.endsWith(".json")) return "json";
  if (lower.endsWith(".yaml") || lower.endsWith(".yml")) return "yaml";
  return undefined;
}

/** A syntax error's position (1-based) and the parser's message without any excerpt. */
export interface SyntaxProblem {
  line: number;
  column: number;
  message: string;
}

/** Line and column (1-based) of a character offset. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, Math.min(offset, text.length)));
  const lines = before.split("\n");
  return { line: lines.length, column: lines.at(-1)!.length + 1 };
}

const AT_POSITION = /\s+(?:in JSON )?at position (\d+)/;
const END_OF_INPUT = /^Unexpected end of JSON input/;

function parseError(text: string): string | undefined {
  try {
    JSON.parse(text);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * Whether `prefix` could still begin a valid JSON text: it parses, or it
 * only ran out (end of input, or an error placed at its very end).
 */
function viablePrefix(prefix: string): boolean {
  const m = parseError(prefix);
  if (m === undefined || END_OF_INPUT.test(m)) return true;
  const at = AT_POSITION.exec(m);
  return at !== null && Number(at[1]) >= prefix.length;
}

/**
 * The offset of the character JSON.parse stumbles on. V8 gives it for most
 * errors ("... at position 8"), not for "Unexpected token 'x', ..."; then the
 * shortest prefix that can no longer begin a valid text is found by
 * bisection (a prefix of a viable prefix is viable), about log2(length)
 * parses.
 */
function jsonErrorOffset(text: string, message: string): number {
  const at = AT_POSITION.exec(message);
  if (at) return Number(at[1]);
  if (END_OF_INPUT.test(message)) return text.length;
  let lo = 0;
  let hi = text.length;
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (viablePrefix(text.slice(0, mid))) lo = mid;
    else hi = mid;
  }
  return hi - 1;
}

/** Where `text` fails to parse as JSON, or undefined when it parses. */
export function jsonProblem(text: string): SyntaxProblem | undefined {
  const raw = parseError(text);
  if (raw === undefined) return undefined;
  const offset = jsonErrorOffset(text, raw);
  // Cut the position (given separately) and any excerpt of the content ("Unexpected token 'x', "{..." is not valid JSON").
  const at = AT_POSITION.exec(raw);
  const message = (at ? raw.slice(0, at.index) : raw).replace(/, (?:\.\.\.)?".*" is not valid JSON$/s, "").replace(/\s*\(line \d+ column \d+\)$/, "");
  return { ...lineColumn(text, offset), message };
}

/** Where `text` fails to parse as YAML (the first error), or undefined when it parses. */
export function yamlProblem(text: string): SyntaxProblem | undefined {
  const doc = YAML.parseAllDocuments(text);
  const docs = Array.isArray(doc) ? doc : [doc];
  for (const d of docs) {
    const e = d.errors[0];
    if (!e) continue;
    const pos = e.linePos?.[0] ?? lineColumn(text, e.pos[0]);
    return { line: pos.line, column: "col" in pos ? pos.col : pos.column, message: e.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "") };
  }
  if (docs.length > 1) {
    // A config file is one document; YAML.parse refuses a stream of several.
    const second = docs[1]!;
    return { ...lineColumn(text, second.range[0]), message: "more than one YAML document (a config file holds one)" };
  }
  return undefined;
}

/** The syntax problem of `content` for `fileName`'s format; undefined for text files and content that parses. */
export function configSyntaxProblem(fileName: string, content: string): SyntaxProblem | undefined {
  const format = structuredFormat(fileName);
  if (!format || content.trim() === "") return undefined;
  return format === "json" ? jsonProblem(content) : yamlProblem(content);
}

/** Throws INVALID_ARGUMENT naming the file, line and column when structured content does not parse. */
export function checkConfigSyntax(fileName: string, content: string): void {
  const p = configSyntaxProblem(fileName, content);
  if (!p) return;
  const format = structuredFormat(fileName) === "json" ? "JSON" : "YAML";
  throw new InvalidArgumentError(`config file "${fileName}" is not valid ${format}: line ${p.line}, column ${p.column}: ${p.message}; nothing was stored`, {
    kind: "config content", field: "content", fileName, line: p.line, column: p.column,
  });
}
