/**
 * Heartbeat capacity of one registry: N simulated agents (default 1,000) x M
 * instances each (default 10) hold node sessions with one registry process
 * on SQLite (or MySQL: `mysql`) and heartbeat at the default interval (5 s), each heartbeat
 * carrying host facts (whose figures move, as a real agent's do) and M
 * usage entries, for a fixed time (default 20 s).
 *
 * Reports: time to connect every agent (hello -> full desired state), the
 * registry's CPU per heartbeat in each heartbeat interval of the steady
 * window (process.cpuUsage of the child; median and min..max over the
 * intervals), its CPU as % of one core, its RSS, heartbeats sent vs recorded
 * (lost must be 0), nodes marked offline (must be 0), whether the client
 * side kept up (its heartbeats fired on time), and the machine's steal time.
 *
 * The agents run in K child processes (heartbeat-agents.ts; default one per
 * 2,500 agents), 50 sessions per connection (real agents each have their
 * own), on the registry's gRPC port or on its native one (`transport`: the
 * agent listed as sgrid://host:port, `sgrid registry --native-listen`). The registry is pinned to one CPU and the agents to the other
 * with taskset where possible; their CPU is not the registry's.
 */
import { type ChildProcess, fork } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { type Pinning, detectPinning, fmt, processCpuMs, readCpuTimes, spread, stealPercent, table } from "../harness";
import type { AgentsStart, AgentsStats } from "./heartbeat-agents";
import { LATE_SHARE } from "./heartbeat-agents";
import type { HubStats } from "../../registry/node/hub-stats";
import { outputDir } from "../../test/helpers/paths";
import knexFactory, { type Knex } from "knex";
import crypto from "node:crypto";

export interface HeartbeatBenchOptions {
  nodes?: number;
  instancesPerNode?: number;
  /** Steady-state measurement, ms. Default 20000. */
  durationMs?: number;
  /** Heartbeat interval, ms. Default 5000 (the registry's default). */
  intervalMs?: number;
  /** Agent sessions per gRPC connection. Default 50. */
  sessionsPerConnection?: number;
  /** Agent child processes. Default one per 2,500 agents (BENCH_HEARTBEAT_CLIENTS). */
  clients?: number;
  /** The registry port the agents hold their sessions on. Default "grpc". */
  transport?: "grpc" | "sgrid";
  /**
   * A MySQL server (`mysql://user:pass@host:port`, no database): the registry's database is made
   * there for the run and dropped after, and the server's CPU is reported beside the registry's
   * when its process is on this machine. Default: SQLite in the run's folder.
   */
  mysql?: string;
}

/** The MySQL server's process id, when it runs on this machine and says where its pid file is. */
async function mysqlServerPid(knex: Knex): Promise<number | undefined> {
  try {
    const [rows] = (await knex.raw("SHOW VARIABLES LIKE 'pid_file'")) as [Array<{ Value: string }>];
    const pid = Number(fs.readFileSync(rows[0]!.Value, "utf8").trim());
    return Number.isInteger(pid) && fs.existsSync(`/proc/${pid}/stat`) ? pid : undefined;
  } catch {
    return undefined;
  }
}


interface ChildStats {
  cpu: NodeJS.CpuUsage;
  rss: number;
  hub: HubStats;
  /** In the "final" answer only. */
  online?: number;
  nodes?: number;
  offlineEvents?: number;
}

const TOKEN = "bench-token";

/** One message of `ev` from a child (the next one). */
function nextMessage<T>(child: ChildProcess, ev: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMsg = (m: any) => {
      if (m?.ev !== ev) return;
      child.off("message", onMsg);
      child.off("exit", onExit);
      resolve(m as T);
    };
    const onExit = (code: number | null) => reject(new Error(`bench child exited (${code}) before "${ev}"`));
    child.on("message", onMsg);
    child.once("exit", onExit);
  });
}

function cpuMs(a: NodeJS.CpuUsage, b: NodeJS.CpuUsage): number {
  return (b.user - a.user + b.system - a.system) / 1000;
}

/** The table, and the figures run.ts sets beside each other's: registry CPU per heartbeat (median of rounds, µs) and RSS (bytes). */
export interface HeartbeatBenchResult {
  text: string;
  cpuPerHeartbeatUs: number;
  rssBytes: number;
}

export async function runHeartbeatBench(o: HeartbeatBenchOptions = {}): Promise<HeartbeatBenchResult> {
  const nodes = o.nodes ?? 1000;
  const perNode = o.instancesPerNode ?? 10;
  const durationMs = o.durationMs ?? 20_000;
  const intervalMs = o.intervalMs ?? 5000;
  const perConnection = o.sessionsPerConnection ?? 50;
  const clients = Math.max(1, o.clients ?? Math.ceil(nodes / 2500));
  const transport = o.transport ?? "grpc";
  // BENCH_HEARTBEAT_PIN=0: no taskset (a machine busy with other work starves a pinned process).
  const pinning: Pinning = process.env.BENCH_HEARTBEAT_PIN === "0" ? { pinned: false, reason: "BENCH_HEARTBEAT_PIN=0" } : detectPinning();
  const pin = (cpu: number | undefined) => (pinning.pinned && cpu !== undefined ? { execPath: "taskset", execArgv: ["-c", String(cpu), process.execPath] } : {});
  const dir = outputDir("bench-heartbeat", { shared: true });
  let mysqlAdmin: Knex | undefined;
  let dbUrl: string | undefined;
  let dbName = "";
  let dbPid: number | undefined;
  if (o.mysql !== undefined) {
    const u = new URL(o.mysql);
    mysqlAdmin = knexFactory({ client: "mysql2", connection: { host: u.hostname, port: Number(u.port || 3306), user: decodeURIComponent(u.username), password: decodeURIComponent(u.password) } });
    dbName = `sgrid_hb_${process.pid}_${crypto.randomBytes(3).toString("hex")}`;
    try {
      await mysqlAdmin.raw(`CREATE DATABASE \`${dbName}\``);
    } catch (err) {
      await mysqlAdmin.destroy();
      throw err;
    }
    u.pathname = `/${dbName}`;
    dbUrl = u.toString();
    // Its CPU is read from /proc only when it listens on this machine's loopback (a pid file elsewhere names another machine's process).
    if (["127.0.0.1", "localhost", "[::1]"].includes(u.hostname)) dbPid = await mysqlServerPid(mysqlAdmin);
  }
  const registry = fork(path.join(__dirname, "heartbeat-registry.js"), [], {
    env: { ...process.env, SGRID_LOG_LEVEL: "warn", HB_DIR: dir, HB_NODES: String(nodes), HB_INSTANCES: String(perNode), HB_TOKEN: TOKEN, HB_TRANSPORT: transport, ...(dbUrl ? { HB_DB: dbUrl } : {}) },
    stdio: ["ignore", "pipe", "inherit", "ipc"],
    ...pin(pinning.serverCpu),
    // Diagnostics: HB_PROF=<dir> writes a CPU profile of the registry there; HB_NODE_ARGS adds node options to it (space-separated, e.g. "--trace-gc-nvp").
    execArgv: [
      ...(pin(pinning.serverCpu).execArgv ?? []),
      ...(process.env.HB_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.HB_PROF}`] : []),
      ...(process.env.HB_NODE_ARGS ?? "").split(" ").filter((a) => a !== ""),
    ],
  });
  const stats = (what: "stats" | "final" = "stats"): Promise<ChildStats> => new Promise((res) => {
    registry.once("message", (m) => res(m as ChildStats));
    registry.send(what);
  });
  const agents: ChildProcess[] = [];
  const agentStats = () => Promise.all(agents.map((a) => {
    const m = nextMessage<AgentsStats>(a, "stats");
    a.send({ ev: "stats" });
    return m;
  }));
  try {
    const ready = await new Promise<{ port: number; idsByNode: Record<string, number[]> }>((resolve, reject) => {
      let out = "";
      registry.stdout!.setEncoding("utf8").on("data", (d: string) => {
        out += d;
        const m = /READY (.*)\n/.exec(out);
        if (m) {
          resolve(JSON.parse(m[1]!));
          // Whatever the registry prints afterwards (e.g. node's --trace-gc output from HB_NODE_ARGS) goes to stderr.
          registry.stdout!.removeAllListeners("data").on("data", (more: string) => process.stderr.write(more));
        }
      });
      registry.once("exit", (code) => reject(new Error(`heartbeat registry exited with ${code}`)));
    });
    const target = `${transport === "sgrid" ? "sgrid://" : ""}127.0.0.1:${ready.port}`;
    const names = Array.from({ length: nodes }, (_, n) => `node-${n}`);
    const t0 = performance.now();
    const connected: Array<Promise<unknown>> = [];
    for (let c = 0; c < clients; c++) {
      const share = names.filter((_, n) => n % clients === c);
      const child = fork(path.join(__dirname, "heartbeat-agents.js"), [], {
        env: { ...process.env, SGRID_LOG_LEVEL: "error", NODE_NO_WARNINGS: "1" }, stdio: ["ignore", "inherit", "inherit", "ipc"], ...pin(pinning.clientCpu),
      });
      agents.push(child);
      connected.push(nextMessage(child, "connected"));
      const start: AgentsStart = {
        ev: "start", target, token: TOKEN, intervalMs,
        nodes: share.map((name) => [name, ready.idsByNode[name] ?? []]), connections: Math.ceil(share.length / perConnection),
      };
      child.send(start);
    }
    const connectLimitMs = Number(process.env.BENCH_HEARTBEAT_CONNECT_MS ?? 600_000);
    let limit: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(connected), new Promise((_, rej) => (limit = setTimeout(() => rej(new Error(`not every agent connected within ${connectLimitMs} ms`)), connectLimitMs)))]);
    clearTimeout(limit);
    const connectMs = performance.now() - t0;
    // Let the connect storm's writes settle for one interval, then measure the steady state, one interval at a time.
    await new Promise((r) => setTimeout(r, intervalMs));
    const steal0 = readCpuTimes();
    const db0 = dbPid === undefined ? 0 : processCpuMs(dbPid);
    const first = await stats();
    const agents0 = await agentStats();
    const w0 = performance.now();
    const rounds = Math.max(3, Math.round(durationMs / intervalMs));
    const perHeartbeat: number[] = [];
    let prev = first;
    for (let r = 0; r < rounds; r++) {
      await new Promise((res) => setTimeout(res, durationMs / rounds));
      const cur = await stats();
      perHeartbeat.push((cpuMs(prev.cpu, cur.cpu) * 1000) / Math.max(1, cur.hub.heartbeatsRecorded - prev.hub.heartbeatsRecorded));
      prev = cur;
    }
    const windowMs = performance.now() - w0;
    const last = prev;
    const dbCpuMs = dbPid === undefined ? undefined : processCpuMs(dbPid) - db0;
    const agents1 = await agentStats();
    const steal = stealPercent(steal0, readCpuTimes());
    const stopped = await Promise.all(agents.map((a) => {
      const m = nextMessage<{ sent: number }>(a, "stopped");
      a.send({ ev: "stop" });
      return m;
    }));
    const sent = stopped.reduce((n, s) => n + s.sent, 0);
    // Let the last flushes land (bounded), then compare everything sent with everything recorded.
    let after = last;
    const drainUntil = Date.now() + 10_000;
    while (after.hub.heartbeatsRecorded + after.hub.heartbeatsDropped < sent && Date.now() < drainUntil) {
      await new Promise((r) => setTimeout(r, 100));
      after = await stats();
    }
    after = await stats("final");
    const registryCpuMs = cpuMs(first.cpu, last.cpu);
    const recordedInWindow = last.hub.heartbeatsRecorded - first.hub.heartbeatsRecorded;
    const sentInWindow = agents1.reduce((n, a) => n + a.sent, 0) - agents0.reduce((n, a) => n + a.sent, 0);
    const recorded = after.hub.heartbeatsRecorded;
    const lost = sent - recorded;
    const failed = agents1.reduce((n, a) => n + a.failed, 0);
    const reconnects = agents1.reduce((n, a) => n + a.reconnects, 0);
    const h = after.hub;
    const reasons = new Map<string, number>();
    for (const a of agents1) for (const [k, v] of Object.entries(a.lostReasons)) reasons.set(k, (reasons.get(k) ?? 0) + v);
    const reasonText = [...reasons].sort((x, y) => y[1] - x[1]).slice(0, 3).map(([k, v]) => `${fmt(v)}: ${k}`).join("; ");
    const late = agents1.reduce((n, a) => n + a.late, 0);
    const maxLate = Math.max(...agents1.map((a) => a.maxLateMs));
    const clientCpu = agents1.map((a, i) => (cpuMs(agents0[i]!.cpu, a.cpu) / windowMs) * 100);
    const keptUp = late === 0 && failed === 0 && sentInWindow > 0;
    const s = spread(perHeartbeat);
    const cores = os.cpus().length;
    const rows = [
      ["agents x instances (registry port, database)", `${fmt(nodes)} x ${perNode} (${transport === "sgrid" ? "native, sgrid://" : "gRPC"}, ${o.mysql === undefined ? "SQLite" : "MySQL"})`],
      ["connect (hello -> full desired state, all agents)", `${fmt(connectMs)} ms`],
      ["heartbeat interval / measured window", `${fmt(intervalMs)} ms / ${fmt(windowMs / 1000, 1)} s in ${rounds} rounds`],
      ["heartbeats sent / recorded / lost (whole run)", `${fmt(sent)} / ${fmt(recorded)} / ${fmt(lost)}`],
      ["heartbeats per second (window)", `${fmt(recordedInWindow / (windowMs / 1000), 1)} (sent ${fmt(sentInWindow)})`],
      ["registry CPU per heartbeat, median (min..max of rounds)", `${fmt(s.median)} µs (${fmt(s.min)}..${fmt(s.max)})`],
      ["registry CPU per heartbeat (whole window)", `${fmt((registryCpuMs * 1000) / Math.max(1, recordedInWindow))} µs`],
      ["registry CPU (% of one core)", `${fmt((registryCpuMs / windowMs) * 100, 1)} %`],
      ["registry RSS", `${fmt(after.rss / 1024 / 1024)} MiB`],
      ...(o.mysql === undefined ? [] : [["database server CPU per heartbeat (whole window; MySQL in its own process)", dbCpuMs === undefined ? "n/a (not on this machine)" : `${fmt((dbCpuMs * 1000) / Math.max(1, recordedInWindow))} µs`]]),
      ["nodes online at the end / offline events / failed sessions", `${fmt(after.online ?? 0)}/${fmt(after.nodes ?? 0)} / ${after.offlineEvents} / ${failed}`],
      ["heartbeat write errors / dropped (closed sessions)", `${fmt(after.hub.heartbeatErrors)} / ${fmt(after.hub.heartbeatsDropped)}`],
      ["agents' sessions lost / re-established (real backoff)", `${fmt(failed)} / ${fmt(reconnects)}${reasonText ? ` (${reasonText})` : ""}`],
      ["sweeper: sessions closed silent (of them without a heartbeat) / longest silence / sweeps held (registry lagging) / loop delay p99, max", `${fmt(h.silentClosed)} (${fmt(h.silentClosedNoHeartbeat)}) / ${fmt(h.silentMaxMs)} ms / ${fmt(h.sweepsHeldForLag)} / ${fmt(h.loopDelayP99MaxMs)} ms`],
      [`client side kept up (no heartbeat > ${LATE_SHARE * 100} % of the interval late)`, `${keptUp ? "yes" : "NO"}: ${fmt(late)} late, max ${fmt(maxLate)} ms late; ${clients} process(es) at ${clientCpu.map((c) => `${fmt(c)} %`).join(", ")} of a core`],
    ];
    const pinText = pinning.pinned ? `registry on cpu ${pinning.serverCpu}, agents on cpu ${pinning.clientCpu} (taskset)` : `not pinned: ${pinning.reason}`;
    const text = `${table(["measure", "value"], rows)}\n(lost must be 0; ${cores} cores; ${pinText}; steal ${steal === undefined ? "n/a" : `${steal.toFixed(1)} %`} over the window)`;
    return { text, cpuPerHeartbeatUs: s.median, rssBytes: after.rss };
  } finally {
    for (const a of agents) if (a.connected) a.send({ ev: "exit" });
    if (registry.connected) registry.send("exit");
    await new Promise((r) => setTimeout(r, process.env.HB_PROF ? 3000 : 300));
    for (const a of agents) a.kill("SIGKILL");
    registry.kill("SIGKILL");
    fs.rmSync(dir, { recursive: true, force: true });
    if (mysqlAdmin) {
      await mysqlAdmin.raw(`DROP DATABASE IF EXISTS \`${dbName}\``).catch(() => undefined);
      await mysqlAdmin.destroy();
    }
  }
}

if (require.main === module) {
  runHeartbeatBench({
    nodes: process.env.HB_NODES ? Number(process.env.HB_NODES) : undefined,
    clients: process.env.HB_CLIENTS ? Number(process.env.HB_CLIENTS) : undefined,
    sessionsPerConnection: process.env.HB_PER_CONNECTION ? Number(process.env.HB_PER_CONNECTION) : undefined,
    durationMs: process.env.HB_DURATION_MS ? Number(process.env.HB_DURATION_MS) : undefined,
    transport: process.env.HB_TRANSPORT === "sgrid" ? "sgrid" : undefined,
  }).then((r) => {
    process.stdout.write(`${r.text}\n`);
    process.exit(0);
  }, (err) => {
    process.stderr.write(`${(err as Error).stack}\n`);
    process.exit(1);
  });
}
