/**
 * What FindObject and WatchObject answer from: an in-memory snapshot of every
 * Obj's endpoints, loaded with two queries (all endpoints, all servers) and
 * reloaded when the change feed reports a write on `instances`, `nodes` or
 * `servers`. Lookups never touch the database, so Query keeps answering from
 * the last good snapshot while the database is unreachable.
 *
 * Reloads: at most one in flight; changes arriving meanwhile fold into one
 * more reload after it. A failed reload keeps the old snapshot and retries
 * every `retryMs` (default 1000) until one succeeds.
 *
 * Revision of an answer: a 48-bit fingerprint of its content (endpoints in a
 * canonical order). Equal answers have equal revisions on every registry
 * process and across restarts; any change of an endpoint gives a new one.
 * It is not ordered: compare for equality only.
 */
import crypto from "node:crypto";
import { NotFoundError, type Logger } from "sgridnext";
import type { Endpoint } from "sgridnext/gen/sgrid/registry/v1/types";
import type { FindObjectReply } from "sgridnext/gen/sgrid/registry/v1/query";
import type { ObjEndpoint, RegistryStore, Topic } from "../store";
import type { ChangeFeed } from "../server/context";
import { Waiters } from "./waiters";

/** Topics whose writes can change an answer. */
export const ENDPOINT_TOPICS: readonly Topic[] = ["instances", "observed", "nodes", "servers"];

export const ENDPOINT_CACHE_DEFAULTS = Object.freeze({ retryMs: 1000 });

export interface EndpointCacheOptions {
  store: Pick<RegistryStore, "endpoints" | "servers">;
  changes: ChangeFeed;
  log: Logger;
  /** Wait between failed reloads, ms. Default 1000. */
  retryMs?: number;
}

class Snapshot {
  private readonly answers = new Map<string, FindObjectReply>();

  constructor(
    readonly generation: number,
    private readonly byObj: Map<string, ObjEndpoint[]>,
    private readonly servers: Set<string>,
  ) {}

  /** The answer for `obj`; undefined when no instance declares it. */
  answer(obj: string): FindObjectReply | undefined {
    let reply = this.answers.get(obj);
    if (reply) return reply;
    const eps = this.byObj.get(obj);
    if (!eps) return undefined;
    reply = buildReply(obj, eps);
    this.answers.set(obj, reply);
    return reply;
  }

  hasServer(fullServer: string): boolean {
    return this.servers.has(fullServer);
  }

  get objCount(): number {
    return this.byObj.size;
  }

  objs(): IterableIterator<string> {
    return this.byObj.keys();
  }
}

function toWire(e: ObjEndpoint): Endpoint {
  return { obj: e.obj, host: e.host, port: e.port, protocol: e.protocol, weight: e.weight, node: e.node, instanceId: e.instanceId, active: e.active, inactiveReason: e.inactiveReason };
}

function compareEndpoints(a: Endpoint, b: Endpoint): number {
  return a.node < b.node ? -1 : a.node > b.node ? 1
    : a.instanceId - b.instanceId || (a.host < b.host ? -1 : a.host > b.host ? 1 : 0) || a.port - b.port;
}

/** The revision of an answer: 48 bits of a SHA-1 over its canonical form; never 0. */
export function answerRevision(obj: string, active: Endpoint[], inactive: Endpoint[]): number {
  const h = crypto.createHash("sha1");
  h.update(obj);
  for (const list of [active, inactive]) {
    h.update("|");
    for (const e of list) h.update(`${e.node}\u0000${e.instanceId}\u0000${e.host}\u0000${e.port}\u0000${e.protocol}\u0000${e.weight}\u0000${e.inactiveReason};`);
  }
  const n = h.digest().readUIntBE(0, 6);
  return n === 0 ? 1 : n;
}

function buildReply(obj: string, eps: ObjEndpoint[]): FindObjectReply {
  const wire = eps.map(toWire).sort(compareEndpoints);
  const active = wire.filter((e) => e.active);
  const inactive = wire.filter((e) => !e.active);
  return { obj, active, inactive, revision: answerRevision(obj, active, inactive) };
}

/** An empty answer: what a watcher is sent when its Obj disappears (server or instances removed). */
export function emptyReply(obj: string): FindObjectReply {
  return { obj, active: [], inactive: [], revision: answerRevision(obj, [], []) };
}

export class EndpointCache {
  private snapshot: Snapshot | undefined;
  private generation = 0;
  private loading: Promise<void> | undefined;
  private dirty = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private stale = false;
  private closed = false;
  private readonly waiters = new Waiters();
  private readonly retryMs: number;
  private readonly onChange = (topics: Set<Topic>) => {
    if (ENDPOINT_TOPICS.some((t) => topics.has(t))) this.invalidate();
  };

  constructor(private readonly opts: EndpointCacheOptions) {
    this.retryMs = opts.retryMs ?? ENDPOINT_CACHE_DEFAULTS.retryMs;
  }

  /** Loads the first snapshot and follows the change feed. Rejects when the first load fails. */
  async start(): Promise<void> {
    this.opts.changes.on("change", this.onChange);
    try {
      await this.load();
    } catch (err) {
      this.opts.changes.off("change", this.onChange);
      throw err;
    }
  }

  /** Stops following changes and wakes every waiter (watches end). Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    this.opts.changes.off("change", this.onChange);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.wake();
    await this.loading?.catch(() => undefined);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** True while the last reload failed: answers come from an older snapshot. */
  get isStale(): boolean {
    return this.stale;
  }

  /** Snapshot generation; grows by one at every successful reload. */
  get currentGeneration(): number {
    return this.generation;
  }

  /**
   * The answer for a full Obj name (already validated). NOT_FOUND naming the
   * Obj (and whether its server exists) when no instance declares it.
   */
  find(obj: string): FindObjectReply {
    const snap = this.snapshot;
    if (!snap) throw new Error("EndpointCache used before start()");
    const reply = snap.answer(obj);
    if (reply) return reply;
    const server = obj.slice(0, obj.lastIndexOf("."));
    throw new NotFoundError(
      snap.hasServer(server)
        ? `Obj "${obj}" not found: no instance of ${server} declares it`
        : `Obj "${obj}" not found: no server "${server}"`,
      { obj },
    );
  }

  /** Every Obj some instance declares, in the current snapshot. */
  objNames(): string[] {
    return this.snapshot ? [...this.snapshot.objs()] : [];
  }

  /** The answer, or an empty one when the Obj is (no longer) declared. */
  findOrEmpty(obj: string): FindObjectReply {
    return this.snapshot?.answer(obj) ?? emptyReply(obj);
  }

  /**
   * Resolves once the generation is past `after` (at once if it already is),
   * when `signal` aborts, or when the cache closes. Never rejects.
   */
  waitForGeneration(after: number, signal: AbortSignal): Promise<void> {
    return this.waiters.wait(this.generation > after || this.closed, signal);
  }

  /** Number of callers waiting for the next snapshot (open watches). */
  get waiting(): number {
    return this.waiters.size;
  }

  /** Marks the snapshot out of date and reloads (folded with a reload in flight). */
  invalidate(): void {
    if (this.closed) return;
    if (this.loading) {
      this.dirty = true;
      return;
    }
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
    }
    this.load().catch(() => undefined);
  }

  private wake(): void {
    this.waiters.wakeAll();
  }

  private load(): Promise<void> {
    this.dirty = false;
    const p = this.read().then(({ byObj, servers }) => {
      // Generation and snapshot change together, so a waiter woken for a generation finds its snapshot.
      this.snapshot = new Snapshot(++this.generation, byObj, servers);
      if (this.stale) this.opts.log.info("endpoint cache reloaded after database outage");
      this.stale = false;
      this.wake();
    }, (err) => {
      if (!this.stale) this.opts.log.warn({ err: (err as Error)?.message }, "endpoint cache reload failed; answering from the last snapshot");
      this.stale = true;
      // No snapshot yet: the caller (start) gets the error.
      if (!this.snapshot) throw err;
      this.dirty = true;
    }).finally(() => {
      this.loading = undefined;
      if (this.closed || !this.dirty) return;
      if (this.stale) {
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.invalidate();
        }, this.retryMs);
        this.retryTimer.unref?.();
      } else {
        this.invalidate();
      }
    });
    this.loading = p;
    return p;
  }

  private async read(): Promise<{ byObj: Map<string, ObjEndpoint[]>; servers: Set<string> }> {
    const [endpoints, servers] = await Promise.all([this.opts.store.endpoints.list(), this.opts.store.servers.list()]);
    const byObj = new Map<string, ObjEndpoint[]>();
    for (const e of endpoints) {
      const list = byObj.get(e.obj);
      if (list) list.push(e);
      else byObj.set(e.obj, [e]);
    }
    return { byObj, servers: new Set(servers.map((s) => s.fullName)) };
  }
}
