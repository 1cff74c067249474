/**
 * Heartbeat capacity of one registry: N simulated agents (default 1,000) x M
 * instances each (default 10) hold node sessions with one registry process
 * on SQLite and heartbeat at the default interval (5 s), each heartbeat
 * carrying host facts and M usage entries, for a fixed time (default 20 s).
 *
 * Reports: time to connect every agent (hello -> full desired state), the
 * registry's CPU over the steady window (process.cpuUsage of the child, as
 * % of one core and of the machine), its RSS, heartbeats sent vs recorded
 * (lost must be 0), and nodes marked offline (must be 0).
 *
 * The agents run in this process on K gRPC connections (default 20: real
 * agents each have their own; 50 streams per HTTP/2 connection keeps the
 * client side cheap on a small machine). Their CPU is not the registry's.
 */
import { fork } from "node:child_process";
import { setMaxListeners } from "node:events";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { AsyncQueue, Communicator } from "sgridnext";
import type { AgentMessage } from "sgridnext/gen/sgrid/registry/v1/node";
import { NodeSessionProxy } from "sgridnext/gen/sgrid/registry/v1/node.sgrid";
import { fmt, table } from "../harness";

export interface HeartbeatBenchOptions {
  nodes?: number;
  instancesPerNode?: number;
  /** Steady-state measurement, ms. Default 20000. */
  durationMs?: number;
  /** Heartbeat interval, ms. Default 5000 (the registry's default). */
  intervalMs?: number;
  /** gRPC connections the simulated agents share. Default 20. */
  connections?: number;
}

interface ChildStats {
  cpu: NodeJS.CpuUsage;
  rss: number;
  hub: { heartbeatsReceived: number; heartbeatsRecorded: number; heartbeatErrors: number; sessionsOpened: number; desiredSent: number; observedReports: number };
  online: number;
  nodes: number;
  offlineEvents: number;
}

const TOKEN = "bench-token";

/** A simulated agent: hello, full observed state, then heartbeats when told. */
class SimAgent {
  /** What the fake agent sends, in order; closing it ends the request side. */
  private readonly queue = new AsyncQueue<AgentMessage>();
  gotDesired = false;
  failed: Error | undefined;
  readonly done: Promise<void>;

  constructor(proxy: NodeSessionProxy, readonly node: string, private readonly ids: number[], facts: string, onDesired: () => void, signal: AbortSignal) {
    this.queue.push({ kind: { $case: "hello", value: { node, address: "127.0.0.1", agentVersion: "bench", hostInfoJson: facts, agentId: `bench-${node}`, tags: [] } } });
    this.queue.push({ kind: { $case: "observed", value: { full: true, instances: ids.map((instanceId) => ({ instanceId, state: "active", pid: 1000 + instanceId, version: 1, restarts: 0, lastExitReason: "", event: "", startedAt: Date.now(), portsInUse: [], eventDetail: "" })) } } });
    const stream = proxy.session(this.queue, { metadata: { authorization: `Bearer ${TOKEN}` }, signal });
    this.done = (async () => {
      try {
        for await (const m of stream) {
          if (m.kind?.$case === "desired" && !this.gotDesired) {
            this.gotDesired = true;
            onDesired();
          }
        }
      } catch (err) {
        if (!signal.aborted) this.failed = err as Error;
      }
    })();
  }

  heartbeat(facts: string): void {
    this.queue.push({ kind: { $case: "heartbeat", value: {
      load1: 0.42, factsJson: facts,
      usage: this.ids.map((instanceId) => ({ instanceId, memoryBytes: 50_000_000 + instanceId, cpuCoresUsed: 0.01 })),
    } } });
  }

  end(): void {
    this.queue.close();
  }
}

function facts(node: string): string {
  return JSON.stringify({
    hostname: node, kernel: os.release(), platform: "linux", arch: "x64", cpuCount: 8, cpuAvailable: 8, cpuModel: "bench cpu",
    loadAvg: [0.42, 0.4, 0.38], memory: { totalBytes: 16e9, freeBytes: 8e9, availableBytes: 10e9 },
    disks: [{ mount: "/", device: "/dev/sda1", fsType: "ext4", totalBytes: 100e9, freeBytes: 50e9, availableBytes: 45e9, readOnly: false }],
    agentVersion: "bench", nodeVersion: process.version, bootId: "00000000-0000-0000-0000-000000000000", uptimeSeconds: 1000,
  });
}

export async function runHeartbeatBench(o: HeartbeatBenchOptions = {}): Promise<string> {
  const nodes = o.nodes ?? 1000;
  const perNode = o.instancesPerNode ?? 10;
  const durationMs = o.durationMs ?? 20_000;
  const intervalMs = o.intervalMs ?? 5000;
  const connections = o.connections ?? 20;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sgrid-hb-bench-"));
  const child = fork(path.join(__dirname, "heartbeat-registry.js"), [], {
    env: { ...process.env, SGRID_LOG_LEVEL: "warn", HB_DIR: dir, HB_NODES: String(nodes), HB_INSTANCES: String(perNode), HB_TOKEN: TOKEN },
    stdio: ["ignore", "pipe", "inherit", "ipc"],
    // HB_PROF=<dir>: write a CPU profile of the registry there (diagnostics).
    execArgv: process.env.HB_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.HB_PROF}`] : [],
  });
  const stats = (): Promise<ChildStats> => new Promise((res) => {
    child.once("message", (m) => res(m as ChildStats));
    child.send("stats");
  });
  const comms: Communicator[] = [];
  const ac = new AbortController();
  setMaxListeners(0, ac.signal); // one listener per simulated session
  try {
    const ready = await new Promise<{ port: number; idsByNode: Record<string, number[]> }>((resolve, reject) => {
      let out = "";
      child.stdout!.setEncoding("utf8").on("data", (d: string) => {
        out += d;
        const m = /READY (.*)\n/.exec(out);
        if (m) resolve(JSON.parse(m[1]!));
      });
      child.once("exit", (code) => reject(new Error(`heartbeat registry exited with ${code}`)));
    });
    const target = `127.0.0.1:${ready.port}`;
    const proxies = Array.from({ length: connections }, () => {
      const c = new Communicator();
      comms.push(c);
      return c.stringToProxy(NodeSessionProxy, target);
    });

    // Connect every agent; time until each has its full desired state. Each
    // agent heartbeats from its own connect on (as real agents do, so that
    // early ones stay online through a long connect storm), phases spread.
    const t0 = performance.now();
    let connected = 0;
    let sent = 0;
    let allConnected!: () => void;
    const allIn = new Promise<void>((r) => (allConnected = r));
    const agents: SimAgent[] = [];
    const timers: NodeJS.Timeout[] = [];
    for (let n = 0; n < nodes; n++) {
      const name = `node-${n}`;
      const f = facts(name);
      const agent: SimAgent = new SimAgent(proxies[n % connections]!, name, ready.idsByNode[name] ?? [], f, () => {
        timers.push(setTimeout(() => {
          const beat = () => {
            agent.heartbeat(f);
            sent++;
          };
          beat();
          timers.push(setInterval(beat, intervalMs));
        }, Math.random() * intervalMs));
        if (++connected === nodes) allConnected();
      }, ac.signal);
      agents.push(agent);
    }
    const connectLimitMs = Number(process.env.BENCH_HEARTBEAT_CONNECT_MS ?? 300_000);
    await Promise.race([allIn, new Promise((_, rej) => setTimeout(() => rej(new Error(`only ${connected}/${nodes} agents connected within ${connectLimitMs} ms`)), connectLimitMs))]);
    const connectMs = performance.now() - t0;
    // Let the connect storm's writes settle for one interval, then measure the steady state.
    await new Promise((r) => setTimeout(r, intervalMs));
    const before = await stats();
    const sentBefore = sent;
    const w0 = performance.now();
    await new Promise((r) => setTimeout(r, durationMs));
    const cpuAfter = await stats();
    const windowMs = performance.now() - w0;
    const sentInWindow = sent - sentBefore;
    timers.forEach((t) => clearTimeout(t));
    // Let in-flight heartbeats land (bounded), then compare everything sent with everything recorded.
    let after = cpuAfter;
    const drainUntil = Date.now() + 10_000;
    while (after.hub.heartbeatsRecorded + after.hub.heartbeatErrors < sent && Date.now() < drainUntil) {
      await new Promise((r) => setTimeout(r, 100));
      after = await stats();
    }
    const wallMs = windowMs;
    const cpuMs = (cpuAfter.cpu.user - before.cpu.user + cpuAfter.cpu.system - before.cpu.system) / 1000;
    const recordedInWindow = cpuAfter.hub.heartbeatsRecorded - before.hub.heartbeatsRecorded;
    const recorded = after.hub.heartbeatsRecorded;
    const lost = sent - recorded;
    const failedAgents = agents.filter((a) => a.failed).length;
    agents.forEach((a) => a.end());
    const cores = os.cpus().length;
    const rows = [
      ["agents x instances", `${fmt(nodes)} x ${perNode}`],
      ["connect (hello -> full desired state, all agents)", `${fmt(connectMs)} ms`],
      ["heartbeat interval / measured window", `${fmt(intervalMs)} ms / ${fmt(wallMs / 1000, 1)} s`],
      ["heartbeats sent / recorded / lost (whole run)", `${fmt(sent)} / ${fmt(recorded)} / ${fmt(lost)}`],
      ["heartbeats per second (window)", `${fmt(recordedInWindow / (wallMs / 1000), 1)} (sent ${fmt(sentInWindow)})`],
      ["registry CPU (% of one core)", `${fmt((cpuMs / wallMs) * 100, 1)} %`],
      [`registry CPU (% of the machine, ${cores} cores)`, `${fmt((cpuMs / wallMs / cores) * 100, 1)} %`],
      ["registry CPU per heartbeat (window)", `${fmt((cpuMs * 1000) / Math.max(1, recordedInWindow))} µs`],
      ["registry RSS", `${fmt(after.rss / 1024 / 1024)} MiB`],
      ["nodes online at the end / offline events / failed sessions", `${fmt(after.online)}/${fmt(after.nodes)} / ${after.offlineEvents} / ${failedAgents}`],
      ["heartbeat write errors", fmt(after.hub.heartbeatErrors)],
    ];
    return `${table(["measure", "value"], rows)}\n(lost must be 0; the simulated agents run in the bench process on ${connections} connections, on the same machine)`;
  } finally {
    ac.abort();
    comms.forEach((c) => c.close());
    if (child.connected) child.send("exit");
    await new Promise((r) => setTimeout(r, process.env.HB_PROF ? 3000 : 200));
    child.kill("SIGKILL");
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  runHeartbeatBench({
    nodes: process.env.HB_NODES ? Number(process.env.HB_NODES) : undefined,
    durationMs: process.env.HB_DURATION_MS ? Number(process.env.HB_DURATION_MS) : undefined,
  }).then((s) => {
    process.stdout.write(`${s}\n`);
    process.exit(0);
  }, (err) => {
    process.stderr.write(`${(err as Error).stack}\n`);
    process.exit(1);
  });
}
