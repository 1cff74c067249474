/**
 * The agent's built-in `agent.tail_log` command: the last lines of an
 * instance's stdout or stderr log, optionally only those containing a text.
 *
 * Arguments (the command's one string):
 * - `""` or `"<n>"`: the last n lines of stdout (the original form, kept);
 * - a JSON object `{"lines": n, "stream": "stdout" | "stderr", "grep": "text"}`
 *   (every key optional): with `grep`, the last n lines that contain the text
 *   (case-insensitive) among the last TAIL_DEFAULTS.maxBytes of the file.
 * A servant that logs with the framework writes to stderr (pino), a plain
 * program usually to stdout: the admin page shows both.
 */
import { InvalidArgumentError } from "sgridnext";
import { tail, TAIL_DEFAULTS } from "./tail";

export const LOG_STREAMS = ["stdout", "stderr"] as const;
export type LogStream = (typeof LOG_STREAMS)[number];

export interface LogQuery {
  lines: number;
  stream: LogStream;
  grep: string;
}

/** Longest search text accepted. */
const MAX_GREP = 256;

/** Parses the command's arguments; INVALID_ARGUMENT naming the bad one. */
export function parseLogQuery(args: string, defaultLines: number): LogQuery {
  const text = args.trim();
  const bad = (what: string) => new InvalidArgumentError(`agent.tail_log: ${what}`, { kind: "log query" });
  if (!text.startsWith("{")) {
    const n = text === "" ? defaultLines : Number(text);
    if (!Number.isInteger(n) || n < 0) throw bad(`line count must be a non-negative integer, got ${JSON.stringify(args)}`);
    return { lines: Math.min(n, TAIL_DEFAULTS.maxLines), stream: "stdout", grep: "" };
  }
  let q: Record<string, unknown>;
  try {
    q = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw bad("arguments are neither a line count nor a JSON object");
  }
  const lines = q.lines ?? defaultLines;
  if (!Number.isInteger(lines) || (lines as number) < 0) throw bad(`line count must be a non-negative integer, got ${JSON.stringify(q.lines)}`);
  const stream = q.stream ?? "stdout";
  if (!(LOG_STREAMS as readonly unknown[]).includes(stream)) throw bad(`stream must be stdout or stderr, got ${JSON.stringify(q.stream)}`);
  const grep = q.grep ?? "";
  if (typeof grep !== "string" || grep.length > MAX_GREP) throw bad(`grep must be a text of at most ${MAX_GREP} characters`);
  return { lines: Math.min(lines as number, TAIL_DEFAULTS.maxLines), stream: stream as LogStream, grep };
}

/** Answers the query from the instance's log files; a stream without a file (stderr not separate) has no lines. */
export async function tailLogFiles(paths: { stdoutPath: string; stderrPath?: string }, query: LogQuery): Promise<string> {
  const file = query.stream === "stderr" ? paths.stderrPath : paths.stdoutPath;
  if (!file) return "";
  if (query.grep === "") return (await tail(file, query.lines)).join("\n");
  const needle = query.grep.toLowerCase();
  const all = await tail(file, TAIL_DEFAULTS.maxLines);
  const hits = all.filter((l) => l.toLowerCase().includes(needle));
  return hits.slice(Math.max(0, hits.length - query.lines)).join("\n");
}
