/**
 * How a servant process ended, and the one-line reason reported upward.
 *
 * Reasons are fixed phrases the registry and people read:
 * "exited with code N", "killed by SIGX", "oom killed", and for a process
 * the agent adopted after a restart (not its child, so no exit status is
 * available) "exited (code unknown: adopted process)".
 */

export interface ExitInfo {
  /** Exit code, or null when killed by a signal or unknown. */
  code: number | null;
  /** Terminating signal, or null. */
  signal: NodeJS.Signals | null;
  /** True when the group's OOM-kill counter rose while the process ran and it died by SIGKILL (or, adopted, at all). */
  oomKilled: boolean;
  /** True for an adopted process: it is not the agent's child, so code and signal are unknown. */
  codeUnknown: boolean;
  /** One-line reason (see the file comment). */
  reason: string;
  /** When the exit was noticed, ms since the epoch. */
  at: number;
}

/** The reason phrase for an exit. */
export function describeExit(e: Pick<ExitInfo, "code" | "signal" | "oomKilled" | "codeUnknown">): string {
  if (e.oomKilled) return "oom killed";
  if (e.signal) return `killed by ${e.signal}`;
  if (e.code !== null) return `exited with code ${e.code}`;
  return e.codeUnknown ? "exited (code unknown: adopted process)" : "exited";
}

/** Builds an ExitInfo with its reason. */
export function exitInfo(code: number | null, signal: NodeJS.Signals | null, oomKilled: boolean, codeUnknown: boolean): ExitInfo {
  const info = { code, signal, oomKilled, codeUnknown, at: Date.now() };
  return { ...info, reason: describeExit(info) };
}
