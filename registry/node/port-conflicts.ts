/**
 * Ports the node really has (the registry's half; the agent's is
 * nodeagent/agent/port-guard.ts). An agent that finds an adapter's port held
 * by another program on its node does not start the instance and reports the
 * port (InstanceObserved.ports_in_use). Here:
 *
 * - a port of the registry's automatic range (PLACEMENT_DEFAULTS.portRange,
 *   20000–29999) is the registry's to move: the adapter gets the lowest port
 *   of the range not used by any instance on the node nor reported taken
 *   there, in one write with an `instance.port_moved` event naming the taken
 *   port, the Obj and the new port; the node's next desired state starts the
 *   instance there;
 * - a port outside the range was chosen by a person: it is left alone (the
 *   agent's reason says why the instance is not started, and it checks
 *   again), and an `instance.port_in_use` event is logged by the session hub.
 *
 * Ports reported taken are remembered per node (in memory, the last
 * MAX_REMEMBERED) so that a move never picks one of them again.
 */
import type { Logger } from "sgridnext";
import type { RegistryStore } from "../store";
import { assignPorts, PLACEMENT_DEFAULTS } from "../admin/placement";

/** Taken ports remembered per node. */
const MAX_REMEMBERED = 256;
/** Attempts when a concurrent placement took the port chosen. */
const ATTEMPTS = 3;

export function inAutoRange(port: number): boolean {
  const [lo, hi] = PLACEMENT_DEFAULTS.portRange;
  return port >= lo && port <= hi;
}

export class PortConflicts {
  private readonly taken = new Map<string, number[]>();

  constructor(private readonly store: RegistryStore, private readonly log: Logger) {}

  /** Handles ports an agent reported taken for one of its instances. Never throws (logs). */
  async reported(node: string, instanceId: number, ports: readonly number[]): Promise<void> {
    if (ports.length === 0) return;
    const remembered = this.taken.get(node) ?? [];
    for (const p of ports) if (!remembered.includes(p)) remembered.push(p);
    this.taken.set(node, remembered.slice(-MAX_REMEMBERED));
    for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
      try {
        await this.move(node, instanceId, new Set(ports));
        return;
      } catch (err) {
        const clash = (err as { code?: string }).code === "ALREADY_EXISTS" && /port/i.test((err as Error).message);
        if (clash && attempt < ATTEMPTS) continue;
        this.log.warn({ node, instanceId, ports, err: (err as Error).message }, "could not move an instance off ports taken on its node");
        return;
      }
    }
  }

  private async move(node: string, instanceId: number, busy: ReadonlySet<number>): Promise<void> {
    await this.store.transaction(async (tx) => {
      const inst = await tx.instances.get(instanceId).catch(() => undefined);
      if (!inst || inst.node !== node) return;
      const moving = inst.adapters.filter((a) => busy.has(a.port) && inAutoRange(a.port));
      // Moved already (a repeated report), or ports a person chose: nothing to do here.
      if (moving.length === 0) return;
      const used = new Set([...(await tx.instances.usedPorts(node)), ...(this.taken.get(node) ?? [])]);
      const adapters = assignPorts(inst.adapters.map((a) => (moving.includes(a) ? { ...a, port: 0 } : a)), used, "", node);
      await tx.instances.updateSpec(inst.id, { adapters });
      const moves = moving.map((a) => `${a.obj} from port ${a.port} to ${adapters.find((b) => b.obj === a.obj)!.port}`);
      const target = `${inst.application}.${inst.server}@${node}`;
      await tx.events.append({
        actor: "registry", kind: "instance.port_moved", target,
        message: `${target} (instance ${inst.id}): port(s) ${moving.map((a) => a.port).join(", ")} taken by another program on node "${node}": moved ${moves.join(", ")}`,
        data: { instanceId: inst.id, moves: moving.map((a) => ({ obj: a.obj, from: a.port, to: adapters.find((b) => b.obj === a.obj)!.port })) },
      });
      this.log.info({ node, instanceId: inst.id, moves }, "instance moved off ports taken on its node");
    });
  }
}
