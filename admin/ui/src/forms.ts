/** Parsing of form fields shared by the deploy and instance edit forms. */
import { ApiError } from "./api.js";

/** KEY=VALUE lines -> object; a line without "=" is reported by name. */
export function parseEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) throw new ApiError(400, "INVALID_ARGUMENT", `env line "${line}" is not NAME=value`, "env");
    env[line.slice(0, eq).trim()] = line.slice(eq + 1);
  }
  return env;
}

/** One argument per line (no shell: spaces stay inside the argument); blank lines are skipped. */
export function lines(text: string): string[] {
  return text.split("\n").map((l) => l.replace(/\r$/, "")).filter((l) => l.trim() !== "");
}

export function num(v: string): number {
  return v.trim() === "" ? 0 : Number(v);
}

