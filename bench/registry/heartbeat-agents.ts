/**
 * Simulated-agent child process of the heartbeat benchmark: a share of the
 * agents, each with a node session (hello, full observed state, then a
 * heartbeat every interval from its connect on, phases spread), on its own
 * gRPC connections. Several of these run side by side at 10,000 agents, so
 * that the client side keeps up; each reports whether it did: how late its
 * heartbeats fired (the event loop's lag), and its CPU.
 *
 * IPC (every message has `ev`): parent -> child `start` {target, token,
 * nodes: [name, instance ids][], intervalMs, connections}, `stats`, `stop`
 * (no more heartbeats), `exit`; child -> parent `connected` {n} once each of
 * its agents has its full desired state, `stats` {sent, late, maxLateMs,
 * failed, cpu}, `stopped` {sent}.
 */
import { setMaxListeners } from "node:events";
import os from "node:os";
import { AsyncQueue, Communicator } from "sgridnext";
import type { AgentMessage, InstanceUsage } from "sgridnext/gen/sgrid/registry/v1/node";
import { NodeSessionProxy } from "sgridnext/gen/sgrid/registry/v1/node.sgrid";

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
  failed: number;
  cpu: NodeJS.CpuUsage;
}

/** A heartbeat later than this share of the interval means the client side fell behind. */
export const LATE_SHARE = 0.2;

/**
 * Host facts as the agent sends them (nodeagent's NodeFacts shape), with the
 * figures that move between heartbeats moving, so the registry sees facts
 * that change as real ones do.
 */
export function agentFacts(node: string, beat: number): string {
  return JSON.stringify({
    hostname: node, kernel: os.release(), platform: "linux", arch: "x64", cpuCount: 8, cpuAvailable: 8, cpuModel: "bench cpu",
    loadAvg: [0.42, 0.4, 0.38], memory: { totalBytes: 16e9, freeBytes: 8e9 - beat * 4096, availableBytes: 10e9 - beat * 4096 },
    disks: [{ mount: "/", device: "/dev/sda1", fsType: "ext4", totalBytes: 100e9, freeBytes: 50e9, availableBytes: 45e9 - beat * 1e6, readOnly: false }],
    agentVersion: "bench", nodeVersion: process.version, bootId: "00000000-0000-0000-0000-000000000000", uptimeSeconds: 1000 + beat * 5,
  });
}

/** A simulated agent: hello, full observed state, then heartbeats. */
class SimAgent {
  /** What the fake agent sends, in order; closing it ends the request side. */
  private readonly queue = new AsyncQueue<AgentMessage>();
  private readonly usage: InstanceUsage[];
  private beats = 0;
  gotDesired = false;
  failed: Error | undefined;

  constructor(proxy: NodeSessionProxy, readonly node: string, ids: number[], token: string, onDesired: () => void, signal: AbortSignal) {
    this.usage = ids.map((instanceId) => ({ instanceId, memoryBytes: 50_000_000 + instanceId, cpuCoresUsed: 0.01 }));
    this.queue.push({ kind: { $case: "hello", value: { node, address: "127.0.0.1", agentVersion: "bench", hostInfoJson: agentFacts(node, 0), agentId: `bench-${node}`, tags: [] } } });
    this.queue.push({ kind: { $case: "observed", value: { full: true, instances: ids.map((instanceId) => ({ instanceId, state: "active", pid: 1000 + instanceId, version: 1, restarts: 0, lastExitReason: "", event: "", startedAt: Date.now(), portsInUse: [], eventDetail: "" })) } } });
    const stream = proxy.session(this.queue, { metadata: { authorization: `Bearer ${token}` }, signal });
    void (async () => {
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

  heartbeat(): void {
    this.beats++;
    this.queue.push({ kind: { $case: "heartbeat", value: { load1: 0.42, factsJson: agentFacts(this.node, this.beats), usage: this.usage } } });
  }

  end(): void {
    this.queue.close();
  }
}

function main(): void {
  const ac = new AbortController();
  setMaxListeners(0, ac.signal); // one listener per simulated session
  const comms: Communicator[] = [];
  const agents: SimAgent[] = [];
  let sent = 0;
  let late = 0;
  let maxLateMs = 0;
  let beating = true;
  const reply = (m: object) => process.send!(m);

  const start = (o: AgentsStart): void => {
    const proxies = Array.from({ length: Math.max(1, o.connections) }, () => {
      const c = new Communicator();
      comms.push(c);
      return c.stringToProxy(NodeSessionProxy, o.target);
    });
    let connected = 0;
    for (const [i, [name, ids]] of o.nodes.entries()) {
      const agent: SimAgent = new SimAgent(proxies[i % proxies.length]!, name, ids, o.token, () => {
        // Heartbeats from the agent's own connect on (as real agents do), phases spread over one interval.
        let due = Date.now() + Math.random() * o.intervalMs;
        const beat = () => {
          if (!beating) return;
          const lateBy = Date.now() - due;
          due += o.intervalMs;
          if (lateBy > o.intervalMs * LATE_SHARE) late++;
          maxLateMs = Math.max(maxLateMs, lateBy);
          agent.heartbeat();
          sent++;
          setTimeout(beat, Math.max(0, due - Date.now()));
        };
        setTimeout(beat, Math.max(0, due - Date.now()));
        if (++connected === o.nodes.length) reply({ ev: "connected", n: connected });
      }, ac.signal);
      agents.push(agent);
    }
  };

  process.on("message", (m: { ev: string }) => {
    switch (m.ev) {
      case "start":
        start(m as AgentsStart);
        break;
      case "stats":
        reply({ ev: "stats", sent, late, maxLateMs, failed: agents.filter((a) => a.failed).length, cpu: process.cpuUsage() } satisfies AgentsStats);
        break;
      case "stop":
        beating = false; // each agent's pending timer fires once more and stops
        reply({ ev: "stopped", sent });
        break;
      case "exit":
        agents.forEach((a) => a.end());
        ac.abort();
        comms.forEach((c) => c.close());
        process.exit(0);
    }
  });
}

if (require.main === module) main();
