/**
 * Ports the node really has: before an instance is started, each adapter's
 * `host:port` is tried with a listen of our own (then closed at once). A port
 * another program holds (EADDRINUSE) means the servant would only fail to
 * bind and crash-loop; it is not started. The agent reports the ports in
 * InstanceObserved.ports_in_use with a reason naming them; the registry moves
 * ports of its automatic range elsewhere (registry/node/port-conflicts.ts),
 * and the next desired state starts the instance on a free one. A port
 * outside that range (chosen by a person) is waited for: the agent checks
 * again on its retry backoff, and never spawns into a taken port.
 *
 * Only checked when no process of the instance runs (its own servant holds
 * its ports while it serves, and the supervisor stops it before a restart).
 */
import * as net from "node:net";

export interface PortTarget {
  obj: string;
  host: string;
  port: number;
}

/** Whether `host:port` can be listened on now; false only for EADDRINUSE (other errors are the servant's to report). */
export function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once("error", (err: NodeJS.ErrnoException) => resolve(err.code !== "EADDRINUSE"));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** The targets whose port another program holds. */
export async function portsInUse(targets: readonly PortTarget[]): Promise<PortTarget[]> {
  const busy: PortTarget[] = [];
  for (const t of targets) if (t.port > 0 && !(await portFree(t.host, t.port))) busy.push(t);
  return busy;
}

/** What the agent found per instance, for its observed reports. */
export class PortGuard {
  private readonly busy = new Map<string, PortTarget[]>();

  /**
   * Before an instance is (re)started: when it is to run and no process of
   * it runs (`toStart`), probes its adapters. `hold`: do not start it now
   * (check again later); `changed`: what the agent reports about it changed
   * (`first`: its ports were just found taken, worth an event).
   */
  async beforeStart(id: string, adapters: ReadonlyArray<{ obj: string; host: string; port: number }>, address: string, toStart: boolean): Promise<{ hold: boolean; changed: boolean; first: boolean }> {
    const had = this.portsOf(id).length > 0;
    if (!toStart) return { hold: false, changed: this.clear(id), first: false };
    const busy = await this.check(id, adapters.map((a) => ({ obj: a.obj, host: a.host || address, port: a.port })));
    if (busy.length === 0) return { hold: false, changed: had, first: false };
    return { hold: true, changed: true, first: !had };
  }

  /** Probes `targets` for instance `id`; resolves with the busy ones (remembered until the next check or clear). */
  async check(id: string, targets: readonly PortTarget[]): Promise<PortTarget[]> {
    const found = await portsInUse(targets);
    if (found.length > 0) this.busy.set(id, found);
    else this.busy.delete(id);
    return found;
  }

  /** Ports of `id` found in use at the last check (empty when none). */
  portsOf(id: string): number[] {
    return (this.busy.get(id) ?? []).map((t) => t.port);
  }

  /** The reason shown for an instance not started because of taken ports, or undefined. */
  reason(id: string): string | undefined {
    const b = this.busy.get(id);
    if (!b || b.length === 0) return undefined;
    const list = b.map((t) => `port ${t.port} (${t.obj}) on ${t.host}`).join(", ");
    return `${list} ${b.length === 1 ? "is" : "are"} in use by another program on this node: not started (reported to the registry, which moves ports it assigned; checking again)`;
  }

  clear(id: string): boolean {
    return this.busy.delete(id);
  }
}
