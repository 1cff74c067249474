/**
 * Transport benchmark: unary ~100-byte echo, client and server in separate
 * processes, closed loop at each concurrency, for every stack in stacks.ts.
 * Reports calls/s, p50/p99 latency, CPU per call (client + server
 * process.cpuUsage over the measured window) and ratios against @tars/rpc.
 *
 *   node dist/bench/transport/run.js [--duration 3000] [--warmup 1000]
 *        [--concurrency 1,64] [--rounds 3] [--stacks sgrid-proxy,tars,...]
 *
 * With several rounds, each figure is the median over the rounds.
 */
import { fork, type ChildProcess } from "node:child_process";
import * as path from "node:path";
import type { WindowResult } from "./child";
import { STACK_LABELS, STACKS, type StackName } from "./stacks";

export interface TransportBenchOptions {
  /** Measured window per round, ms. */
  durationMs: number;
  /** Closed-loop concurrencies to measure. */
  concurrencies: number[];
  /** Warm-up before each window, ms. Default 1000. */
  warmupMs?: number;
  /** Rounds per (stack, concurrency); figures are medians. Default 1. */
  rounds?: number;
  /** Stacks to run. Default all. */
  stacks?: readonly StackName[];
  /** Called after each row is measured (progress). */
  onRow?: (row: TransportBenchRow) => void;
}

export interface TransportBenchRow {
  stack: StackName;
  label: string;
  concurrency: number;
  callsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Client + server CPU time per call, microseconds. */
  cpuUsPerCall: number;
  errors: number;
  firstError?: string;
  /** callsPerSec / the @tars/rpc row's, at the same concurrency (when tars ran). */
  vsTars?: number;
  /** p99Ms / the @tars/rpc row's. */
  p99VsTars?: number;
  /** callsPerSec / the bare framed-TCP echo row's, at the same concurrency (when bare ran). */
  vsBare?: number;
}

const CHILD = path.join(__dirname, "child.js");

class Child {
  private readonly waiting = new Map<string, (m: any) => void>();
  readonly proc: ChildProcess;
  private exited: Promise<void>;

  constructor(args: string[]) {
    this.proc = fork(CHILD, args, {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      // @tars/rpc warns about its own circular requires on load; keep the table readable.
      env: { ...process.env, SGRID_LOG_LEVEL: process.env.SGRID_LOG_LEVEL ?? "warn", NODE_NO_WARNINGS: process.env.NODE_NO_WARNINGS ?? "1" },
    });
    this.proc.on("message", (m: any) => {
      const w = this.waiting.get(m.ev);
      if (w) {
        this.waiting.delete(m.ev);
        w(m);
      }
    });
    this.exited = new Promise((resolve) => this.proc.once("exit", () => resolve()));
  }

  /** Waits for event `ev`, after sending `cmd` if given. Rejects if the child dies first. */
  request<T = any>(ev: string, cmd?: object, timeoutMs = 60_000): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`bench child ${this.proc.pid}: no "${ev}" within ${timeoutMs} ms`)), timeoutMs);
      void this.exited.then(() => { clearTimeout(timer); reject(new Error(`bench child ${this.proc.pid} exited while waiting for "${ev}"`)); });
      this.waiting.set(ev, (m) => { clearTimeout(timer); resolve(m as T); });
      if (cmd) this.proc.send(cmd);
    });
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    if (this.proc.connected) this.proc.send({ cmd: "exit" });
    const t = setTimeout(() => this.proc.kill("SIGKILL"), 3000);
    await this.exited;
    clearTimeout(t);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const cpuUs = (c: NodeJS.CpuUsage) => c.user + c.system;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
}

async function measure(server: Child, client: Child, concurrency: number, warmupMs: number, durationMs: number) {
  await client.request("started", { cmd: "start", concurrency });
  await sleep(warmupMs);
  const [s0, c0] = await Promise.all([server.request("cpu", { cmd: "cpu" }), client.request("marked", { cmd: "mark" })]);
  await sleep(durationMs);
  const [s1, r] = await Promise.all([server.request("cpu", { cmd: "cpu" }), client.request<WindowResult & { ev: string }>("result", { cmd: "collect" })]);
  const cpu = cpuUs(s1.cpu) - cpuUs(s0.cpu) + cpuUs(r.cpu) - cpuUs(c0.cpu);
  return {
    callsPerSec: (r.calls / r.elapsedMs) * 1000,
    p50Ms: r.p50Ms,
    p99Ms: r.p99Ms,
    cpuUsPerCall: r.calls > 0 ? cpu / r.calls : 0,
    errors: r.errors,
    firstError: r.firstError,
  };
}

/** Runs every stack at every concurrency; one server and one client process per stack. */
export async function runTransportBench(opts: TransportBenchOptions): Promise<TransportBenchRow[]> {
  const rows: TransportBenchRow[] = [];
  const rounds = opts.rounds ?? 1;
  const warmupMs = opts.warmupMs ?? 1000;
  for (const stack of opts.stacks ?? STACKS) {
    const server = new Child(["server", stack]);
    let client: Child | undefined;
    try {
      const { port } = await server.request<{ port: number }>("ready");
      client = new Child(["client", stack, String(port)]);
      await client.request("ready");
      for (const concurrency of opts.concurrencies) {
        const runs = [];
        for (let i = 0; i < rounds; i++) runs.push(await measure(server, client, concurrency, warmupMs, opts.durationMs));
        const row: TransportBenchRow = {
          stack,
          label: STACK_LABELS[stack],
          concurrency,
          callsPerSec: median(runs.map((r) => r.callsPerSec)),
          p50Ms: median(runs.map((r) => r.p50Ms)),
          p99Ms: median(runs.map((r) => r.p99Ms)),
          cpuUsPerCall: median(runs.map((r) => r.cpuUsPerCall)),
          errors: runs.reduce((n, r) => n + r.errors, 0),
          firstError: runs.find((r) => r.firstError)?.firstError,
        };
        rows.push(row);
        opts.onRow?.(row);
      }
    } finally {
      await client?.stop();
      await server.stop();
    }
  }
  for (const row of rows) {
    const tars = rows.find((r) => r.stack === "tars" && r.concurrency === row.concurrency);
    if (tars && tars.callsPerSec > 0) {
      row.vsTars = row.callsPerSec / tars.callsPerSec;
      row.p99VsTars = tars.p99Ms > 0 ? row.p99Ms / tars.p99Ms : undefined;
    }
    const bare = rows.find((r) => r.stack === "bare" && r.concurrency === row.concurrency);
    if (bare && bare.callsPerSec > 0) row.vsBare = row.callsPerSec / bare.callsPerSec;
  }
  return rows;
}

/** The rows as a fixed-width text table. */
export function formatTable(rows: readonly TransportBenchRow[]): string {
  const head = ["stack", "conc", "calls/s", "p50 ms", "p99 ms", "CPU µs/call", "x tars", "p99 / tars", "x bare", "errors"];
  const body = rows.map((r) => [
    r.label,
    String(r.concurrency),
    Math.round(r.callsPerSec).toLocaleString("en-US"),
    r.p50Ms.toFixed(3),
    r.p99Ms.toFixed(3),
    r.cpuUsPerCall.toFixed(1),
    r.vsTars === undefined ? "-" : `${r.vsTars.toFixed(2)}x`,
    r.p99VsTars === undefined ? "-" : `${r.p99VsTars.toFixed(2)}x`,
    r.vsBare === undefined ? "-" : `${r.vsBare.toFixed(2)}x`,
    r.errors === 0 ? "0" : `${r.errors} (${r.firstError ?? ""})`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (require.main === module) {
  const stacks = argValue("stacks")?.split(",").map((s) => s.trim()) as StackName[] | undefined;
  for (const s of stacks ?? []) {
    if (!(STACKS as readonly string[]).includes(s)) {
      console.error(`unknown stack "${s}" (known: ${STACKS.join(", ")})`);
      process.exit(2);
    }
  }
  const opts: TransportBenchOptions = {
    durationMs: Number(argValue("duration") ?? 3000),
    warmupMs: Number(argValue("warmup") ?? 1000),
    concurrencies: (argValue("concurrency") ?? "1,64").split(",").map(Number),
    rounds: Number(argValue("rounds") ?? 3),
    stacks,
    onRow: (r) => console.error(`  measured ${r.stack} c=${r.concurrency}: ${Math.round(r.callsPerSec)} calls/s`),
  };
  console.error(`transport bench: ${opts.durationMs} ms windows, ${opts.rounds} round(s), concurrency ${opts.concurrencies.join(",")}`);
  runTransportBench(opts).then((rows) => {
    console.log(formatTable(rows));
  }, (err) => {
    console.error(err);
    process.exit(1);
  });
}
