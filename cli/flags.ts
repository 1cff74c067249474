/** Option parsers shared by the CLI's commands (commander argParsers: they throw ConfigError). */
import { ConfigError } from "sgridnext";

export function list(value: string, previous: string[]): string[] {
  return [...previous, ...value.split(",").map((s) => s.trim()).filter(Boolean)];
}

export function int(name: string): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n)) throw new ConfigError(`${name} must be a whole number >= 0, got ${JSON.stringify(v)}`);
    return n;
  };
}

/** A number option (a decimal is allowed). */
export function decimal(name: string): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!/^\d+(\.\d+)?$/.test(v.trim()) || !Number.isFinite(n)) throw new ConfigError(`${name} must be a number >= 0, got ${JSON.stringify(v)}`);
    return n;
  };
}
