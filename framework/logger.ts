/**
 * Structured logging for every part of Sgrid.
 *
 * One root pino logger per process; components take named children
 * (`getLogger("registry")`, `getLogger("agent.supervisor")`). The level comes
 * from `SGRID_LOG_LEVEL`, and can be changed at run time with
 * {@link setLogLevel}, which applies to every child already handed out.
 * Without either, a process that hosts servers (an Application, the admin
 * app) logs at `info`, and any other process, a script that only makes
 * proxies, at `warn`: the library's info lines (endpoint lists resolved) stay
 * out of a client's output unless it asks for them.
 * Secrets must never be passed to a logger: the redact list below is a last
 * line of defence, not a licence.
 */
import pino, { type Logger, type LevelWithSilent } from "pino";
import { ENV } from "./contract/env";

export type { Logger };

export const LOG_LEVELS: readonly LevelWithSilent[] = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

/** The level a process without SGRID_LOG_LEVEL starts at, until it hosts servers. */
const CLIENT_DEFAULT_LEVEL: LevelWithSilent = "warn";
const HOSTING_DEFAULT_LEVEL: LevelWithSilent = "info";

/** True once SGRID_LOG_LEVEL or setLogLevel decided the level: defaults no longer apply. */
let decided = false;

function initialLevel(): LevelWithSilent {
  const fromEnv = process.env[ENV.LOG_LEVEL]?.trim().toLowerCase();
  if (fromEnv && (LOG_LEVELS as readonly string[]).includes(fromEnv)) {
    decided = true;
    return fromEnv as LevelWithSilent;
  }
  return CLIENT_DEFAULT_LEVEL;
}

let root: Logger | undefined;
const children = new Map<string, Logger>();

function rootLogger(): Logger {
  if (!root) {
    root = pino({
      level: initialLevel(),
      base: { pid: process.pid },
      redact: {
        paths: ["token", "password", "*.token", "*.password", "authorization", "*.authorization", "secret", "*.secret"],
        censor: "[redacted]",
      },
    }, pino.destination({ fd: 2, sync: false }));
  }
  return root;
}

/** A named child logger; the same instance is returned for the same name. */
export function getLogger(name: string): Logger {
  let child = children.get(name);
  if (!child) {
    child = rootLogger().child({ component: name });
    children.set(name, child);
  }
  return child;
}

/** Changes the level of the root and every named child. Throws TypeError on an unknown level. */
export function setLogLevel(level: string): void {
  const lower = level.toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(lower)) {
    throw new TypeError(`unknown log level "${level}" (expected one of ${LOG_LEVELS.join(", ")})`);
  }
  decided = true;
  applyLevel(lower);
}

function applyLevel(level: string): void {
  rootLogger().level = level;
  for (const child of children.values()) child.level = level;
}

/**
 * Called by whatever hosts servers (Application, the admin app): raises the
 * default level to `info`, unless SGRID_LOG_LEVEL or setLogLevel decided.
 */
export function useHostingLogLevel(): void {
  rootLogger();
  if (!decided && rootLogger().level === CLIENT_DEFAULT_LEVEL) applyLevel(HOSTING_DEFAULT_LEVEL);
}

/** The current level of the root logger. */
export function getLogLevel(): string {
  return rootLogger().level;
}
