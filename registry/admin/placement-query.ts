/**
 * The placement query: which nodes a placed server may run on, over node
 * tags and the facts agents report.
 *
 * ```
 * query   := or
 * or      := and ( "OR" and )*
 * and     := unary ( "AND" unary )*
 * unary   := "NOT" unary | "(" or ")" | term
 * term    := "tags:" key [ "=" value ]          a tag present (with that value)
 *          | fact op value                       a comparison on a fact
 * fact    := cpus | memory | disk | os | arch | name
 * op      := "=" | "!=" | ">" | ">=" | "<" | "<="
 * value   := number [K|M|G|T][i][B]  (powers of 1024: memory>=8G)
 *          | word | "quoted text"
 * ```
 *
 * Keywords and fact names are case-insensitive; AND binds tighter than OR.
 * Numeric facts (cpus, memory, disk) take every comparison and a number;
 * text facts (os, arch, name) take `=` and `!=`. A query that does not
 * parse is INVALID_ARGUMENT whose message names the column (1-based) and
 * what was expected there, with `data.column` for forms.
 *
 * Why a hand-written parser: the grammar is six rules and one token kind
 * per line of the table above; a parser library (peggy, chevrotain,
 * nearley) would add a dependency and a build step, and its error messages
 * ("Expected ... but ... found") would still have to be rewritten into ours.
 */
import { InvalidArgumentError } from "sgridnext";
import { TAG_KEY_PATTERN, TAG_VALUE_PATTERN, type TagMap } from "sgridnext";

/** Longest query accepted, characters. */
export const MAX_QUERY_LENGTH = 1024;

export const NUMERIC_FACTS = ["cpus", "memory", "disk"] as const;
export const TEXT_FACTS = ["os", "arch", "name"] as const;
export type NumericFact = (typeof NUMERIC_FACTS)[number];
export type TextFact = (typeof TEXT_FACTS)[number];
export type Op = "=" | "!=" | ">" | ">=" | "<" | "<=";

export type QueryNode =
  | { kind: "and" | "or"; left: QueryNode; right: QueryNode }
  | { kind: "not"; operand: QueryNode }
  | { kind: "tag"; key: string; value?: string }
  | { kind: "num"; fact: NumericFact; op: Op; value: number }
  | { kind: "text"; fact: TextFact; op: "=" | "!="; value: string };

/** What a query is matched against: one node's name, tags and facts. */
export interface NodeView {
  name: string;
  tags: Readonly<TagMap>;
  cpus: number;
  /** Total memory, bytes. */
  memory: number;
  /** Most bytes available on one writable disk. */
  disk: number;
  os: string;
  arch: string;
}

// ---- tokens -------------------------------------------------------------------------
type TokKind = "word" | "string" | "op" | "(" | ")" | "tags" | "end";
interface Tok {
  kind: TokKind;
  text: string;
  /** 0-based offset in the query. */
  pos: number;
}

const WORD = /[A-Za-z0-9_./:+-]/;

function fail(query: string, pos: number, what: string): never {
  const column = pos + 1;
  throw new InvalidArgumentError(`invalid placement query ${JSON.stringify(query)}: at column ${column}, ${what}`, { kind: "place", field: "place", column });
}

function found(t: Tok): string {
  if (t.kind === "end") return "found the end of the query";
  return `found ${JSON.stringify(t.text)}`;
}

function tokenize(query: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < query.length) {
    const c = query[i]!;
    if (/\s/.test(c)) { i++; continue; }
    if (c === "(" || c === ")") { out.push({ kind: c, text: c, pos: i }); i++; continue; }
    if (c === "!" || c === "<" || c === ">" || c === "=") {
      const two = query.slice(i, i + 2);
      if (two === "!=" || two === "<=" || two === ">=") { out.push({ kind: "op", text: two, pos: i }); i += 2; continue; }
      if (c === "!") fail(query, i, `expected "!=" (use NOT to negate), found "!"`);
      out.push({ kind: "op", text: c, pos: i });
      i++;
      continue;
    }
    if (c === '"') {
      const end = query.indexOf('"', i + 1);
      if (end < 0) fail(query, i, "a quoted text is not closed (missing \")");
      out.push({ kind: "string", text: query.slice(i + 1, end), pos: i });
      i = end + 1;
      continue;
    }
    if (query.slice(i, i + 5).toLowerCase() === "tags:") { out.push({ kind: "tags", text: query.slice(i, i + 5), pos: i }); i += 5; continue; }
    if (WORD.test(c)) {
      const start = i;
      while (i < query.length && WORD.test(query[i]!)) i++;
      out.push({ kind: "word", text: query.slice(start, i), pos: start });
      continue;
    }
    fail(query, i, `unexpected character ${JSON.stringify(c)}`);
  }
  out.push({ kind: "end", text: "", pos: query.length });
  return out;
}

// ---- parser ------------------------------------------------------------------------------
const UNITS: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

function keyword(t: Tok, word: string): boolean {
  return t.kind === "word" && t.text.toUpperCase() === word;
}

class Parser {
  private i = 0;
  constructor(private readonly query: string, private readonly toks: Tok[]) {}

  private get tok(): Tok {
    return this.toks[this.i]!;
  }

  parse(): QueryNode {
    const node = this.or();
    if (this.tok.kind !== "end") {
      const what = this.tok.kind === ")" ? `a ")" without its "("` : `expected AND, OR or the end of the query, ${found(this.tok)}`;
      fail(this.query, this.tok.pos, what);
    }
    return node;
  }

  private or(): QueryNode {
    let left = this.and();
    while (keyword(this.tok, "OR")) {
      this.i++;
      left = { kind: "or", left, right: this.and() };
    }
    return left;
  }

  private and(): QueryNode {
    let left = this.unary();
    while (keyword(this.tok, "AND")) {
      this.i++;
      left = { kind: "and", left, right: this.unary() };
    }
    return left;
  }

  private unary(): QueryNode {
    const t = this.tok;
    if (keyword(t, "NOT")) {
      this.i++;
      return { kind: "not", operand: this.unary() };
    }
    if (t.kind === "(") {
      this.i++;
      const inner = this.or();
      if (this.tok.kind !== ")") fail(this.query, this.tok.pos, `expected ")" to close the "(" at column ${t.pos + 1}, ${found(this.tok)}`);
      this.i++;
      return inner;
    }
    if (t.kind === "tags") return this.tag();
    if (t.kind === "word" && !["AND", "OR"].includes(t.text.toUpperCase())) return this.comparison();
    fail(this.query, t.pos, `expected a term (tags:<tag>, NOT, "(" or a fact: ${[...NUMERIC_FACTS, ...TEXT_FACTS].join(", ")}), ${found(t)}`);
  }

  private tag(): QueryNode {
    this.i++;
    const k = this.tok;
    if (k.kind !== "word" || !TAG_KEY_PATTERN.test(k.text) || k.pos !== this.toks[this.i - 1]!.pos + 5) {
      fail(this.query, k.pos, `expected a tag key right after "tags:" (a letter or digit, then letters, digits, "_", "-", ".", "/"), ${found(k)}`);
    }
    this.i++;
    if (this.tok.kind === "op" && this.tok.text === "=" && this.tok.pos === k.pos + k.text.length) {
      const eq = this.tok;
      this.i++;
      const v = this.tok;
      if ((v.kind === "word" || v.kind === "string") && v.pos === eq.pos + 1 && TAG_VALUE_PATTERN.test(v.text)) {
        this.i++;
        return { kind: "tag", key: k.text, value: v.text };
      }
      fail(this.query, eq.pos + 1, `expected the tag's value right after "=" (letters, digits, "_", "-", ".", "/", ":"), ${found(v)}`);
    }
    return { kind: "tag", key: k.text };
  }

  private comparison(): QueryNode {
    const f = this.tok;
    const fact = f.text.toLowerCase();
    const numeric = (NUMERIC_FACTS as readonly string[]).includes(fact);
    if (!numeric && !(TEXT_FACTS as readonly string[]).includes(fact)) {
      fail(this.query, f.pos, `unknown fact ${JSON.stringify(f.text)}: expected tags:<tag> or one of ${[...NUMERIC_FACTS, ...TEXT_FACTS].join(", ")}`);
    }
    this.i++;
    const op = this.tok;
    if (op.kind !== "op") fail(this.query, op.pos, `expected a comparison (=, !=, >, >=, <, <=) after "${f.text}", ${found(op)}`);
    this.i++;
    const v = this.tok;
    if (v.kind !== "word" && v.kind !== "string") fail(this.query, v.pos, `expected a value after "${f.text}${op.text}", ${found(v)}`);
    this.i++;
    if (numeric) {
      const m = v.kind === "word" ? /^(\d+(?:\.\d+)?)([KMGT]?)(i?B?)$/i.exec(v.text) : null;
      if (!m || (m[2] === "" && m[3] !== "")) fail(this.query, v.pos, `"${f.text}" is a number: expected a number like 4, 512M or 8G, ${found(v)}`);
      return { kind: "num", fact: fact as NumericFact, op: op.text as Op, value: Number(m[1]) * UNITS[m[2]!.toLowerCase()]! };
    }
    if (op.text !== "=" && op.text !== "!=") fail(this.query, op.pos, `"${f.text}" is a text: only = and != compare it, found "${op.text}"`);
    return { kind: "text", fact: fact as TextFact, op: op.text as "=" | "!=", value: v.text };
  }
}

/** Parses a placement query; INVALID_ARGUMENT (with the column) when it does not parse. */
export function parsePlacementQuery(query: string): QueryNode {
  if (typeof query !== "string" || query.trim() === "") throw new InvalidArgumentError("invalid placement query: it is empty (e.g. tags:ssd AND cpus>4)", { kind: "place", field: "place", column: 1 });
  if (query.length > MAX_QUERY_LENGTH) fail(query.slice(0, 40) + "…", MAX_QUERY_LENGTH, `the query is longer than ${MAX_QUERY_LENGTH} characters`);
  return new Parser(query, tokenize(query)).parse();
}

function compare(a: number, op: Op, b: number): boolean {
  switch (op) {
    case "=": return a === b;
    case "!=": return a !== b;
    case ">": return a > b;
    case ">=": return a >= b;
    case "<": return a < b;
    case "<=": return a <= b;
  }
}

/** Whether `node` satisfies the query. Text facts compare case-insensitively (os and arch are lower case; node names are host names). */
export function matches(q: QueryNode, node: NodeView): boolean {
  switch (q.kind) {
    case "and": return matches(q.left, node) && matches(q.right, node);
    case "or": return matches(q.left, node) || matches(q.right, node);
    case "not": return !matches(q.operand, node);
    case "tag": return Object.hasOwn(node.tags, q.key) && (q.value === undefined || node.tags[q.key] === q.value);
    case "num": return compare(node[q.fact], q.op, q.value);
    case "text": return (node[q.fact].toLowerCase() === q.value.toLowerCase()) === (q.op === "=");
  }
}
