/**
 * Closed-loop load helpers shared by the benchmarks: N workers each issue
 * calls back to back for a fixed time; latencies in a sorted array.
 */
import { fork, type ChildProcess } from "node:child_process";
import * as path from "node:path";

export interface LoadResult {
  calls: number;
  errors: number;
  seconds: number;
  callsPerSec: number;
  p50Ms: number;
  p99Ms: number;
}

export async function closedLoop(concurrency: number, durationMs: number, call: () => Promise<unknown>): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  const end = performance.now() + durationMs;
  const start = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < end) {
      const t = performance.now();
      try { await call(); latencies.push(performance.now() - t); } catch { errors++; }
    }
  }));
  const seconds = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))]! : 0;
  return { calls: latencies.length, errors, seconds, callsPerSec: latencies.length / seconds, p50Ms: q(0.5), p99Ms: q(0.99) };
}

export interface BenchServer {
  child: ChildProcess;
  adapters: Array<{ protocol: string; port: number }>;
  cpu(): Promise<NodeJS.CpuUsage>;
  stop(): void;
}

/** Forks the echo server with the given adapters and waits for READY. */
export function startBenchServer(adapters: string[]): Promise<BenchServer> {
  const child = fork(path.join(__dirname, "echo-server.js"), [], {
    env: { ...process.env, SGRID_LOG_LEVEL: "warn", SGRID_ADAPTERS: JSON.stringify({ "Bench.EchoServer.EchoObj": adapters }) },
    stdio: ["ignore", "pipe", "inherit", "ipc"],
  });
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout!.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      const m = /READY (.*)\n/.exec(out);
      if (m) {
        resolve({
          child,
          adapters: JSON.parse(m[1]!),
          cpu: () => new Promise((res) => { child.once("message", (msg: any) => res(msg.cpu)); child.send("cpu"); }),
          stop: () => child.kill("SIGKILL"),
        });
      }
    });
    child.on("exit", (code) => reject(new Error(`bench server exited with ${code}`)));
  });
}

/**
 * Measures a baseline and a subject at one concurrency, alternating them for
 * `rounds` rounds and keeping each one's best round, to damp noise on a
 * shared machine. Returns [baseline, subject].
 */
export async function bestOfAlternating(concurrency: number, durationMs: number, baseline: () => Promise<unknown>, subject: () => Promise<unknown>, rounds = 2): Promise<[LoadResult, LoadResult]> {
  const a: LoadResult[] = [];
  const b: LoadResult[] = [];
  for (let round = 0; round < rounds; round++) {
    a.push(await closedLoop(concurrency, durationMs, baseline));
    b.push(await closedLoop(concurrency, durationMs, subject));
  }
  const best = (rs: LoadResult[]) => rs.reduce((x, y) => (y.callsPerSec > x.callsPerSec ? y : x));
  return [best(a), best(b)];
}

export function fmt(n: number, digits = 0): string {
  return n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padStart(widths[i]!)).join(" | ")} |`;
  return [line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)].join("\n");
}
