/**
 * The service map (FindService, WatchServices): which Objs serve a fully
 * qualified gRPC service, learnt by asking each Obj's servants through server
 * reflection (list_services) — so no servant has to declare anything, and any
 * gRPC servant with reflection (a Sgrid one always has it) is found.
 *
 * After every endpoint-cache snapshot, each Obj with an active endpoint (its
 * gRPC one, else a native one: Sgrid servants serve reflection on both) whose
 * answer changed since it was last asked (a new instance, a publish, a
 * restart) is asked again, one Obj at a time per round, each ask bounded by
 * `askTimeoutMs`. An Obj that could not be asked keeps what it answered last
 * and is asked again after `retryMs`; an Obj no longer declared, or left with
 * no active endpoint, leaves the map. Health and reflection (`grpc.health.*`,
 * `grpc.reflection.*`: every servant has them) are left out.
 *
 * Revision: grows by one at every change of the map on this process (not
 * comparable across processes; watchers compare for equality).
 */
import { Communicator, NotFoundError, ReflectionClient, type Logger } from "sgridnext";
import type { FindServiceReply, ServiceMap } from "sgridnext/gen/sgrid/registry/v1/query";
import type { EndpointCache } from "./endpoint-cache";
import { Waiters } from "./waiters";

/** Health and reflection: every servant has them, so no one Obj is "the" server of them. */
function isInfrastructure(service: string): boolean {
  return service.startsWith("grpc.health.") || service.startsWith("grpc.reflection.");
}

export const SERVICE_INDEX_DEFAULTS = Object.freeze({ askTimeoutMs: 2000, retryMs: 5000 });

export interface ServiceIndexOptions {
  cache: EndpointCache;
  log: Logger;
  askTimeoutMs?: number;
  retryMs?: number;
}

interface Known {
  /** The endpoint answer's revision when the Obj was asked. */
  revision: number;
  services: string[];
}

export class ServiceIndex {
  private readonly known = new Map<string, Known>();
  private map: ServiceMap = { services: [], revision: 1 };
  private byService = new Map<string, string[]>();
  private readonly comm = new Communicator({ registry: "" });
  private readonly stop = new AbortController();
  private readonly waiters = new Waiters();
  private loop: Promise<void> | undefined;
  private readonly askTimeoutMs: number;
  private readonly retryMs: number;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryNow: (() => void) | undefined;

  constructor(private readonly opts: ServiceIndexOptions) {
    this.askTimeoutMs = opts.askTimeoutMs ?? SERVICE_INDEX_DEFAULTS.askTimeoutMs;
    this.retryMs = opts.retryMs ?? SERVICE_INDEX_DEFAULTS.retryMs;
  }

  /** Follows the endpoint cache (started already) in the background. */
  start(): void {
    this.loop ??= this.run().catch((err: unknown) => this.opts.log.error({ err }, "service index stopped"));
  }

  async close(): Promise<void> {
    this.stop.abort();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryNow?.();
    this.wake();
    await this.loop;
    this.comm.close();
  }

  get isClosed(): boolean {
    return this.stop.signal.aborted;
  }

  get revision(): number {
    return this.map.revision;
  }

  current(): ServiceMap {
    return this.map;
  }

  /** The Objs serving `service`; NOT_FOUND naming it when none does. */
  find(service: string): FindServiceReply {
    const objs = this.byService.get(service);
    if (!objs || objs.length === 0) throw new NotFoundError(`no Obj serves gRPC service "${service}" (no active gRPC endpoint's reflection lists it)`, { service });
    return { service, objs, revision: this.map.revision };
  }

  /** Resolves when the revision is past `after`, `signal` aborts, or the index closes. Never rejects. */
  waitForChange(after: number, signal: AbortSignal): Promise<void> {
    return this.waiters.wait(this.map.revision !== after || this.isClosed, signal);
  }

  private wake(): void {
    this.waiters.wakeAll();
  }

  private async run(): Promise<void> {
    const signal = this.stop.signal;
    let generation = -1;
    while (!signal.aborted) {
      if (this.opts.cache.currentGeneration === generation) {
        // Wait for a new snapshot, or the retry of an Obj that could not be asked.
        await Promise.race([
          this.opts.cache.waitForGeneration(generation, signal),
          new Promise<void>((r) => { this.retryNow = r; }),
        ]);
        this.retryNow = undefined;
        if (signal.aborted) return;
      }
      generation = this.opts.cache.currentGeneration;
      const failed = await this.round();
      if (failed && !signal.aborted && !this.retryTimer) {
        this.retryTimer = setTimeout(() => { this.retryTimer = undefined; generation = -1; this.retryNow?.(); }, this.retryMs);
        this.retryTimer.unref?.();
      }
    }
  }

  /** Asks every Obj whose endpoints changed; returns true when some could not be asked. */
  private async round(): Promise<boolean> {
    const cache = this.opts.cache;
    let changed = false;
    let failed = false;
    const seen = new Set<string>();
    for (const obj of cache.objNames()) {
      if (this.stop.signal.aborted) return false;
      const answer = cache.findOrEmpty(obj);
      // A gRPC endpoint when the Obj has one; else a native one (servants serve reflection on both).
      const ep = answer.active.find((e) => e.protocol === "grpc") ?? answer.active.find((e) => e.protocol === "sgrid");
      if (!ep) continue;
      seen.add(obj);
      const prev = this.known.get(obj);
      if (prev && prev.revision === answer.revision) continue;
      try {
        const reflection = new ReflectionClient(this.comm, `${obj}@${ep.protocol === "sgrid" ? "sgrid" : "tcp"} -h ${ep.host} -p ${ep.port}`, { timeoutMs: this.askTimeoutMs });
        const services = (await reflection.listServices()).filter((s) => !isInfrastructure(s)).sort();
        if (!prev || prev.services.join(",") !== services.join(",")) changed = true;
        this.known.set(obj, { revision: answer.revision, services });
      } catch (err) {
        failed = true;
        this.opts.log.debug({ obj, err: (err as Error).message }, "service index: reflection of an Obj failed; asking again later");
      }
    }
    for (const obj of [...this.known.keys()]) {
      if (!seen.has(obj)) { this.known.delete(obj); changed = true; }
    }
    if (changed) this.rebuild();
    return failed;
  }

  private rebuild(): void {
    const by = new Map<string, string[]>();
    for (const [obj, k] of this.known) {
      for (const s of k.services) {
        const list = by.get(s);
        if (list) list.push(obj); else by.set(s, [obj]);
      }
    }
    for (const list of by.values()) list.sort();
    this.byService = by;
    const services = [...by.keys()].sort().map((service) => ({ service, objs: by.get(service)! }));
    this.map = { services, revision: this.map.revision + 1 };
    this.wake();
  }
}
