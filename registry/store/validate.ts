/**
 * Validation of names and small values that reach the database.
 *
 * Every function throws InvalidArgumentError whose message names the kind of
 * thing and the offending value (`invalid config file name "a/b": must not
 * contain "/"`), and returns the value (normalised where stated) otherwise.
 * Names end up in paths on nodes (`servers/<App>.<Server>/`, `conf/<file>`),
 * so path separators and `..` are refused everywhere.
 */
import { InvalidArgumentError, checkNameOf, parseObjName } from "sgridnext";
import type { Adapter, AdapterProtocol, LaunchOptions, ResourceLimits } from "./records";

/** Longest user name. */
const MAX_USER_NAME = 64;

const USER_NAME = /^[A-Za-z0-9_.@-]+$/;

function show(value: unknown): string {
  const s = typeof value === "string" ? value : String(value);
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);
}

function checkName(kind: string, value: unknown, max: number, pattern: RegExp, allowed: string): string {
  if (typeof value !== "string") throw new InvalidArgumentError(`invalid ${kind}: expected a string, got ${typeof value}`, { kind });
  const bad = (why: string): never => {
    throw new InvalidArgumentError(`invalid ${kind} ${show(value)}: ${why}`, { kind, value: value.slice(0, 200) });
  };
  if (value.length === 0) throw new InvalidArgumentError(`invalid ${kind}: must not be empty`, { kind, value });
  if (value.length > max) bad(`longer than ${max} characters`);
  if (value.includes("/")) bad(`must not contain "/"`);
  if (value.includes("\\")) bad(`must not contain "\\"`);
  if (value.includes("..")) bad(`must not contain ".."`);
  if (!pattern.test(value)) bad(`may contain only ${allowed}`);
  return value;
}

// Application, server, Obj, node and config file names: the contract's grammar
// (framework/contract/names.ts), the same in every part.

/** Application name (see the contract: a letter, then letters, digits, `_`, `-`). */
export function validateApplication(value: unknown): string {
  return checkNameOf("application", value);
}

/** Server name: as an application name. */
export function validateServerName(value: unknown): string {
  return checkNameOf("server", value);
}

/** Short Obj (servant) name as declared on an adapter: as an application name. */
export function validateObjName(value: unknown): string {
  return checkNameOf("Obj", value);
}

/** Node name: host names and addresses. */
export function validateNodeName(value: unknown): string {
  return checkNameOf("node", value);
}

/** Config file name: a file in conf/, never hidden, never a path. */
export function validateConfigFileName(value: unknown): string {
  return checkNameOf("config file", value);
}

/** User name: letters, digits, `_`, `-`, `.`, `@`. */
export function validateUserName(value: unknown): string {
  return checkName("user name", value, MAX_USER_NAME, USER_NAME, `letters, digits, "_", "-", "." and "@"`);
}

/** A full Obj name `App.Server.Obj`, split into its parts. */
export function parseFullObjName(value: unknown): { application: string; server: string; obj: string } {
  const { app, server, obj } = parseObjName(value);
  return { application: app, server, obj };
}

/** Lowercase hex SHA-256; upper case input is accepted and lowered. */
export function validateSha256(value: unknown): string {
  const s = typeof value === "string" ? value.toLowerCase() : "";
  if (!/^[0-9a-f]{64}$/.test(s)) throw new InvalidArgumentError(`invalid sha256 ${show(value)}: expected 64 hex digits`, { kind: "sha256" });
  return s;
}

/** A non-negative safe integer (sizes, counters). */
export function validateCount(kind: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidArgumentError(`invalid ${kind} ${show(value)}: expected a non-negative integer`, { kind });
  }
  return value;
}

/** A positive safe integer id. */
export function validateId(kind: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value <= 0) {
    throw new InvalidArgumentError(`invalid ${kind} ${show(value)}: expected a positive integer`, { kind });
  }
  return value;
}

/** A free text of bounded length (comments, reasons, messages). */
export function validateText(kind: string, value: unknown, max: number): string {
  if (typeof value !== "string") throw new InvalidArgumentError(`invalid ${kind}: expected a string`, { kind });
  if (value.length > max) throw new InvalidArgumentError(`invalid ${kind}: longer than ${max} characters`, { kind });
  return value;
}

/** One of a fixed set of values. */
export function validateOneOf<T extends string>(kind: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== "string" || !(allowed as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`invalid ${kind} ${show(value)}: expected one of ${allowed.join(", ")}`, { kind });
  }
  return value as T;
}

const PROTOCOLS: readonly AdapterProtocol[] = ["grpc", "sgrid"];

/**
 * An instance's adapter list: each Obj once, host non-empty without spaces,
 * port 1..65535, weight 0..10000 (default 100), protocol grpc|sgrid (default grpc).
 */
export function validateAdapters(value: unknown): Adapter[] {
  if (!Array.isArray(value)) throw new InvalidArgumentError("invalid adapters: expected a list", { kind: "adapters" });
  const seen = new Set<string>();
  return value.map((raw: any) => {
    const obj = validateObjName(raw?.obj);
    if (seen.has(obj)) throw new InvalidArgumentError(`invalid adapters: Obj "${obj}" is declared twice`, { kind: "adapters", obj });
    seen.add(obj);
    const host = raw.host;
    if (typeof host !== "string" || host.length === 0 || host.length > 255 || /\s/.test(host)) {
      throw new InvalidArgumentError(`invalid host ${show(host ?? "")} for Obj "${obj}"`, { kind: "host", obj });
    }
    const port = raw.port;
    if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) {
      throw new InvalidArgumentError(`invalid port ${show(port)} for Obj "${obj}": expected 1..65535`, { kind: "port", obj });
    }
    const weight = raw.weight ?? 100;
    if (typeof weight !== "number" || !Number.isInteger(weight) || weight < 0 || weight > 10000) {
      throw new InvalidArgumentError(`invalid weight ${show(weight)} for Obj "${obj}": expected 0..10000`, { kind: "weight", obj });
    }
    const protocol = validateOneOf(`protocol for Obj "${obj}"`, raw.protocol ?? "grpc", PROTOCOLS);
    return { obj, host, port, protocol, weight };
  });
}

/** Environment for an instance: names like shell variables, string values. */
export function validateEnv(value: unknown): Record<string, string> {
  if (value == null) return {};
  if (typeof value !== "object" || Array.isArray(value)) throw new InvalidArgumentError("invalid env: expected an object", { kind: "env" });
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) || k.length > 128) throw new InvalidArgumentError(`invalid env variable name ${show(k)}`, { kind: "env" });
    if (typeof v !== "string") throw new InvalidArgumentError(`invalid value for env variable "${k}": expected a string`, { kind: "env" });
    out[k] = v;
  }
  return out;
}

/** Resource limits: every key optional; memoryBytes and pids positive integers, cpuCores a positive number. */
export function validateLimits(value: unknown): ResourceLimits {
  if (value == null) return {};
  if (typeof value !== "object" || Array.isArray(value)) throw new InvalidArgumentError("invalid limits: expected an object", { kind: "limits" });
  const v = value as Record<string, unknown>;
  const out: ResourceLimits = {};
  for (const key of Object.keys(v)) {
    if (!["memoryBytes", "cpuCores", "pids"].includes(key)) throw new InvalidArgumentError(`invalid limits: unknown key "${key}"`, { kind: "limits" });
  }
  if (v.memoryBytes != null) out.memoryBytes = validateId("limits.memoryBytes", v.memoryBytes);
  if (v.pids != null) out.pids = validateId("limits.pids", v.pids);
  if (v.cpuCores != null) {
    if (typeof v.cpuCores !== "number" || !(v.cpuCores > 0) || !Number.isFinite(v.cpuCores)) {
      throw new InvalidArgumentError(`invalid limits.cpuCores ${show(v.cpuCores)}: expected a positive number`, { kind: "limits" });
    }
    out.cpuCores = v.cpuCores;
  }
  return out;
}

/** A JSON object (health check, host info, defaults, params): must be a plain object that survives JSON. */
export function validateJsonObject(kind: string, value: unknown): Record<string, unknown> {
  if (value == null) return {};
  if (typeof value !== "object" || Array.isArray(value)) throw new InvalidArgumentError(`invalid ${kind}: expected an object`, { kind });
  try {
    return JSON.parse(JSON.stringify(value)) as Record<string, unknown>;
  } catch {
    throw new InvalidArgumentError(`invalid ${kind}: not representable as JSON`, { kind });
  }
}

/** Most entries in one launch option list (args, jvmOptions, nodeOptions). */
const MAX_LAUNCH_LIST = 256;
/** Longest single argument / option. */
const MAX_LAUNCH_ARG = 4096;
/** Longest grace period or keepalive timeout: one hour. */
const MAX_LAUNCH_MS = 3_600_000;
const LAUNCH_KEYS = ["args", "jvmOptions", "nodeOptions", "entry", "runAsUser", "stopSignal", "stopGraceMs", "keepaliveTimeoutMs"];

function validateArgList(kind: string, value: unknown): string[] {
  if (!Array.isArray(value)) throw new InvalidArgumentError(`invalid ${kind}: expected a list of strings`, { kind });
  if (value.length > MAX_LAUNCH_LIST) throw new InvalidArgumentError(`invalid ${kind}: more than ${MAX_LAUNCH_LIST} entries`, { kind });
  return value.map((a, i) => {
    if (typeof a !== "string") throw new InvalidArgumentError(`invalid ${kind}[${i}]: expected a string`, { kind });
    if (a.length > MAX_LAUNCH_ARG) throw new InvalidArgumentError(`invalid ${kind}[${i}]: longer than ${MAX_LAUNCH_ARG} characters`, { kind });
    if (a.includes("\0")) throw new InvalidArgumentError(`invalid ${kind}[${i}]: contains a NUL character`, { kind });
    return a;
  });
}

function validateLaunchMs(kind: string, value: unknown): number {
  const n = validateCount(kind, value);
  if (n > MAX_LAUNCH_MS) throw new InvalidArgumentError(`invalid ${kind} ${show(value)}: at most ${MAX_LAUNCH_MS} ms`, { kind });
  return n;
}

/**
 * Launch options of an instance (see LaunchOptions): every key optional,
 * unknown keys refused. Argument lists are arrays (never a shell string);
 * `entry` is a relative path inside the release (no absolute path, no `..`
 * segment, no backslash); `runAsUser` a POSIX user name; `stopSignal` a
 * signal name `SIG...`; times 0..3600000 ms. Empty strings and empty lists
 * are dropped (they mean "the default").
 */
export function validateLaunch(value: unknown): LaunchOptions {
  if (value == null) return {};
  if (typeof value !== "object" || Array.isArray(value)) throw new InvalidArgumentError("invalid launch options: expected an object", { kind: "launch" });
  const v = value as Record<string, unknown>;
  for (const key of Object.keys(v)) {
    if (!LAUNCH_KEYS.includes(key)) throw new InvalidArgumentError(`invalid launch options: unknown key "${key}"`, { kind: "launch" });
  }
  const out: LaunchOptions = {};
  for (const key of ["args", "jvmOptions", "nodeOptions"] as const) {
    if (v[key] == null) continue;
    const list = validateArgList(`launch.${key}`, v[key]);
    if (list.length > 0) out[key] = list;
  }
  if (v.entry != null && v.entry !== "") {
    const entry = validateText("launch.entry", v.entry, 1024);
    if (entry.startsWith("/") || entry.includes("\\") || entry.includes("\0") || entry.split("/").includes("..")) {
      throw new InvalidArgumentError(`invalid launch.entry ${show(entry)}: must be a relative path inside the release (no leading "/", no "..", no "\\")`, { kind: "launch.entry" });
    }
    out.entry = entry;
  }
  if (v.runAsUser != null && v.runAsUser !== "") {
    if (typeof v.runAsUser !== "string" || !/^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/.test(v.runAsUser)) {
      throw new InvalidArgumentError(`invalid launch.runAsUser ${show(v.runAsUser)}: expected a user name`, { kind: "launch.runAsUser" });
    }
    out.runAsUser = v.runAsUser;
  }
  if (v.stopSignal != null && v.stopSignal !== "") {
    if (typeof v.stopSignal !== "string" || !/^SIG[A-Z0-9]{2,10}$/.test(v.stopSignal)) {
      throw new InvalidArgumentError(`invalid launch.stopSignal ${show(v.stopSignal)}: expected a signal name such as "SIGTERM"`, { kind: "launch.stopSignal" });
    }
    out.stopSignal = v.stopSignal;
  }
  if (v.stopGraceMs != null) out.stopGraceMs = validateLaunchMs("launch.stopGraceMs", v.stopGraceMs);
  if (v.keepaliveTimeoutMs != null) out.keepaliveTimeoutMs = validateLaunchMs("launch.keepaliveTimeoutMs", v.keepaliveTimeoutMs);
  return out;
}
