/**
 * Node agent benchmark (`npm run bench -- agent`): the real `sgrid node`
 * as a child process against a registry stand-in, supervising sleep-loop
 * shell scripts in real cgroups (where the machine has them).
 *
 * Figures:
 * - restart latency: from the moment an instance's process is SIGKILLed to
 *   the moment its replacement was spawned (the agent's launch timestamp,
 *   reported upward), first restart of each of 10 instances; the restart
 *   policy's delay is set to 0 here, so the figure is the agent's own
 *   overhead (exit noticed + cgroup prepared + spawn). The default policy
 *   adds 1 s +-20 % on top (nodeagent/supervisor/restart-tracker.ts).
 * - agent RSS and V8 heap used, idle (no instances, sampled over
 *   BENCH_IDLE_MS, default 10 s) and supervising 50 instances (sampled over
 *   the soak, BENCH_SOAK_MS: 20 s by default, 10 minutes for
 *   `npm run bench agent-soak`): start, min, max, end and the slope of a
 *   least-squares line (MB per hour) to show whether it stays flat. RSS is
 *   read from /proc; heap used comes from the agent itself (a preload that
 *   answers SIGUSR2 by writing process.memoryUsage() to a file, nothing
 *   running in between).
 * - agent CPU while supervising 50 instances (utime+stime over the soak,
 *   at least 10 s, in % of one core), heartbeats every 5 s included.
 * - baselines from the same run, idle as above: a bare `node` (the floor
 *   of any Node process here), the agent with V8's optimizing compiler,
 *   which `sgrid node` leaves out (`node --max-opt=999 sgrid node`,
 *   cli/agent-v8.ts), and the agent run from its bundle
 *   (`SGRID_AGENT_BUNDLE=1`, cli/agent-bundle.ts).
 * - what leaving the optimizing compiler out costs where the agent works
 *   hardest: the CPU of unpacking a 2,000-file package (the agent's own
 *   unpack code, nodeagent/install/unpack.ts), the first and the third
 *   unpack in one process (bench/agent/unpack-child.ts), with and without
 *   it, in separate processes pinned to one CPU, the order alternated over
 *   3 rounds.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tar from "tar";
import type { InstanceDesired } from "sgridnext/gen/sgrid/registry/v1/node";
import { detectPinning, processCpuMs, spread } from "../harness";
import { StandInRegistry } from "./stand-in-registry";
import { outputDir } from "../../test/helpers/paths";

const CLI = path.resolve(__dirname, "../../cli/main.js");
const SLEEP_LOOP = "#!/bin/sh\ntrap 'exit 0' TERM\nwhile :; do sleep 2 & wait $!; done\n";

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function until<T>(what: string, fn: () => T | undefined, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`agent bench: timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** VmRSS and its anonymous and file-backed parts (RssAnon, RssFile: the node binary's pages, shared with every node process), bytes. */
function rssOf(pid: number): { rss: number; anon: number; file: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0) * 1024;
  return { rss: kb("VmRSS"), anon: kb("RssAnon"), file: kb("RssFile") };
}

/** A preload for the agent: on SIGUSR2, process.memoryUsage() into `file` (the bench's only hook into the agent). */
function memoryProbe(dir: string): { preload: string; file: string } {
  const file = path.join(dir, "memory.json");
  const preload = path.join(dir, "memory-probe.js");
  fs.writeFileSync(preload, `process.on("SIGUSR2", () => require("fs").writeFileSync(${JSON.stringify(file)}, JSON.stringify({ at: Date.now(), ...process.memoryUsage() })));\n`);
  return { preload, file };
}

interface MemorySample {
  /** ms since the phase began */
  t: number;
  rss: number;
  anon: number;
  file: number;
  heapUsed: number;
  heapTotal: number;
}

/** Asks the agent for its heap (SIGUSR2) and reads its RSS from /proc. */
async function sampleMemory(pid: number, probeFile: string, t0: number): Promise<MemorySample> {
  const asked = Date.now();
  process.kill(pid, "SIGUSR2");
  const mem = await until("the agent's memory figures", () => {
    try {
      const m = JSON.parse(fs.readFileSync(probeFile, "utf8")) as { at: number; heapUsed: number; heapTotal: number };
      return m.at >= asked ? m : undefined;
    } catch {
      return undefined; // not written yet, or half written
    }
  }, 10_000);
  return { t: Date.now() - t0, ...rssOf(pid), heapUsed: mem.heapUsed, heapTotal: mem.heapTotal };
}

/** Samples every `everyMs` for `forMs`. */
async function sampleFor(pid: number, probeFile: string, forMs: number, everyMs: number): Promise<MemorySample[]> {
  const t0 = Date.now();
  const out: MemorySample[] = [];
  for (;;) {
    out.push(await sampleMemory(pid, probeFile, t0));
    const next = t0 + out.length * everyMs;
    if (next > t0 + forMs) return out;
    await sleep(Math.max(0, next - Date.now()));
  }
}

/** Least-squares slope of y over t, per hour. */
function slopePerHour<S extends { t: number }>(samples: readonly S[], y: (s: S) => number): number {
  const n = samples.length;
  if (n < 2) return 0;
  const mt = samples.reduce((a, s) => a + s.t, 0) / n;
  const my = samples.reduce((a, s) => a + y(s), 0) / n;
  let num = 0;
  let den = 0;
  for (const s of samples) {
    num += (s.t - mt) * (y(s) - my);
    den += (s.t - mt) ** 2;
  }
  return den === 0 ? 0 : (num / den) * 3_600_000;
}

function memoryRows(label: string, samples: MemorySample[], detail = false): string[] {
  const mb = (b: number) => (b / 1024 / 1024).toFixed(1);
  const row = (what: string, pick: (s: MemorySample) => number) => {
    const ys = samples.map(pick);
    const slope = slopePerHour(samples, (s) => pick(s) / 1024 / 1024);
    return `| ${label}: ${what} start / min / max / end (MB), slope | ${mb(ys[0]!)} / ${mb(Math.min(...ys))} / ${mb(Math.max(...ys))} / ${mb(ys[ys.length - 1]!)}, ${slope >= 0 ? "+" : ""}${slope.toFixed(1)} MB/h |`;
  };
  const span = samples.length > 1 ? samples[samples.length - 1]!.t / 1000 : 0;
  const rows = [row(`RSS (${samples.length} samples over ${span.toFixed(0)} s)`, (s) => s.rss), row("V8 heap used", (s) => s.heapUsed)];
  if (!detail) return rows;
  // Where RSS goes and whether it settles: anonymous (heap, malloc) vs file-backed (the node binary's code, shared), V8's committed heap, and the slope of the second half alone.
  const late = samples.slice(Math.floor(samples.length / 2));
  const lateSlope = slopePerHour(late, (s) => s.rss / 1024 / 1024);
  return [...rows, row("RSS anonymous", (s) => s.anon), row("RSS file-backed", (s) => s.file), row("V8 heap committed", (s) => s.heapTotal),
    `| ${label}: RSS slope over the second half (${late.length} samples) | ${lateSlope >= 0 ? "+" : ""}${lateSlope.toFixed(1)} MB/h |`];
}

async function sleepLoopPackage(dir: string): Promise<Buffer> {
  const src = path.join(dir, "src");
  fs.mkdirSync(src, { recursive: true });
  fs.writeFileSync(path.join(src, "sgrid.json"), JSON.stringify({ app: "Bench", server: "Sleeper", type: "binary", entry: "run.sh" }));
  fs.writeFileSync(path.join(src, "run.sh"), SLEEP_LOOP, { mode: 0o755 });
  const file = path.join(dir, "sleeper.tgz");
  await tar.c({ gzip: true, cwd: src, file, portable: true }, ["sgrid.json", "run.sh"]);
  return fs.readFileSync(file);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** A package of 2,000 files in 40 folders, ~24 MB unpacked (incompressible text, as minified code is to gzip). */
async function manyFilePackage(dir: string): Promise<string> {
  const src = path.join(dir, "many-src");
  for (let d = 0; d < 40; d++) {
    fs.mkdirSync(path.join(src, `d${d}`), { recursive: true });
    for (let f = 0; f < 50; f++) fs.writeFileSync(path.join(src, `d${d}`, `f${f}.js`), crypto.randomBytes(9000).toString("base64"));
  }
  const file = path.join(dir, "many.tgz");
  await tar.c({ gzip: true, cwd: src, file, portable: true }, fs.readdirSync(src));
  fs.rmSync(src, { recursive: true, force: true });
  return file;
}

const UNPACK_CHILD = path.resolve(__dirname, "unpack-child.js");

/** CPU (µs) of each of `times` unpacks of `pkg` in one child process started with `flags`, pinned to one CPU where the machine allows. */
function unpackCpu(pkg: string, dir: string, flags: string[], times: number): Promise<number[]> {
  const pin = detectPinning();
  const argv = [...flags, UNPACK_CHILD, pkg, dir, String(times)];
  const [cmd, args] = pin.pinned ? ["taskset", ["-c", String(pin.serverCpu), process.execPath, ...argv]] : [process.execPath, argv];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args as string[], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout!.on("data", (d: Buffer) => { out += d.toString(); });
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? resolve(JSON.parse(out) as number[]) : reject(new Error(`agent bench: the unpack child exited with ${code}`))));
  });
}

/** The unpack comparison's rows: first and third unpack, the agent's tier vs the optimizing compiler's, 3 rounds alternating which runs first. */
async function unpackRows(tmp: string): Promise<string[]> {
  const pkg = await manyFilePackage(tmp);
  const tiers = [{ name: "agent", flags: ["--max-opt=1"] }, { name: "turbofan", flags: ["--max-opt=999"] }] as const;
  const cpu: Record<string, number[][]> = { agent: [], turbofan: [] };
  for (let round = 0; round < 3; round++) {
    for (const t of round % 2 === 0 ? tiers : [...tiers].reverse()) cpu[t.name]!.push(await unpackCpu(pkg, path.join(tmp, `unpack-${t.name}`), [...t.flags], 3));
  }
  const ms = (xs: number[]) => { const s = spread(xs.map((x) => x / 1000)); return `${s.median.toFixed(0)} ms (${s.min.toFixed(0)}..${s.max.toFixed(0)})`; };
  const row = (which: string, i: number) => {
    const a = cpu.agent!.map((r) => r[i]!);
    const t = cpu.turbofan!.map((r) => r[i]!);
    const ratios = spread(a.map((x, k) => x / t[k]!));
    return `| unpack of a 2,000-file, ~24 MB package, the ${which} in a process: CPU without / with the optimizing compiler (median of 3 rounds, min..max), ratio per round | ${ms(a)} / ${ms(t)}, ${ratios.median.toFixed(2)}x (${ratios.min.toFixed(2)}x..${ratios.max.toFixed(2)}x) |`;
  };
  return [row("first", 0), row("third", 2)];
}

export interface AgentBenchOptions {
  /** How long to sample the idle agent (BENCH_IDLE_MS). */
  idleMs: number;
  /** How long to sample it with 50 instances, CPU included (BENCH_SOAK_MS). */
  soakMs: number;
}

/** The children's env: the agent logs errors only. */
function benchEnv(): NodeJS.ProcessEnv {
  return { ...process.env, SGRID_LOG_LEVEL: "error" };
}

/** SIGTERM, and the exit waited for (at most 5 s). */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await Promise.race([gone, sleep(5000)]);
}

export async function runAgentBench(opts: AgentBenchOptions): Promise<string> {
  const tmp = outputDir("bench-agent", { shared: true });
  const children = new Set<ChildProcess>();
  const group = `sgrid-bench-${process.pid}`;
  const reg = new StandInRegistry();
  let agent: ChildProcess | undefined;
  try {
    await reg.start();
    const patch = reg.addPatch(1, await sleepLoopPackage(tmp));
    const cfg = path.join(tmp, "node.yaml");
    fs.writeFileSync(cfg, "supervisor: { restart: { initialDelayMs: 0, jitter: 0 } }\n");
    const probe = memoryProbe(tmp);
    agent = spawn(process.execPath, ["-r", probe.preload, CLI, "node", "--registry", reg.address, "--name", "bench-node", "--data-dir", path.join(tmp, "node"),
      "--address", "127.0.0.1", "--cgroup-group", group, "--config", cfg], { stdio: ["ignore", "pipe", "inherit"], env: benchEnv() });
    let out = "";
    agent.stdout!.on("data", (d: Buffer) => { out += d.toString(); });
    await until("agent start", () => (/cgroups=(\w+)/.exec(out) ?? undefined), 20_000);
    const cgroups = /cgroups=(\w+)/.exec(out)![1];
    await until("hello", () => (reg.hellos > 0 ? true : undefined), 20_000);
    const idle = await sampleFor(agent.pid!, probe.file, opts.idleMs, Math.max(1000, opts.idleMs / 20));

    const N = 50;
    const instances: InstanceDesired[] = Array.from({ length: N }, (_, i) => ({
      instanceId: 1000 + i, application: "Bench", server: "Sleeper", type: "binary", adapters: [], env: {},
      limits: undefined, healthCheck: undefined, launch: undefined, state: "active",
      patch: { id: patch.id, version: 1, sha256: patch.sha256, size: patch.size },
    }));
    const t0 = Date.now();
    const startCpuMs = processCpuMs(agent.pid!);
    reg.setInstances(instances);
    await until("50 instances active", () => (instances.every((i) => reg.observed.get(i.instanceId)?.state === "active") ? true : undefined), 120_000);
    const allUpMs = Date.now() - t0;
    const allUpCpuMs = processCpuMs(agent.pid!) - startCpuMs;

    // Restart latency: first restart of 10 instances, one at a time.
    const latencies: number[] = [];
    for (let i = 0; i < 10; i++) {
      const id = 1000 + i;
      const before = reg.observed.get(id)!;
      const killedAt = Date.now();
      process.kill(before.pid, "SIGKILL");
      const back = await until(`instance ${id} replaced`, () => {
        const o = reg.observed.get(id);
        return o && o.state === "active" && o.pid !== before.pid ? o : undefined;
      }, 30_000);
      latencies.push(back.startedAt - killedAt);
    }

    await sleep(2000);
    // At least 10 s: two heartbeats, and enough clock ticks (10 ms each) to mean something.
    const soakMs = Math.max(opts.soakMs, 10_000);
    const c0 = processCpuMs(agent.pid!);
    const w0 = Date.now();
    // A sample every 10 s in a long soak, 20 samples in a short one.
    const busy = await sampleFor(agent.pid!, probe.file, soakMs, Math.min(10_000, Math.max(1000, soakMs / 20)));
    const cpuSeconds = (Date.now() - w0) / 1000;
    const cpuPct = ((processCpuMs(agent.pid!) - c0) / 1000 / cpuSeconds) * 100;

    reg.setInstances([]);
    await until("instances stopped", () => (instances.every((i) => reg.observed.get(i.instanceId)?.state !== "active") ? true : undefined), 60_000).catch(() => undefined);
    await sleep(500);

    // Baselines, idle, one at a time: a bare node, and a second agent (another node name, no instances) without the optimizing compiler.
    const bare = spawn(process.execPath, ["-r", probe.preload, "-e", "setInterval(() => {}, 1000)"], { stdio: "ignore", env: benchEnv() });
    children.add(bare);
    await sleep(1000);
    const bareIdle = await sampleFor(bare.pid!, probe.file, Math.min(opts.idleMs, 5000), 1000);
    await stopChild(bare);
    // Another agent (its own node name, no instances), idle, started with `nodeFlags` and `env` added.
    const idleAgent = async (name: string, nodeFlags: string[], env: NodeJS.ProcessEnv): Promise<MemorySample[]> => {
      const hellos = reg.hellos;
      const other = spawn(process.execPath, [...nodeFlags, "-r", probe.preload, CLI, "node", "--registry", reg.address, "--name", `bench-node-${name}`, "--data-dir", path.join(tmp, `node-${name}`),
        "--address", "127.0.0.1", "--cgroup-group", `${group}-${name}`], { stdio: "ignore", env: { ...benchEnv(), ...env } });
      children.add(other);
      await until(`the ${name} agent's hello`, () => (reg.hellos > hellos ? true : undefined), 20_000);
      const samples = await sampleFor(other.pid!, probe.file, opts.idleMs, Math.max(1000, opts.idleMs / 20));
      await stopChild(other);
      return samples;
    };
    const turboIdle = await idleAgent("turbofan", ["--max-opt=999"], {});
    const bundledIdle = await idleAgent("bundled", [], { SGRID_AGENT_BUNDLE: "1" });
    const med = (xs: MemorySample[]) => median(xs.map((x) => x.rss));
    const ratio = (xs: MemorySample[]) => `${(med(idle) / med(xs)).toFixed(2)}x`;
    const parts = (xs: MemorySample[]) => `${(median(xs.map((x) => x.anon)) / 1048576).toFixed(1)} + ${(median(xs.map((x) => x.file)) / 1048576).toFixed(1)}`;
    return [
      `| figure | value |`,
      `|---|---|`,
      `| cgroup backend | ${cgroups} |`,
      `| restart: exit -> replacement spawned, median of 10 first restarts (policy delay 0) | ${median(latencies).toFixed(0)} ms (min ${Math.min(...latencies)} / max ${Math.max(...latencies)}) |`,
      `| 50 instances from desired state to all reported active (the package's download and unpack included) | ${allUpMs} ms, agent CPU ${allUpCpuMs} ms |`,
      ...memoryRows("idle (0 instances)", idle, true),
      ...memoryRows("50 instances", busy, true),
      `| agent CPU supervising 50 instances (over ${cpuSeconds.toFixed(1)} s) | ${cpuPct.toFixed(2)} % of one core |`,
      ...memoryRows("baseline, bare `node -e` idle", bareIdle).slice(0, 1),
      ...memoryRows("baseline, agent with V8's optimizing compiler (`node --max-opt=999`), idle", turboIdle, true).slice(0, 4),
      ...memoryRows("baseline, agent from its bundle (`SGRID_AGENT_BUNDLE=1`), idle", bundledIdle, true).slice(0, 4),
      `| idle agent RSS (median) vs bare node / vs the agent with the optimizing compiler / vs bundled | ${ratio(bareIdle)} / ${ratio(turboIdle)} / ${ratio(bundledIdle)} (${(med(idle) / 1048576).toFixed(1)} vs ${(med(bareIdle) / 1048576).toFixed(1)} / ${(med(turboIdle) / 1048576).toFixed(1)} / ${(med(bundledIdle) / 1048576).toFixed(1)} MB) |`,
      `| idle RSS anonymous + file-backed (median, MB): agent / with the optimizing compiler / bundled | ${parts(idle)} / ${parts(turboIdle)} / ${parts(bundledIdle)} |`,
      ...(await unpackRows(tmp)),
    ].join("\n");
  } finally {
    for (const c of children) await stopChild(c);
    if (agent && agent.exitCode === null) {
      const gone = new Promise((r) => agent!.once("exit", r));
      agent.kill("SIGTERM");
      await Promise.race([gone, sleep(5000)]);
    }
    await reg.stop();
    for (const ctrl of ["memory", "cpu", "cpuacct", "pids", "unified", ""]) {
      for (const g of [group, `${group}-turbofan`, `${group}-bundled`]) {
        try { fs.rmdirSync(path.join("/sys/fs/cgroup", ctrl, g)); } catch { /* not there or not empty */ }
      }
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
