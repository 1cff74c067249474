/**
 * Degraded mode's memory: the last good lists of nodes, servers (with the
 * applications) and instances this registry process read from the
 * database, each with the time it was read, and every patch version it has
 * seen (a patch id's version never changes).
 *
 * Kept fresh by every full read the Admin API makes and, after a change-feed
 * event on their topics, by a background read at most every `refreshMs`.
 * While the database cannot be read (a read fails DATABASE_UNAVAILABLE, or
 * the change feed's last poll failed after such a failure), ListNodes,
 * ListServers and ListInstances answer from here, flagged `degraded` with
 * the time of the data and the reason; nothing else is answered from
 * memory, and nothing is written. A read that fails for another reason, or
 * an outage before anything was remembered, fails as it did.
 */
import { PeriodicTask, type Logger } from "sgridnext";
import type { Degraded } from "sgridnext/gen/sgrid/registry/v1/admin";
import { DatabaseUnavailableError } from "../../errors";
import type { ChangeFeed } from "../../server/context";
import type { RegistryStore, Topic } from "../../store";
import type { InstanceRecord, NodeRecord, ServerRecord } from "../../store/records";

export const FLEET_MEMORY_DEFAULTS = Object.freeze({
  /** Least time between two background reads of the lists, ms. */
  refreshMs: 5_000,
});

/** Topics whose writes change the remembered lists. */
const MEMORY_TOPICS: readonly Topic[] = ["nodes", "servers", "instances", "observed", "patches"];

/** A read's value, and `degraded` when it came from memory. */
export interface Answer<T> {
  value: T;
  degraded?: Degraded;
}

export interface ServerLists {
  servers: ServerRecord[];
  applications: string[];
}

export type InstanceFilter = { application?: string; server?: string; node?: string };

class Slot<T> {
  value: T | undefined;
  at = 0;

  remember(value: T, at: number): void {
    // An older read finishing late never replaces a newer one.
    if (at < this.at) return;
    this.value = value;
    this.at = at;
  }
}

export interface FleetMemoryDeps {
  store: RegistryStore;
  changes: ChangeFeed;
  log: Logger;
  refreshMs?: number;
}

export class FleetMemory {
  private readonly nodesSlot = new Slot<NodeRecord[]>();
  private readonly serversSlot = new Slot<ServerLists>();
  private readonly instancesSlot = new Slot<InstanceRecord[]>();
  /** Patch id -> version, of every patch listed by this process. */
  readonly patchVersions = new Map<number, number>();
  /** The last DATABASE_UNAVAILABLE message, while the outage lasts. */
  private outage: string | undefined;
  private dirty = true;
  private readonly task: PeriodicTask;
  private readonly onChange = (topics: Set<Topic>): void => {
    if (MEMORY_TOPICS.some((t) => topics.has(t))) this.dirty = true;
  };

  constructor(private readonly deps: FleetMemoryDeps) {
    const refreshMs = deps.refreshMs ?? FLEET_MEMORY_DEFAULTS.refreshMs;
    this.task = new PeriodicTask(() => this.refreshIfDirty(), {
      intervalMs: refreshMs,
      initialDelayMs: 0,
      onError: (err) => deps.log.debug({ err: (err as Error)?.message }, "reading the fleet lists into memory failed"),
    });
  }

  /** Follows the change feed and reads the lists now and after changes. Idempotent. */
  start(): void {
    if (this.task.running) return;
    this.deps.changes.on("change", this.onChange);
    this.task.start();
  }

  /** Stops the background reads; waits for one in flight. Idempotent. */
  async stop(): Promise<void> {
    this.deps.changes.off("change", this.onChange);
    await this.task.stop();
  }

  /** True while the database is known to be unreachable: reads go to memory at once instead of waiting for the store to fail. */
  get unavailable(): boolean {
    if (this.outage !== undefined && this.deps.changes.healthy) this.outage = undefined;
    return this.outage !== undefined;
  }

  nodes(): Promise<Answer<NodeRecord[]>> {
    return this.through(this.nodesSlot, () => this.deps.store.nodes.list(), (v) => v);
  }

  /** Every server (or those of `application`) and every application name. */
  servers(application = ""): Promise<Answer<ServerLists>> {
    const { store } = this.deps;
    const readAll = async (): Promise<ServerLists> => {
      const [servers, applications] = await Promise.all([store.servers.list(), store.servers.listApplications()]);
      return { servers, applications };
    };
    if (!application) return this.through(this.serversSlot, readAll, (v) => v);
    return this.through(this.serversSlot, async () => ({ servers: await store.servers.list({ application }), applications: await store.servers.listApplications() }),
      (v) => ({ servers: v.servers.filter((s) => s.application === application), applications: v.applications }), false);
  }

  /** Instances matching `filter` (every one without). */
  instances(filter: InstanceFilter = {}): Promise<Answer<InstanceRecord[]>> {
    const full = !filter.application && !filter.server && !filter.node;
    const match = (i: InstanceRecord): boolean => (!filter.application || i.application === filter.application)
      && (!filter.server || i.server === filter.server) && (!filter.node || i.node === filter.node);
    return this.through(this.instancesSlot, () => this.deps.store.instances.list(full ? {} : filter), (v) => v.filter(match), full);
  }

  /** The remembered record of a server (for its type while degraded). */
  server(application: string, name: string): ServerRecord | undefined {
    return this.serversSlot.value?.servers.find((s) => s.application === application && s.name === name);
  }

  /**
   * `read()` from the database; remembered when `full` (an unfiltered list).
   * While the database is unavailable: `pick(remembered)` flagged degraded,
   * or the store's error when nothing is remembered.
   */
  private async through<T, R>(slot: Slot<T>, read: () => Promise<R>, pick: (v: T) => R, full = true): Promise<Answer<R>> {
    if (this.unavailable && slot.value !== undefined) return this.fromMemory(slot, pick, this.outage!);
    const at = Date.now();
    try {
      const value = await read();
      this.outage = undefined;
      if (full) slot.remember(value as unknown as T, at);
      return { value };
    } catch (err) {
      if (!(err instanceof DatabaseUnavailableError)) throw err;
      this.outage = err.message;
      if (slot.value === undefined) throw err;
      return this.fromMemory(slot, pick, err.message);
    }
  }

  private fromMemory<T, R>(slot: Slot<T>, pick: (v: T) => R, reason: string): Answer<R> {
    return { value: pick(slot.value as T), degraded: { asOf: slot.at, reason } };
  }

  private async refreshIfDirty(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    try {
      const [nodes, servers, instances] = await Promise.all([this.nodes(), this.servers(), this.instances()]);
      if (nodes.degraded || servers.degraded || instances.degraded) {
        this.dirty = true;
        return;
      }
      // Patch versions of what instances run and servers default to, for answers while degraded.
      const wanted = new Set<number>();
      for (const i of instances.value) for (const id of [i.desiredPatchId, i.observedPatchId]) if (id !== null && !this.patchVersions.has(id)) wanted.add(id);
      for (const s of servers.value.servers) if (s.defaultPatchId !== null && !this.patchVersions.has(s.defaultPatchId)) wanted.add(s.defaultPatchId);
      if (wanted.size === 0) return;
      const owners = new Set<string>();
      for (const i of instances.value) if ([i.desiredPatchId, i.observedPatchId].some((id) => id !== null && wanted.has(id))) owners.add(`${i.application}\u0000${i.server}`);
      for (const s of servers.value.servers) if (s.defaultPatchId !== null && wanted.has(s.defaultPatchId)) owners.add(`${s.application}\u0000${s.name}`);
      for (const key of owners) {
        const [application, server] = key.split("\u0000") as [string, string];
        for (const p of await this.deps.store.patches.list(application, server)) this.patchVersions.set(p.id, p.version);
      }
    } catch (err) {
      this.dirty = true;
      throw err;
    }
  }
}
