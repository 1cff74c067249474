/**
 * `sgrid gateway` as its own process for tests: resolves once it printed the
 * ports it serves (gRPC, and HTTP when `--http` is given).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { CLI } from "../helpers/paths";

export interface GatewayProcess {
  child: ChildProcess;
  /** The gRPC port. */
  port: number;
  /** The HTTP port (0 without `--http`). */
  httpPort: number;
  stderr: () => string;
}

export function startGatewayProcess(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<GatewayProcess> {
  const wantsHttp = args.includes("--http");
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, "gateway", ...args], { env: { ...process.env, SGRID_LOG_LEVEL: "warn", ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stderr!.setEncoding("utf8").on("data", (d: string) => { err += d; });
    child.stdout!.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      const grpc = /serving gRPC on [^\s]+:(\d+)/.exec(out);
      const http = /serving HTTP on [^\s]+:(\d+)/.exec(out);
      if (grpc && (http || !wantsHttp)) resolve({ child, port: Number(grpc[1]), httpPort: http ? Number(http[1]) : 0, stderr: () => err });
    });
    child.on("error", reject);
    child.on("exit", (code) => reject(new Error(`sgrid gateway exited with ${code}: ${err}`)));
  });
}
