/**
 * Simulated-agent child process of the heartbeat benchmark: a share of the
 * agents, each with the real agent's node session client (hello, full
 * observed state, then a heartbeat every interval from its connect on;
 * reconnects with the real backoff), on this process's gRPC connections. Several of these run side by side at 10,000 agents, so
 * that the client side keeps up; each reports whether it did: how late its
 * heartbeats fired (the event loop's lag), and its CPU.
 *
 * IPC (every message has `ev`): parent -> child `start` {target, token,
 * nodes: [name, instance ids][], intervalMs, connections}, `stats`, `stop`
 * (no more heartbeats), `exit`; child -> parent `connected` {n} once each of
 * its agents has its full desired state, `stats` {sent, late, maxLateMs,
 * failed, reconnects, cpu}, `stopped` {sent}.
 */
import os from "node:os";
import { Communicator } from "sgridnext";
import type { InstanceUsage } from "sgridnext/gen/sgrid/registry/v1/node";
import { RegistrySession } from "../../nodeagent/agent/registry-session";
import { hostSample, type NodeFacts } from "../../nodeagent/facts";

export interface AgentsStart {
  ev: "start";
  target: string;
  token: string;
  nodes: Array<[string, number[]]>;
  intervalMs: number;
  connections: number;
}

export interface AgentsStats {
  ev: "stats";
  sent: number;
  /** Heartbeats that fired more than a fifth of the interval after their time. */
  late: number;
  maxLateMs: number;
  /** Sessions lost after they were established (closed by the registry, or failed). */
  failed: number;
  /** Sessions established again after one was lost (the real agent's reconnect). */
  reconnects: number;
  /** Why sessions were lost (the error, numbers and quoted names elided): count. */
  lostReasons: Record<string, number>;
  cpu: NodeJS.CpuUsage;
}

/**
 * HB_OLD_AGENTS=1 (diagnostics, the baseline of the HostSample change): the
 * agents heartbeat as those before it did, the facts JSON with every
 * heartbeat and no sample.
 */
const OLD_AGENTS = process.env.HB_OLD_AGENTS === "1";

/** A heartbeat later than this share of the interval means the client side fell behind. */
export const LATE_SHARE = 0.2;

/**
 * Host facts as the agent sends them (nodeagent's NodeFacts shape), with the
 * figures that move between heartbeats moving, so the registry sees facts
 * that change as real ones do.
 */
export function agentFacts(node: string, beat: number): NodeFacts {
  return {
    hostname: node, kernel: os.release(), platform: "linux", arch: "x64", cpuCount: 8, cpuAvailable: 8, cpuModel: "bench cpu",
    loadAvg: [0.42, 0.4, 0.38], memory: { totalBytes: 16e9, freeBytes: 8e9 - beat * 4096, availableBytes: 10e9 - beat * 4096 },
    disks: [{ mount: "/", device: "/dev/sda1", fsType: "ext4", totalBytes: 100e9, freeBytes: 50e9, availableBytes: 45e9 - beat * 1e6, readOnly: false }],
    agentVersion: "bench", nodeVersion: process.version, bootId: "00000000-0000-0000-0000-000000000000", uptimeSeconds: 1000 + beat * 5,
  };
}

/**
 * A simulated agent: the real agent's session client (RegistrySession: hello,
 * full observed state, heartbeats at the interval from its connect on,
 * reconnects with the real backoff when the session fails or is closed),
 * sharing its process's connections with other simulated agents.
 */
class SimAgent {
  private readonly usage: InstanceUsage[];
  private beats = 0;
  private lastBeatAt = 0;
  readonly session: RegistrySession;
  /** Sessions established (the first, then reconnects). */
  established = 0;
  /** Sessions lost after they were established. */
  lost = 0;

  constructor(comm: Communicator, target: string, readonly node: string, ids: number[], token: string, intervalMs: number, hooks: { onFirst(): void; onBeat(lateMs: number): boolean; onLost(reason: string): void }) {
    this.usage = ids.map((instanceId) => ({ instanceId, memoryBytes: 50_000_000 + instanceId, cpuCoresUsed: 0.01 }));
    const observed = ids.map((instanceId) => ({ instanceId, state: "active", pid: 1000 + instanceId, version: 1, restarts: 0, lastExitReason: "", event: "", startedAt: Date.now(), portsInUse: [], eventDetail: "" }));
    this.session = new RegistrySession({
      endpoints: [target], token, communicator: comm, heartbeatIntervalMs: intervalMs,
      hello: async () => ({ node, address: "127.0.0.1", agentVersion: "bench", hostInfoJson: JSON.stringify(agentFacts(node, 0)), agentId: `bench-${node}`, tags: [] }),
      fullObserved: () => observed,
      // As the real agent's reporter builds it: the sample always, the facts JSON when the session says they are due.
      heartbeat: async (withFacts) => {
        const now = Date.now();
        const lateMs = this.lastBeatAt === 0 ? 0 : now - this.lastBeatAt - intervalMs;
        this.lastBeatAt = now;
        if (!hooks.onBeat(lateMs)) throw new Error("bench stopped");
        this.beats++;
        const facts = agentFacts(this.node, this.beats);
        if (OLD_AGENTS) return { load1: 0.42, factsJson: JSON.stringify(facts), usage: this.usage, sample: undefined };
        return { load1: 0.42, factsJson: withFacts ? JSON.stringify(facts) : "", usage: this.usage, sample: hostSample(facts) };
      },
    });
    this.session.on("connected", () => {
      this.lastBeatAt = 0;
      if (this.established++ === 0) hooks.onFirst();
    });
    this.session.on("disconnected", (reason) => {
      if (this.established > this.lost) {
        this.lost++;
        hooks.onLost(reason);
      }
    });
    this.session.start();
  }
}

function main(): void {
  const comms: Communicator[] = [];
  const agents: SimAgent[] = [];
  let sent = 0;
  let late = 0;
  let maxLateMs = 0;
  let beating = true;
  const lostReasons = new Map<string, number>();
  const reply = (m: object) => process.send!(m);

  const start = (o: AgentsStart): void => {
    for (let c = 0; c < Math.max(1, o.connections); c++) comms.push(new Communicator());
    let connected = 0;
    const hooks = {
      onFirst: () => {
        if (++connected === o.nodes.length) reply({ ev: "connected", n: connected });
      },
      onLost: (reason: string) => {
        const key = reason.replace(/"[^"]*"/g, '"…"').replace(/\d+/g, "N").slice(0, 120);
        lostReasons.set(key, (lostReasons.get(key) ?? 0) + 1);
      },
      onBeat: (lateMs: number) => {
        if (!beating) return false;
        if (lateMs > o.intervalMs * LATE_SHARE) late++;
        maxLateMs = Math.max(maxLateMs, lateMs);
        sent++;
        return true;
      },
    };
    for (const [i, [name, ids]] of o.nodes.entries()) agents.push(new SimAgent(comms[i % comms.length]!, o.target, name, ids, o.token, o.intervalMs, hooks));
  };

  process.on("disconnect", () => process.exit(0)); // the parent gone: no orphaned agents
  process.on("message", (m: { ev: string }) => {
    switch (m.ev) {
      case "start":
        start(m as AgentsStart);
        break;
      case "stats": {
        const failed = agents.reduce((n, a) => n + a.lost, 0);
        const reconnects = agents.reduce((n, a) => n + Math.max(0, a.established - 1), 0);
        reply({ ev: "stats", sent, late, maxLateMs, failed, reconnects, lostReasons: Object.fromEntries(lostReasons), cpu: process.cpuUsage() } satisfies AgentsStats);
        break;
      }
      case "stop":
        beating = false; // each agent's next heartbeat is not sent
        reply({ ev: "stopped", sent });
        break;
      case "exit":
        void Promise.all(agents.map((a) => a.session.stop())).finally(() => {
          comms.forEach((c) => c.close());
          process.exit(0);
        });
        setTimeout(() => process.exit(0), 2000).unref();
    }
  });
}

if (require.main === module) main();
