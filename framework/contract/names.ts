/**
 * The names every part of Sgrid agrees on, written once: the registry
 * stores them, the admin app and the CLI take them from people, the node
 * agent builds paths from them (`servers/<App>.<Server>/`, `conf/<file>`,
 * `releases/<version>/`), the config loader and proxies send them. A name
 * one part accepts, every part accepts (test/framework/contract-names.test.ts
 * checks each layer against the same table).
 *
 * | kind | grammar | why |
 * |---|---|---|
 * | application, server, Obj | a letter, then letters, digits, `_`, `-`; at most 64 | Tars identifiers; no `.` (it separates `App.Server.Obj`), no path characters |
 * | node | a letter or digit or `_`, then letters, digits, `_`, `-`, `.`; at most 128; no `..` | host names and addresses |
 * | config file | a letter, digit or `_`, then letters, digits, `_`, `-`, `.`; at most 128; no `..` | a file in `conf/`: never hidden, never a path |
 * | release version | a letter or digit, then letters, digits, `.`, `_`, `+`, `-`; at most 128; no `..` | a folder name under `releases/` |
 * | package sha256 | 64 lower-case hex digits | a file name in the package cache |
 *
 * Each `check*` returns the name when it is valid and throws
 * InvalidArgumentError naming the kind, the value and what is wrong
 * otherwise; each `is*` says the same as a boolean.
 */
import type { z } from "zod";
import { InvalidArgumentError } from "../errors";

/** Application, server and short Obj names. */
export const NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
/** Node names. */
export const NODE_NAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
/** Config file names. */
export const CONFIG_FILE_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
/** Release versions: a directory name, never "." or "..", no separators. */
export const VERSION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;
/** A sha256 in lower-case hex. */
export const SHA256_PATTERN = /^[0-9a-f]{64}$/;

/** The kinds of names, as they appear in error messages. */
export type NameKind = "application" | "server" | "Obj" | "node" | "config file";

interface Grammar {
  pattern: RegExp;
  max: number;
  allowed: string;
  /** What the first character must be. */
  first: string;
}

const GRAMMARS: Readonly<Record<NameKind, Grammar>> = Object.freeze({
  application: { pattern: NAME_PATTERN, max: 64, allowed: `letters, digits, "_" and "-"`, first: "a letter" },
  server: { pattern: NAME_PATTERN, max: 64, allowed: `letters, digits, "_" and "-"`, first: "a letter" },
  Obj: { pattern: NAME_PATTERN, max: 64, allowed: `letters, digits, "_" and "-"`, first: "a letter" },
  node: { pattern: NODE_NAME_PATTERN, max: 128, allowed: `letters, digits, "_", "-" and "."`, first: `a letter, a digit or "_"` },
  "config file": { pattern: CONFIG_FILE_PATTERN, max: 128, allowed: `letters, digits, "_", "-" and "."`, first: `a letter, a digit or "_"` },
});

function show(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}

/** Why `value` is not a valid `kind` name, or undefined when it is. */
export function nameProblem(kind: NameKind, value: unknown): string | undefined {
  const g = GRAMMARS[kind];
  if (typeof value !== "string") return `expected a string, got ${value === null ? "null" : typeof value}`;
  if (value.length === 0) return "must not be empty";
  if (value.length > g.max) return `longer than ${g.max} characters`;
  if (value.includes("/") || value.includes("\\")) return "must not contain a path separator";
  if (value.includes("..")) return `must not contain ".."`;
  if (!g.pattern.test(value)) {
    return g.pattern.test(`${kind === "node" || kind === "config file" ? "_" : "a"}${value.slice(1)}`)
      ? `must start with ${g.first}`
      : `may contain only ${g.allowed}`;
  }
  return undefined;
}

/** Returns `value` when it is a valid `kind` name; throws InvalidArgumentError naming the problem otherwise. */
export function checkNameOf(kind: NameKind, value: unknown): string {
  const problem = nameProblem(kind, value);
  if (problem !== undefined) {
    const shown = typeof value === "string" && value.length > 0 ? ` ${show(value)}` : "";
    throw new InvalidArgumentError(`invalid ${kind} name${shown}: ${problem}`, { kind, value: typeof value === "string" ? value.slice(0, 200) : String(value) });
  }
  return value as string;
}

/** True when `value` is a valid `kind` name. */
export function isNameOf(kind: NameKind, value: unknown): value is string {
  return nameProblem(kind, value) === undefined;
}

/** For zod schemas (`z.string().superRefine(nameRefinement("node"))`): an issue naming the problem when the value is not a valid `kind` name. */
export function nameRefinement(kind: NameKind): (value: string, ctx: z.RefinementCtx) => void {
  return (value, ctx) => {
    const problem = nameProblem(kind, value);
    if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
  };
}

/** A full Obj name `App.Server.Obj`, split into its checked parts; throws InvalidArgumentError naming the bad part. */
export function parseObjName(value: unknown): { app: string; server: string; obj: string } {
  if (typeof value !== "string" || value.length === 0) {
    throw new InvalidArgumentError(`invalid Obj name ${show(String(value ?? ""))}: expected "App.Server.Obj"`, { kind: "Obj" });
  }
  const parts = value.split(".");
  if (parts.length !== 3) {
    throw new InvalidArgumentError(`invalid Obj name ${show(value)}: expected three parts "App.Server.Obj"`, { kind: "Obj", value: value.slice(0, 200) });
  }
  const [app, server, obj] = parts as [string, string, string];
  return { app: checkNameOf("application", app), server: checkNameOf("server", server), obj: checkNameOf("Obj", obj) };
}

/** True when `value` is a valid full `App.Server.Obj` name. */
export function isFullObjName(value: unknown): value is string {
  if (typeof value !== "string") return false;
  const parts = value.split(".");
  return parts.length === 3 && isNameOf("application", parts[0]) && isNameOf("server", parts[1]) && isNameOf("Obj", parts[2]);
}

/** Throws InvalidArgumentError unless `name` is a valid application or server name (`what` names which). */
export function checkName(what: string, name: string): string {
  if (typeof name !== "string" || !NAME_PATTERN.test(name)) {
    throw new InvalidArgumentError(`invalid ${what} name ${JSON.stringify(name)} (expected ${NAME_PATTERN.source})`, { [what]: String(name) });
  }
  return name;
}

/** Throws InvalidArgumentError unless `version` is a valid release version. */
export function checkVersion(version: string): string {
  if (typeof version !== "string" || !VERSION_PATTERN.test(version) || version.includes("..")) {
    throw new InvalidArgumentError(`invalid release version ${JSON.stringify(version)} (expected ${VERSION_PATTERN.source})`, { version: String(version) });
  }
  return version;
}

/** Returns the lower-cased sha256, or throws InvalidArgumentError. */
export function checkSha256(sha256: string): string {
  const lower = typeof sha256 === "string" ? sha256.toLowerCase() : "";
  if (!SHA256_PATTERN.test(lower)) {
    throw new InvalidArgumentError(`invalid sha256 ${JSON.stringify(sha256)} (expected 64 hex digits)`, { sha256: String(sha256) });
  }
  return lower;
}
