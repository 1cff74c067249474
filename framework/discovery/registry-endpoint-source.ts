/**
 * The live endpoint list of one Obj, kept up to date from the registry.
 *
 * ```
 *   start ──> load disk cache (if any) ──> WatchObject ──(list)──> apply ──> listeners, disk
 *                                             │   ^
 *                        stream broke / ended │   │ re-watch after backoff
 *                                             v   │ (0.5 s doubling to 30 s, with jitter)
 *                                        FindObject once
 *   every refreshIntervalMs (30 s): FindObject, whether or not the watch is up
 * ```
 *
 * - The watch delivers changes within the registry's 1 s promise; the periodic
 *   FindObject catches a watch that is stuck without having broken, and keeps
 *   the list fresh against a registry without WatchObject (Tars refreshes
 *   every 60 s and has no watch).
 * - The last good list stays in memory when the registry is unreachable, and
 *   is written atomically to `<cacheDir>/<Obj>.json` on every change, so a
 *   process started while the registry is down begins from it.
 * - The registry's `active` list is used while it has an endpoint. When it
 *   has none, the inactive endpoints whose reason is a liveness guess
 *   (`node_offline`, `not_ready`: framework/contract/endpoints.ts) are called
 *   instead, as a fallback (Tars' inactive list, Envoy's panic mode): a
 *   registry that lost track of a node, or an agent that restarted, never
 *   cuts callers off from servants that answer. Drained, stopped and down
 *   endpoints go at once (calls in flight finish).
 * - Only a list with an active endpoint is written to the disk cache: an
 *   empty or all-suspect answer never replaces a good list on disk.
 * - Unchanged endpoints keep the same Endpoint object across updates, so
 *   balancer and failover state survive a change elsewhere in the list.
 */
import { setTimeout as sleep } from "node:timers/promises";
import * as path from "node:path";
import { endpointKey, makeEndpoint, type Endpoint, type Protocol } from "../endpoint";
import { isSuspectReason } from "../contract/endpoints";
import { NotFoundError, SgridError } from "../errors";
import { getLogger } from "../logger";
import type { EndpointSource } from "../proxy/endpoint-source";
import type { Metadata } from "../transport/base";
import type { FindObjectReply } from "../gen/sgrid/registry/v1/query";
import type { Endpoint as RegistryEndpoint } from "../gen/sgrid/registry/v1/types";
import type { QueryProxy } from "../gen/sgrid/registry/v1/query.sgrid";
import { Backoff, MAX_TIMER_MS, PeriodicTask, readFileIfExistsSync, type LatestWriter } from "../primitives";

const log = getLogger("registry.resolver");

/**
 * When the WatchObject stream is open: `always` (from the start: servants, whose servers keep the process up
 * anyway), or `while-used` (while a call is in flight, and `idleWatchMs` after the last one ends: a standalone
 * client, which then exits on its own once its work is done, since an open stream keeps Node's event loop alive).
 */
export type WatchMode = "always" | "while-used";

export interface SourceTiming {
  refreshIntervalMs: number;
  watchRetryMs: number;
  maxWatchRetryMs: number;
  /** Default `always`. */
  watch?: WatchMode;
  /** How long a `while-used` watch stays open after the last call ended, ms. Default 1000. */
  idleWatchMs?: number;
}

export const IDLE_WATCH_DEFAULT_MS = 1000;

/** Where the current list came from (`idle`: the list is kept, no watch while no call is in flight). */
export type SourceState = "starting" | "cache" | "watching" | "polling" | "unreachable" | "idle" | "closed";

const PROTOCOLS: Record<string, { protocol: Protocol; tls: boolean }> = {
  "": { protocol: "grpc", tls: false },
  grpc: { protocol: "grpc", tls: false },
  tcp: { protocol: "grpc", tls: false },
  grpcs: { protocol: "grpc", tls: true },
  ssl: { protocol: "grpc", tls: true },
  sgrid: { protocol: "sgrid", tls: false },
  native: { protocol: "sgrid", tls: false },
  sgrids: { protocol: "sgrid", tls: true },
};

interface CachedList {
  obj: string;
  revision: number;
  savedAt: number;
  endpoints: Array<{ host: string; port: number; protocol: string; tls: boolean; weight: number; node?: string }>;
}

export class RegistryEndpointSource implements EndpointSource {
  private list: readonly Endpoint[] = Object.freeze([]);
  /** Set by the registry's first answer: until then an empty list means "not known yet", not "none". */
  private answered = false;
  /** Calls waiting in untilAnswered(), woken by each answer or failure. */
  private readonly outcomeWaiters = new Set<() => void>();
  private byIdentity = new Map<string, Endpoint>();
  private signature = "";
  private revision = 0;
  private stateNow: SourceState = "starting";
  private lastErrorText: string | undefined;
  private lastUpdate = 0;
  /** Signature of the list last written to the disk cache (or read from it). */
  private persistedSignature = "";
  /** True while the list is the registry's suspect endpoints (no active one left). */
  private fallback = false;
  private readonly listeners = new Set<(eps: readonly Endpoint[]) => void>();
  private readonly abort = new AbortController();
  private readonly refresher: PeriodicTask;
  private watchAbort: AbortController | undefined;
  /** The running watch loop's stop switch, undefined while no watch runs. */
  private watchRun: AbortController | undefined;
  private resident: boolean;
  private users = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private readyResolve!: () => void;
  private readonly readyPromise = new Promise<void>((resolve) => { this.readyResolve = resolve; });
  private readonly warnedProtocols = new Set<string>();

  constructor(
    readonly obj: string,
    private readonly query: QueryProxy,
    private readonly metadata: Metadata,
    private readonly timing: SourceTiming,
    private readonly cacheDir: string | undefined,
    private readonly writer: LatestWriter | undefined,
  ) {
    this.resident = (timing.watch ?? "always") === "always";
    this.loadCache();
    if (this.resident) this.startWatch();
    this.refresher = new PeriodicTask(() => this.refresh("periodic"), { intervalMs: timing.refreshIntervalMs }).start();
  }

  current(): readonly Endpoint[] { return this.list; }
  ready(): Promise<void> { return this.readyPromise; }

  /**
   * For a call that found no endpoint: while the registry has not answered
   * yet (unreachable, or slower than the first FindObject's timeout) and no
   * cached list stands in, waits for its next answer or failure, again and
   * again, until `until` (ms since the epoch) or `signal`. The watch keeps
   * retrying meanwhile (the call holds use()), so a process started while
   * its registry restarts makes its first calls once the registry is back,
   * within their deadlines, instead of failing them at once.
   */
  async untilAnswered(until: number, signal?: AbortSignal): Promise<void> {
    while (!this.answered && this.list.length === 0 && this.stateNow !== "closed" && !signal?.aborted) {
      const left = until - Date.now();
      if (left <= 0) return;
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          signal?.removeEventListener("abort", done);
          this.outcomeWaiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, Math.min(left, MAX_TIMER_MS));
        signal?.addEventListener("abort", done, { once: true });
        this.outcomeWaiters.add(done);
      });
    }
  }

  private wakeWaiters(): void {
    for (const w of [...this.outcomeWaiters]) w();
  }

  onChange(listener: (endpoints: readonly Endpoint[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  describe(): string {
    const why = this.stateNow === "unreachable" && this.lastErrorText ? `: registry unreachable (${this.lastErrorText})` : "";
    return `${this.obj} (from the registry, ${this.stateNow}${this.fallback ? ", no active endpoint: calling suspect ones" : ""}${why})`;
  }

  /** For `sgrid.connections` and tests. */
  status(): { obj: string; state: SourceState; revision: number; endpoints: string[]; fallback: boolean; lastUpdate: number; lastError?: string } {
    return {
      obj: this.obj, state: this.stateNow, revision: this.revision, endpoints: this.list.map(endpointKey), fallback: this.fallback, lastUpdate: this.lastUpdate,
      ...(this.lastErrorText ? { lastError: this.lastErrorText } : {}),
    };
  }

  /** Marks a call in flight (opens the watch if it is not open); returns its release. */
  use(): () => void {
    this.users++;
    if (this.idleTimer !== undefined) { clearTimeout(this.idleTimer); this.idleTimer = undefined; }
    this.startWatch();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.users === 0 && !this.resident) this.scheduleIdleStop();
    };
  }

  /** Watches from now on whether or not calls are in flight (an Application hosts this process). */
  keepWatching(): void {
    this.resident = true;
    if (this.idleTimer !== undefined) { clearTimeout(this.idleTimer); this.idleTimer = undefined; }
    this.startWatch();
  }

  private startWatch(): void {
    if (this.watchRun || this.stateNow === "closed") return;
    const run = new AbortController();
    this.watchRun = run;
    void this.watchLoop(run.signal).finally(() => { if (this.watchRun === run) this.watchRun = undefined; });
  }

  private scheduleIdleStop(): void {
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      if (this.users > 0 || this.resident || !this.watchRun) return;
      this.watchRun.abort();
      this.watchRun = undefined;
      if (this.stateNow === "watching" || this.stateNow === "polling" || this.stateNow === "unreachable") this.stateNow = "idle";
    }, this.timing.idleWatchMs ?? IDLE_WATCH_DEFAULT_MS);
    this.idleTimer.unref();
  }

  close(): void {
    if (this.stateNow === "closed") return;
    this.stateNow = "closed";
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.abort.abort();
    void this.refresher.stop();
    this.listeners.clear();
    this.readyResolve();
    this.wakeWaiters();
  }

  private get cacheFile(): string | undefined {
    return this.cacheDir ? path.join(this.cacheDir, `${this.obj}.json`) : undefined;
  }

  private loadCache(): void {
    const file = this.cacheFile;
    if (!file) return;
    try {
      const text = readFileIfExistsSync(file);
      if (text === undefined) return;
      const cached = JSON.parse(text) as CachedList;
      if (cached.obj !== this.obj || !Array.isArray(cached.endpoints)) return;
      const eps = cached.endpoints.map((e) => makeEndpoint(e.host, e.port, e.protocol as Protocol, { tls: e.tls, weight: e.weight, node: e.node }));
      this.revision = cached.revision;
      this.setList(eps, false);
      this.persistedSignature = this.signature;
      this.stateNow = "cache";
      this.readyResolve();
      log.info({ obj: this.obj, endpoints: eps.length, savedAt: new Date(cached.savedAt).toISOString() }, "endpoints loaded from the disk cache");
    } catch (err) {
      log.warn({ obj: this.obj, file, err: (err as Error).message }, "ignoring an unreadable endpoint cache file");
    }
  }

  private toEndpoint(e: RegistryEndpoint): Endpoint | undefined {
    const kind = PROTOCOLS[e.protocol.toLowerCase()];
    if (!kind) {
      if (!this.warnedProtocols.has(e.protocol)) {
        this.warnedProtocols.add(e.protocol);
        log.warn({ obj: this.obj, protocol: e.protocol }, "skipping endpoints with an unknown protocol");
      }
      return undefined;
    }
    if (!e.host || !(e.port > 0 && e.port < 65536)) return undefined;
    return makeEndpoint(e.host, e.port, kind.protocol, { tls: kind.tls, weight: e.weight, node: e.node || undefined });
  }

  /**
   * Applies a registry answer. Revisions are fingerprints (equality only, not
   * ordered), so a FindObject answer that disagrees with a live watch is not
   * applied (it may be older than the watch's last answer): the watch is
   * restarted instead, and its first answer is the current truth.
   */
  private apply(reply: FindObjectReply, via: "watch" | "find"): void {
    if (this.stateNow === "closed") return;
    if (via === "find" && this.stateNow === "watching") {
      if (reply.revision !== this.revision) {
        log.info({ obj: this.obj }, "FindObject disagrees with the watch; restarting the watch");
        this.watchAbort?.abort();
      }
      return;
    }
    const active = this.toEndpoints(reply.active);
    const fallback = active.length > 0 ? [] : this.toEndpoints(reply.inactive.filter((e) => isSuspectReason(e.inactiveReason)));
    this.revision = reply.revision;
    this.lastUpdate = Date.now();
    this.lastErrorText = undefined;
    if (via === "watch") this.stateNow = "watching";
    else if (this.stateNow !== "watching") this.stateNow = "polling";
    const wasFallback = this.fallback;
    this.fallback = fallback.length > 0;
    if (this.fallback && !wasFallback) {
      log.warn({ obj: this.obj, endpoints: fallback.map(endpointKey), reasons: [...new Set(reply.inactive.map((e) => e.inactiveReason))] },
        "no active endpoint: calling the ones the registry only suspects (node offline, not reported ready)");
    } else if (wasFallback && !this.fallback) {
      log.info({ obj: this.obj, endpoints: active.length }, "active endpoints again");
    }
    this.setList(active.length > 0 ? active : fallback, active.length > 0);
    this.answered = true;
    this.readyResolve();
    this.wakeWaiters();
  }

  private toEndpoints(list: RegistryEndpoint[]): Endpoint[] {
    const eps: Endpoint[] = [];
    for (const e of list) {
      const ep = this.toEndpoint(e);
      if (ep) eps.push(ep);
    }
    return eps;
  }

  private setList(eps: Endpoint[], persist: boolean): void {
    const next = new Map<string, Endpoint>();
    const out: Endpoint[] = [];
    for (const ep of eps) {
      const id = `${endpointKey(ep)}|${ep.weight}|${ep.node ?? ""}`;
      if (next.has(id)) continue;
      const kept = this.byIdentity.get(id) ?? ep;
      next.set(id, kept);
      out.push(kept);
    }
    out.sort((a, b) => (endpointKey(a) < endpointKey(b) ? -1 : 1));
    const signature = [...next.keys()].sort().join(",");
    if (signature !== this.signature) {
      this.signature = signature;
      this.byIdentity = next;
      this.list = Object.freeze(out);
      log.info({ obj: this.obj, endpoints: out.map(endpointKey), revision: this.revision, fallback: this.fallback }, "endpoint list changed");
      for (const l of this.listeners) {
        try { l(this.list); } catch (err) { log.error({ err }, "endpoint listener threw"); }
      }
    }
    const file = this.cacheFile;
    if (persist && signature !== this.persistedSignature && file && this.writer) {
      this.persistedSignature = signature;
      const cached: CachedList = {
        obj: this.obj, revision: this.revision, savedAt: Date.now(),
        endpoints: out.map((e) => ({ host: e.host, port: e.port, protocol: e.protocol, tls: e.tls, weight: e.weight, ...(e.node ? { node: e.node } : {}) })),
      };
      this.writer.write(file, `${JSON.stringify(cached, null, 2)}\n`);
    }
  }

  private noteError(err: unknown, during: string): void {
    const text = err instanceof SgridError ? `${err.code}: ${err.message}` : String(err);
    if (this.lastErrorText !== text) log.warn({ obj: this.obj, during, err: text }, "registry call failed; keeping the last known endpoints");
    this.lastErrorText = text;
    if (this.stateNow !== "closed" && this.stateNow !== "cache") this.stateNow = "unreachable";
    this.wakeWaiters();
  }

  /** One FindObject. Never throws. */
  private async refresh(why: string): Promise<void> {
    if (this.stateNow === "closed") return;
    try {
      const reply = await this.query.findObject({ obj: this.obj }, { metadata: this.metadata, signal: this.abort.signal });
      this.apply(reply, "find");
    } catch (err) {
      if (this.abort.signal.aborted) return;
      if (err instanceof NotFoundError) { this.apply({ obj: this.obj, active: [], inactive: [], revision: 0 }, "find"); return; }
      this.noteError(err, `FindObject (${why})`);
      // Nobody waits forever for a first list: callers get NO_ENDPOINT naming the registry error.
      this.readyResolve();
    }
  }

  private async watchLoop(run: AbortSignal): Promise<void> {
    const backoff = new Backoff({ initialMs: this.timing.watchRetryMs, maxMs: Math.max(this.timing.watchRetryMs, this.timing.maxWatchRetryMs), jitter: 0.25 });
    const signal = AbortSignal.any([this.abort.signal, run]);
    while (!signal.aborted) {
      let received = false;
      const watchAbort = new AbortController();
      this.watchAbort = watchAbort;
      try {
        for await (const reply of this.query.watchObject({ obj: this.obj }, { metadata: this.metadata, signal: AbortSignal.any([signal, watchAbort.signal]) })) {
          received = true;
          backoff.reset();
          this.apply(reply, "watch");
        }
        if (!signal.aborted && !watchAbort.signal.aborted) this.noteError(new Error("watch stream ended"), "WatchObject");
      } catch (err) {
        if (signal.aborted) return;
        if (this.stateNow === "watching") this.stateNow = "polling";
        if (watchAbort.signal.aborted) {
          // ignored: restarted on purpose (see apply)
        } else if (err instanceof NotFoundError) {
          this.apply({ obj: this.obj, active: [], inactive: [], revision: 0 }, "find");
        } else {
          this.noteError(err, "WatchObject");
          this.readyResolve();
        }
      }
      if (signal.aborted) return;
      if (this.stateNow === "watching") this.stateNow = "polling";
      // Restarted on purpose (see apply): re-watch at once.
      if (watchAbort.signal.aborted) { backoff.reset(); continue; }
      // A watch that was up may have missed a change while it broke: ask once at once.
      if (received) await this.refresh("watch broke");
      // Unref'ed: waiting to re-watch is no reason to keep the process alive.
      try { await sleep(backoff.next(), undefined, { signal, ref: false }); } catch { return; }
    }
  }
}
