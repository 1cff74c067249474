/**
 * A `sgrid registry` child process for the registry benchmarks, on a fresh
 * SQLite database (seeded by the caller before or while it runs).
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { outputDir } from "../../test/helpers/paths";

export interface BenchRegistry {
  child: ChildProcess;
  address: string;
  dataDir: string;
  /** The database URL (`sqlite:<dataDir>/registry.db` by default). */
  db: string;
  stop(): Promise<void>;
}

export function benchDataDir(): string {
  return outputDir("bench-registry", { shared: true });
}

/** `db` defaults to SQLite in `dataDir`. */
export function startBenchRegistry(dataDir: string, extraArgs: string[] = [], db = `sqlite:${path.join(dataDir, "registry.db")}`): Promise<BenchRegistry> {
  const cli = path.resolve(__dirname, "../../cli/main.js");
  const child = spawn(process.execPath, [cli, "registry", "--db", db, "--data-dir", dataDir, "--listen", "127.0.0.1:0", "--heartbeat-timeout", "1h", ...extraArgs], {
    // A cluster token, so the registry does not warn about running without one.
    env: { ...process.env, SGRID_LOG_LEVEL: "warn", SGRID_ADMIN_PASSWORD: "bench-admin-pw", SGRID_CLUSTER_TOKEN: "bench-cluster-token" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout!.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      const m = /serving on (\S+)/.exec(out);
      if (m) {
        resolve({
          child, address: m[1]!, dataDir, db,
          async stop() {
            child.kill("SIGTERM");
            await exited;
            fs.rmSync(dataDir, { recursive: true, force: true });
          },
        });
      }
    });
    child.once("exit", (code) => reject(new Error(`bench registry exited with ${code} before serving`)));
  });
}
