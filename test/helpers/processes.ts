import { spawn, type ChildProcess } from "node:child_process";
import * as path from "node:path";
import { reservePort } from "./ports";

export interface Spawned {
  child: ChildProcess;
  /** Adapters reported by the READY line. */
  adapters: Array<{ obj: string; port: number; protocol: string }>;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts dist/test/helpers/echo-server-main.js with the given env and waits for READY. */
export function startEchoServer(env: Record<string, string>, timeoutMs = 15000): Promise<Spawned> {
  const main = path.join(__dirname, "echo-server-main.js");
  const child = spawn(process.execPath, [main], { env: { ...process.env, SGRID_LOG_LEVEL: "warn", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  child.stderr!.setEncoding("utf8").on("data", (d: string) => { err += d; });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => { child.kill("SIGKILL"); reject(new Error(`echo server not ready in ${timeoutMs} ms: ${err}`)); }, timeoutMs);
    child.stdout!.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      const m = /READY (.*)\n/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, adapters: JSON.parse(m[1]!), stderr: () => err, exited });
      }
    });
    child.on("exit", (code) => { clearTimeout(timer); reject(new Error(`echo server exited with ${code}: ${err}`)); });
  });
}

/** A TCP port that nothing listens on, reserved for this test process (helpers/ports.ts: no bind-and-release race). */
export const freePort = reservePort;
