/**
 * Closed-loop load helpers shared by the benchmarks: N workers each issue
 * calls back to back for a fixed time; latencies in a sorted array.
 */
import { fork, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { readProcStat } from "../nodeagent/process/proc-stat";

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

// ---------------------------------------------------------------------------
// The project's benchmark method (README "Benchmarks", "How the figures are
// measured"): every stack's server and client in their own processes, pinned
// with taskset where the machine allows (server on cpu 1, client on cpu 0),
// stacks' order rotated every round, >= 3 rounds with min..max, CPU per call
// from process.cpuUsage() of both processes, the machine's steal time over
// the run from /proc/stat, results written as JSON.
//
// A suite is a child module (it calls serveBenchChild with its stacks) plus a
// list of stack names, one of them the baseline; runSuite drives it and
// formatSuite prints it.
// ---------------------------------------------------------------------------

/** One client of a stack, made in the client process. */
export interface BenchClient {
  call(): Promise<unknown>;
  close(): Promise<void>;
}

/** What a suite's child module provides: a server starter and a client factory per stack name. */
export interface BenchStacks {
  /** Starts the server side of `stack` in this process; resolves with its port. */
  startServer(stack: string): Promise<number>;
  /** Makes the client side of `stack`, connected to 127.0.0.1:`port`. */
  makeClient(stack: string, port: number): Promise<BenchClient>;
}

/** What a client child reports for one measured window. */
export interface WindowResult {
  calls: number;
  errors: number;
  firstError?: string;
  elapsedMs: number;
  p50Ms: number;
  p99Ms: number;
  cpu: NodeJS.CpuUsage;
}

type ChildCommand = { cmd: "cpu" } | { cmd: "start"; concurrency: number } | { cmd: "mark" } | { cmd: "collect" } | { cmd: "exit" };

/** N callers issuing calls back to back; latencies of the window since the last mark. */
class ChildLoop {
  private running = false;
  private workers: Promise<void>[] = [];
  private lat = new Float64Array(1 << 20);
  private n = 0;
  private errors = 0;
  private firstError: string | undefined;
  private markedAt = 0;

  constructor(private readonly client: BenchClient) {}

  start(concurrency: number): void {
    this.running = true;
    this.mark();
    for (let i = 0; i < concurrency; i++) this.workers.push(this.worker());
  }

  mark(): void {
    this.n = 0;
    this.errors = 0;
    this.firstError = undefined;
    this.markedAt = performance.now();
  }

  private async worker(): Promise<void> {
    const client = this.client;
    while (this.running) {
      const t0 = performance.now();
      try {
        await client.call();
      } catch (err) {
        this.errors++;
        this.firstError ??= (err as Error)?.message ?? String(err);
        continue;
      }
      const ms = performance.now() - t0;
      if (this.n === this.lat.length) {
        const bigger = new Float64Array(this.lat.length * 2);
        bigger.set(this.lat);
        this.lat = bigger;
      }
      this.lat[this.n++] = ms;
    }
  }

  async collect(): Promise<Omit<WindowResult, "cpu">> {
    const elapsedMs = performance.now() - this.markedAt;
    const { n, errors, firstError } = this;
    const sorted = this.lat.slice(0, n).sort();
    this.running = false;
    await Promise.all(this.workers);
    this.workers = [];
    const q = (p: number) => (n === 0 ? 0 : sorted[Math.min(n - 1, Math.floor(n * p))]!);
    return { calls: n, errors, firstError, elapsedMs, p50Ms: q(0.5), p99Ms: q(0.99) };
  }
}

/**
 * The body of a suite's child module: `node child.js server <stack>` answers
 * {ev:"ready", port}; `node child.js client <stack> <port>` answers
 * {ev:"ready"} after one call. Then the parent drives it over IPC: cpu,
 * start (closed loop of `concurrency` callers), mark (window starts), collect
 * (stops the callers, reports the window), exit.
 */
export function serveBenchChild(stacks: BenchStacks): void {
  const [role, stack, portText] = process.argv.slice(2) as [string, string, string | undefined];
  const send = (msg: unknown) => process.send!(msg);
  let loop: ChildLoop | undefined;
  let client: BenchClient | undefined;
  const ready = (async () => {
    if (role === "server") {
      send({ ev: "ready", port: await stacks.startServer(stack) });
    } else {
      client = await stacks.makeClient(stack, Number(portText));
      await client.call(); // connect before the clock starts
      loop = new ChildLoop(client);
      send({ ev: "ready" });
    }
  })();
  process.on("message", (m: ChildCommand) => {
    void (async () => {
      switch (m.cmd) {
        case "cpu":
          send({ ev: "cpu", cpu: process.cpuUsage() });
          break;
        case "start":
          loop!.start(m.concurrency);
          send({ ev: "started" });
          break;
        case "mark":
          loop!.mark();
          send({ ev: "marked", cpu: process.cpuUsage() });
          break;
        case "collect": {
          const cpu = process.cpuUsage();
          send({ ev: "result", ...(await loop!.collect()), cpu });
          break;
        }
        case "exit":
          await client?.close().catch(() => undefined);
          process.exit(0);
      }
    })();
  });
  process.on("disconnect", () => process.exit(0));
  ready.catch((err) => {
    process.stderr.write(`bench child (${role} ${stack}) failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}

/** CPU placement of the bench children: taskset when it exists and the machine has 2+ cores. */
export interface Pinning {
  pinned: boolean;
  serverCpu?: number;
  clientCpu?: number;
  /** Why not pinned (printed as a warning). */
  reason?: string;
}

export function detectPinning(): Pinning {
  const cpus = os.availableParallelism();
  if (cpus < 2) return { pinned: false, reason: `only ${cpus} CPU: server and client share it` };
  const probe = spawnSync("taskset", ["-c", "0", process.execPath, "-e", "0"], { stdio: "ignore" });
  if (probe.error || probe.status !== 0) return { pinned: false, reason: `taskset not usable (${probe.error?.message ?? `exit ${probe.status}`}): children not pinned` };
  return { pinned: true, serverCpu: 1, clientCpu: 0 };
}

/** CPU time (utime + stime) of a process so far, ms (USER_HZ 100 on Linux); 0 when it is gone. */
export function processCpuMs(pid: number): number {
  return (readProcStat(pid)?.cpuTicks ?? 0) * 10;
}
/** The machine-wide CPU counters from /proc/stat (jiffies); undefined where there is none. */
export function readCpuTimes(): { total: number; steal: number } | undefined {
  try {
    const line = fs.readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!;
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest, guest_nice are inside user/nice)
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    return { total, steal: f[7] ?? 0 };
  } catch {
    return undefined;
  }
}

/** Steal time between two readCpuTimes(), percent of all CPU time. */
export function stealPercent(a: ReturnType<typeof readCpuTimes>, b: ReturnType<typeof readCpuTimes>): number | undefined {
  if (!a || !b || b.total <= a.total) return undefined;
  return ((b.steal - a.steal) / (b.total - a.total)) * 100;
}

/**
 * A bench child process driven over IPC (`{cmd}` -> `{ev}`): serveBenchChild's protocol, or any module that
 * answers `cpu` with `{ev: "cpu", cpu: process.cpuUsage()}` and exits on `exit` or when the parent goes away.
 */
export class BenchChild {
  private readonly waiting = new Map<string, (m: any) => void>();
  readonly proc: ChildProcess;
  private readonly exited: Promise<void>;

  /** `cpu`: the CPU to pin it to (taskset), none when undefined; `profName`: its CPU profile's name under BENCH_CPU_PROF. */
  constructor(module: string, args: string[], cpu: number | undefined, profName = args.slice(0, 2).reverse().join("-")) {
    // BENCH_CPU_PROF=<dir>: each child writes a V8 CPU profile there on exit (`node --cpu-prof`), named by stack and side.
    const profDir = process.env.BENCH_CPU_PROF;
    const prof = profDir ? ["--cpu-prof", `--cpu-prof-dir=${profDir}`, `--cpu-prof-name=${profName}.cpuprofile`] : [];
    const pin = cpu === undefined ? { execArgv: prof } : { execPath: "taskset", execArgv: ["-c", String(cpu), process.execPath, ...prof] };
    this.proc = fork(module, args, {
      ...pin,
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      // Warnings are not turned off: the one @tars/rpc gives on load is dropped where it is loaded (transport/stacks.ts).
      env: { ...process.env, SGRID_LOG_LEVEL: process.env.SGRID_LOG_LEVEL ?? "warn" },
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

  /** The child's process.cpuUsage(). */
  async cpu(): Promise<NodeJS.CpuUsage> {
    return (await this.request<{ cpu: NodeJS.CpuUsage }>("cpu", { cmd: "cpu" })).cpu;
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    if (this.proc.connected) this.proc.send({ cmd: "exit" });
    // A child writing a CPU profile on exit needs longer than one that does not.
    const t = setTimeout(() => this.proc.kill("SIGKILL"), process.env.BENCH_CPU_PROF ? 15_000 : 3000);
    await this.exited;
    clearTimeout(t);
  }
}

/** A figure over the rounds. */
export interface Spread {
  median: number;
  min: number;
  max: number;
}

export function spread(xs: readonly number[]): Spread {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s.length ? s[Math.floor((s.length - 1) / 2)]! : 0, min: s[0] ?? 0, max: s[s.length - 1] ?? 0 };
}

/** One measured window of one stack at one concurrency. */
export interface RoundFigures {
  round: number;
  callsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Client + server CPU µs per call; the two parts beside. */
  cpuUsPerCall: number;
  clientCpuUsPerCall: number;
  /** Every server-side process of the stack together. */
  serverCpuUsPerCall: number;
  /** CPU µs per call of each process of the stack, by role (`client`, `server`, or a stack's own: `gateway`, `servant`). */
  cpuByProcess: Record<string, number>;
  errors: number;
  firstError?: string;
  /** Machine steal time during the window, %. */
  stealPct?: number;
}

export interface SuiteRow {
  stack: string;
  label: string;
  concurrency: number;
  rounds: RoundFigures[];
  callsPerSec: Spread;
  p50Ms: Spread;
  p99Ms: Spread;
  cpuUsPerCall: Spread;
  /** CPU µs per call of each process, by role, over rounds. */
  cpuByProcess: Record<string, Spread>;
  errors: number;
  firstError?: string;
  /** Against the baseline in the same round (ratio per round, then over rounds); absent on the baseline's own row. */
  vsBaseline?: { callsPerSec: Spread; p99Ms: Spread; cpuUsPerCall: Spread };
  /** calls/s against each of SuiteOptions.references, per round then over rounds. */
  vsReference?: Record<string, Spread>;
}

export interface SuiteResult {
  suite: string;
  startedAt: string;
  node: string;
  cpus: number;
  pinning: Pinning;
  durationMs: number;
  warmupMs: number;
  roundCount: number;
  baseline: string;
  references: string[];
  /** Machine steal time over the whole run, %. */
  stealPct?: number;
  /** os.loadavg() (1, 5, 15 min) when the run started and when it ended. */
  loadAvg: { start: number[]; end: number[] };
  /** SuiteOptions.placement. */
  placement?: string;
  rows: SuiteRow[];
  /** Where the JSON went. */
  jsonPath?: string;
}

export interface SuiteOptions {
  /** Name in the JSON file's name and body. */
  suite: string;
  /** The compiled child module that calls serveBenchChild. */
  childModule: string;
  /** Stacks in their first round's order, with a label each. */
  stacks: ReadonlyArray<{ name: string; label: string }>;
  /** The stack the others are divided by. */
  baseline: string;
  /** Further stacks each row's calls/s is also divided by (a column "x <name>" each), e.g. a ceiling. */
  references?: readonly string[];
  concurrencies: readonly number[];
  /** >= 3 for figures worth quoting. */
  rounds: number;
  durationMs: number;
  warmupMs: number;
  /** JSON file; default bench-results/<suite>-<timestamp>.json under the working directory; "" writes none. */
  json?: string;
  /** Progress lines (stderr by default). */
  log?: (line: string) => void;
  /**
   * Starts the server side of a stack when it is more than one serveBenchChild server (e.g. a gateway process in
   * front of a servant process): its port for the client, every process whose CPU counts for the stack (by role),
   * and how to stop what it started (processes shared between stacks are the suite's to stop). Default: one
   * `server` child of childModule pinned to pinning.serverCpu.
   */
  startServerSide?: (stack: string, pinning: Pinning) => Promise<ServerSide>;
  /** Where the processes run, said in the table's note instead of "server on cpu 1, client on cpu 0" (when pinned). */
  placement?: string;
}

/** A stack's server side: see SuiteOptions.startServerSide. */
export interface ServerSide {
  port: number;
  processes: ReadonlyArray<{ role: string; cpu(): Promise<NodeJS.CpuUsage> }>;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const cpuUs = (c: NodeJS.CpuUsage) => c.user + c.system;

async function measureWindow(server: ServerSide, client: BenchChild, concurrency: number, warmupMs: number, durationMs: number, round: number): Promise<RoundFigures> {
  await client.request("started", { cmd: "start", concurrency });
  await sleep(warmupMs);
  const cpus = () => Promise.all(server.processes.map((p) => p.cpu()));
  const [s0, c0] = await Promise.all([cpus(), client.request("marked", { cmd: "mark" })]);
  const m0 = readCpuTimes();
  await sleep(durationMs);
  const [s1, r] = await Promise.all([cpus(), client.request<WindowResult>("result", { cmd: "collect" })]);
  const m1 = readCpuTimes();
  const calls = r.calls || 1;
  const clientUs = cpuUs(r.cpu) - cpuUs(c0.cpu);
  const cpuByProcess: Record<string, number> = { client: clientUs / calls };
  let serverUs = 0;
  server.processes.forEach((p, i) => {
    const us = cpuUs(s1[i]!) - cpuUs(s0[i]!);
    serverUs += us;
    cpuByProcess[p.role] = (cpuByProcess[p.role] ?? 0) + us / calls;
  });
  return {
    round,
    callsPerSec: (r.calls / r.elapsedMs) * 1000,
    p50Ms: r.p50Ms,
    p99Ms: r.p99Ms,
    cpuUsPerCall: (serverUs + clientUs) / calls,
    clientCpuUsPerCall: clientUs / calls,
    serverCpuUsPerCall: serverUs / calls,
    cpuByProcess,
    errors: r.errors,
    firstError: r.firstError,
    stealPct: stealPercent(m0, m1),
  };
}

/** The default server side: one serveBenchChild server of `module`. */
async function childServerSide(module: string, stack: string, pinning: Pinning): Promise<ServerSide> {
  const server = new BenchChild(module, ["server", stack], pinning.serverCpu);
  const { port } = await server.request<{ port: number }>("ready").catch(async (err: unknown) => { await server.stop(); throw err; });
  return { port, processes: [{ role: "server", cpu: () => server.cpu() }], stop: () => server.stop() };
}

/** Runs the suite by the method above; writes the JSON unless opts.json is "". */
export async function runSuite(opts: SuiteOptions): Promise<SuiteResult> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const pinning = detectPinning();
  if (!pinning.pinned) log(`WARNING: ${pinning.reason}; figures are noisier`);
  const startedAt = new Date().toISOString();
  const children = new Map<string, { server: ServerSide; client?: BenchChild }>();
  const loadStart = os.loadavg();
  const perRow = new Map<string, RoundFigures[]>();
  const key = (stack: string, c: number) => `${stack}@${c}`;
  const t0 = readCpuTimes();
  try {
    for (const { name } of opts.stacks) {
      const server = await (opts.startServerSide ?? ((stack, pin) => childServerSide(opts.childModule, stack, pin)))(name, pinning);
      children.set(name, { server }); // so a failure below still stops the server
      const client = new BenchChild(opts.childModule, ["client", name, String(server.port)], pinning.clientCpu);
      children.set(name, { server, client });
      await client.request("ready");
    }
    const n = opts.stacks.length;
    for (let round = 0; round < opts.rounds; round++) {
      const order = opts.stacks.map((_, i) => opts.stacks[(i + round) % n]!.name);
      for (const c of opts.concurrencies) {
        for (const name of order) {
          const { server, client } = children.get(name)!;
          const fig = await measureWindow(server, client!, c, opts.warmupMs, opts.durationMs, round + 1);
          const k = key(name, c);
          perRow.set(k, [...(perRow.get(k) ?? []), fig]);
          log(`  round ${round + 1}/${opts.rounds} ${name} c=${c}: ${Math.round(fig.callsPerSec)} calls/s, p99 ${fig.p99Ms.toFixed(3)} ms, ${fig.cpuUsPerCall.toFixed(1)} µs CPU/call`);
        }
      }
    }
  } finally {
    for (const { server, client } of children.values()) {
      await client?.stop();
      await server.stop();
    }
  }
  const rows: SuiteRow[] = [];
  for (const c of opts.concurrencies) {
    const base = perRow.get(key(opts.baseline, c));
    for (const { name, label } of opts.stacks) {
      const rs = perRow.get(key(name, c)) ?? [];
      const row: SuiteRow = {
        stack: name,
        label,
        concurrency: c,
        rounds: rs,
        callsPerSec: spread(rs.map((r) => r.callsPerSec)),
        p50Ms: spread(rs.map((r) => r.p50Ms)),
        p99Ms: spread(rs.map((r) => r.p99Ms)),
        cpuUsPerCall: spread(rs.map((r) => r.cpuUsPerCall)),
        cpuByProcess: Object.fromEntries([...new Set(rs.flatMap((r) => Object.keys(r.cpuByProcess)))].map((role) => [role, spread(rs.map((r) => r.cpuByProcess[role] ?? 0))])),
        errors: rs.reduce((e, r) => e + r.errors, 0),
        firstError: rs.find((r) => r.firstError)?.firstError,
      };
      const ratio = (of: RoundFigures[], f: (r: RoundFigures) => number) => spread(rs.map((r, i) => f(r) / (f(of[i]!) || Number.NaN)));
      if (base && name !== opts.baseline) {
        row.vsBaseline = { callsPerSec: ratio(base, (r) => r.callsPerSec), p99Ms: ratio(base, (r) => r.p99Ms), cpuUsPerCall: ratio(base, (r) => r.cpuUsPerCall) };
      }
      for (const ref of opts.references ?? []) {
        const of = perRow.get(key(ref, c));
        if (of && ref !== name) (row.vsReference ??= {})[ref] = ratio(of, (r) => r.callsPerSec);
      }
      rows.push(row);
    }
  }
  const result: SuiteResult = {
    suite: opts.suite,
    startedAt,
    node: process.version,
    cpus: os.availableParallelism(),
    pinning,
    durationMs: opts.durationMs,
    warmupMs: opts.warmupMs,
    roundCount: opts.rounds,
    baseline: opts.baseline,
    references: [...(opts.references ?? [])],
    stealPct: stealPercent(t0, readCpuTimes()),
    loadAvg: { start: loadStart, end: os.loadavg() },
    placement: opts.placement,
    rows,
  };
  if (opts.json !== "") {
    const file = opts.json ?? path.join("bench-results", `${opts.suite}-${startedAt.replace(/[:.]/g, "-")}.json`);
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    result.jsonPath = file;
  }
  return result;
}

const ratioText = (s: Spread) => `${s.median.toFixed(2)}x (${s.min.toFixed(2)}..${s.max.toFixed(2)})`;

/** The suite as a fixed-width table: each stack beside its baseline, ratios with min..max over rounds. */
export function formatSuite(r: SuiteResult): string {
  const baseLabel = r.rows.find((x) => x.stack === r.baseline)?.label ?? r.baseline;
  // A column of CPU per call by process when some stack has more than a client and a server.
  const byProcess = r.rows.some((x) => Object.keys(x.cpuByProcess).some((role) => role !== "client" && role !== "server"));
  const head = ["stack", "conc", "calls/s (min..max)", "p50 ms", "p99 ms (min..max)", "CPU µs/call", ...(byProcess ? ["CPU µs/call by process"] : []), "calls/s x base", "p99 x base", "CPU x base", ...r.references.map((ref) => `x ${ref}`), "errors"];
  const body = r.rows.map((x) => [
    x.label,
    String(x.concurrency),
    `${fmt(x.callsPerSec.median)} (${fmt(x.callsPerSec.min)}..${fmt(x.callsPerSec.max)})`,
    x.p50Ms.median.toFixed(3),
    `${x.p99Ms.median.toFixed(3)} (${x.p99Ms.min.toFixed(1)}..${x.p99Ms.max.toFixed(1)})`,
    x.cpuUsPerCall.median.toFixed(1),
    ...(byProcess ? [Object.entries(x.cpuByProcess).map(([role, v]) => `${role} ${v.median.toFixed(0)}`).join(" + ")] : []),
    x.vsBaseline ? ratioText(x.vsBaseline.callsPerSec) : "baseline",
    x.vsBaseline ? ratioText(x.vsBaseline.p99Ms) : "-",
    x.vsBaseline ? ratioText(x.vsBaseline.cpuUsPerCall) : "-",
    ...r.references.map((ref) => (x.vsReference?.[ref] ? ratioText(x.vsReference[ref]) : "-")),
    x.errors === 0 ? "0" : `${x.errors} (${x.firstError ?? ""})`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  const pin = r.pinning.pinned && r.placement ? r.placement : r.pinning.pinned ? `server on cpu ${r.pinning.serverCpu}, client on cpu ${r.pinning.clientCpu} (taskset)` : `not pinned: ${r.pinning.reason}`;
  const steal = r.stealPct === undefined ? "steal n/a" : `steal ${r.stealPct.toFixed(1)} % over the run`;
  const load = `load average ${r.loadAvg.start.map((l) => l.toFixed(2)).join(" ")} at the start, ${r.loadAvg.end.map((l) => l.toFixed(2)).join(" ")} at the end`;
  return [
    line(head),
    widths.map((w) => "-".repeat(w)).join("  "),
    ...body.map(line),
    `(baseline: ${baseLabel}; medians of ${r.roundCount} rounds of ${r.durationMs} ms after ${r.warmupMs} ms warm-up, stacks' order rotated each round; ratios per round against the baseline's same round, median (min..max); ${pin}; ${steal}; ${load}${r.jsonPath ? `; JSON: ${r.jsonPath}` : ""})`,
  ].join("\n");
}
