/**
 * What the agent tells the registry about itself: the hello, heartbeats
 * (host facts, load, memory and CPU per instance), and observed states.
 *
 * Observed changes are batched: every change in one turn of the event loop
 * goes out as one ObservedBatch (an instance's classified event, e.g.
 * "crash", wins over a plain change). An instance is reported `active` only
 * once it serves (./readiness.ts): until then `activating`. An install note
 * (./installer.ts) is reported as the instance's lastExitReason while the
 * version it names is not the one running; ports another program holds
 * (./port-guard.ts) as ports_in_use with their reason. Each heartbeat's
 * usage read also yields the pids-limit and CPU-throttling events
 * (./limit-events.ts), sent at once in their own batch.
 */
import type { AgentMessage, Heartbeat, InstanceDesired, InstanceObserved, InstanceUsage, NodeHello } from "sgridnext/gen/sgrid/registry/v1/node";
import type { DeepPartial } from "sgridnext";
import { collectNodeFacts, agentVersion, hostSample } from "../facts";
import type { NodeSupervisor } from "../supervisor";
import type { InstallNote } from "./installer";
import type { PortGuard } from "./port-guard";
import { LimitEvents } from "./limit-events";
import { toInstanceObserved, type ObservedEvent } from "./observed-mapper";
import type { ResolvedNodeAgentOptions } from "./options";
import type { ProbeTarget, Readiness } from "./readiness";

export interface ReporterDeps {
  options: Readonly<ResolvedNodeAgentOptions>;
  supervisor: NodeSupervisor;
  readiness: Readiness;
  desired: ReadonlyMap<string, InstanceDesired>;
  note: (id: string) => InstallNote | undefined;
  /** Ports found taken per instance held back (./port-guard.ts): reported, with the reason. */
  ports: Pick<PortGuard, "portsOf" | "reason">;
  /** Sends to the registry (dropped while disconnected: a reconnect sends the full observed state). */
  send: (msg: DeepPartial<AgentMessage>) => void;
  /** This agent's identity in hellos (./agent-identity.ts). */
  agentId: () => string;
}

export class ObservedReporter {
  private readonly pending = new Map<string, ObservedEvent>();
  private readonly cpuSamples = new Map<string, { nanos: number; at: number }>();
  private flushScheduled = false;
  private readonly limits = new LimitEvents();
  /** Processes started after this are this agent's own: their groups' limit counts are all news. */
  private readonly createdAt = Date.now();

  constructor(private readonly d: ReporterDeps) {}

  /** Queues `id` for the next observed batch (sent at the end of this turn of the event loop). */
  changed(id: string, event: ObservedEvent): void {
    const prev = this.pending.get(id);
    if (prev === undefined || (prev === "" && event !== "")) this.pending.set(id, event);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      const batch = [...this.pending].map(([i, ev]) => this.observedOf(i, ev));
      this.pending.clear();
      if (batch.length > 0) this.d.send({ kind: { $case: "observed", value: { instances: batch, full: false } } });
    });
  }

  /** The instance is gone from this node. */
  forget(id: string): void {
    this.cpuSamples.delete(id);
    this.limits.forget(id);
    this.pending.delete(id);
  }

  /** The observed state of every instance the agent knows, as sent to the registry. */
  fullObserved(): InstanceObserved[] {
    const ids = new Set([...this.d.desired.keys(), ...this.d.supervisor.observed().map((o) => o.instanceId)]);
    return [...ids].map((id) => this.observedOf(id, ""));
  }

  observedOf(id: string, event: string): InstanceObserved {
    const sup = this.d.supervisor.get(id);
    const note = this.d.note(id);
    const inst = this.d.desired.get(id);
    if (sup) {
      const s = sup.observed();
      const reason = note && note.version !== s.version ? note.message : undefined;
      const out = { ...toInstanceObserved(s, { startedAt: sup.handle?.startedAt, reason: this.d.ports.reason(id) ?? reason }), event, portsInUse: this.d.ports.portsOf(id) };
      if (out.state === "active" && s.pid !== null && !this.d.readiness.isReady(id, s.pid, this.probeTargets(id))) out.state = "activating";
      return out;
    }
    return {
      instanceId: Number(id), state: "inactive", pid: 0, version: 0, restarts: 0,
      lastExitReason: this.d.ports.reason(id) ?? note?.message ?? (inst && !inst.patch ? "no patch version assigned to this instance" : ""),
      event, startedAt: 0, portsInUse: this.d.ports.portsOf(id), eventDetail: "",
    };
  }

  /** Where an instance's adapters should accept connections once it serves. */
  private probeTargets(id: string): ProbeTarget[] {
    const inst = this.d.desired.get(id);
    if (!inst) return [];
    return inst.adapters.filter((a) => a.port > 0).map((a) => ({ host: a.host === "" ? this.d.options.address : a.host, port: a.port }));
  }

  async hello(): Promise<NodeHello> {
    const facts = await collectNodeFacts();
    const o = this.d.options;
    return { node: o.name, address: o.address, agentVersion: agentVersion(), hostInfoJson: JSON.stringify(facts), agentId: this.d.agentId(), tags: o.tags };
  }

  /** One heartbeat: load, the HostSample, usage per running instance, and the facts JSON when `withFacts` (see RegistrySessionOptions.heartbeat). */
  async heartbeat(withFacts = true): Promise<Heartbeat> {
    const facts = await collectNodeFacts();
    const usage: InstanceUsage[] = [];
    for (const o of this.d.supervisor.observed()) {
      if (o.pid === null) continue;
      try {
        const u = await this.d.supervisor.usage(o.instanceId);
        const now = Date.now();
        const prev = this.cpuSamples.get(o.instanceId);
        this.cpuSamples.set(o.instanceId, { nanos: u.cpuUsageNanos, at: now });
        const cores = prev && now > prev.at && u.cpuUsageNanos >= prev.nanos ? (u.cpuUsageNanos - prev.nanos) / ((now - prev.at) * 1e6) : 0;
        usage.push({ instanceId: Number(o.instanceId), memoryBytes: u.memoryBytes, cpuCoresUsed: Math.round(cores * 1000) / 1000 });
        const fresh = (this.d.supervisor.get(o.instanceId)?.handle?.startedAt ?? 0) >= this.createdAt;
        const events = this.limits.observe(o.instanceId, u, fresh);
        if (events.length > 0) {
          const instances = events.map((e) => ({ ...this.observedOf(o.instanceId, e.event), eventDetail: e.detail }));
          this.d.send({ kind: { $case: "observed", value: { instances, full: false } } });
        }
      } catch {
        // group gone between the listing and the read: nothing to report
      }
    }
    return { load1: facts.loadAvg[0], factsJson: withFacts ? JSON.stringify(facts) : "", usage, sample: hostSample(facts) };
  }
}
