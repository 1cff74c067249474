/**
 * Structured logging for every part of Sgrid.
 *
 * One root pino logger per process; components take named children
 * (`getLogger("registry")`, `getLogger("agent.supervisor")`). The level comes
 * from `SGRID_LOG_LEVEL` (default `info`) and can be changed at run time with
 * {@link setLogLevel}, which applies to every child already handed out.
 * Secrets must never be passed to a logger: the redact list below is a last
 * line of defence, not a licence.
 */
import pino, { type Logger, type LevelWithSilent } from "pino";
import { ENV } from "./contract/env";

export type { Logger };

export const LOG_LEVELS: readonly LevelWithSilent[] = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

function initialLevel(): LevelWithSilent {
  const fromEnv = (process.env[ENV.LOG_LEVEL] ?? "info").toLowerCase();
  return (LOG_LEVELS as readonly string[]).includes(fromEnv) ? (fromEnv as LevelWithSilent) : "info";
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
  rootLogger().level = lower;
  for (const child of children.values()) child.level = lower;
}

/** The current level of the root logger. */
export function getLogLevel(): string {
  return rootLogger().level;
}
