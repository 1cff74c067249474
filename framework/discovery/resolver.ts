/**
 * Resolves `App.Server.Obj` names through the registry's Query API. One
 * RegistryEndpointSource per Obj (shared by every proxy of that Obj); the
 * Communicator installs a resolver when it has a registry address
 * (`SGRID_REGISTRY` or its `registry` option).
 *
 * Defaults, and why:
 * - refreshIntervalMs 30000: a FindObject every 30 s per Obj, watch or not
 *   (Tars: 60 s, with no watch). Cheap for the registry; bounds staleness if a
 *   watch is silently stuck.
 * - watchRetryMs 500 doubling to maxWatchRetryMs 5000 (±25% jitter): after a
 *   registry restart a proxy is watching again within ~6 s, so it sees a
 *   publish's surge endpoints in time (a 30 s cap left proxies up to 30 s
 *   behind). While the registry is down a failed re-watch costs nothing on
 *   the wire (the channel itself reconnects with its own 2 s-capped backoff);
 *   when it is back, the jitter spreads the re-watches, which the registry
 *   answers from memory.
 * - timeoutMs 3000 for FindObject.
 * - cacheDir `<SGRID_DATA_DIR>/cache/registry` when SGRID_DATA_DIR is set, else
 *   none (memory only). The data dir survives new versions and restarts.
 */
import * as path from "node:path";
import { isObjName, type Endpoint } from "../endpoint";
import { EndpointParseError } from "../errors";
import { getLogger } from "../logger";
import type { ChannelProvider } from "../proxy/invoker";
import type { EndpointSource } from "../proxy/endpoint-source";
import { QueryProxy } from "../gen/sgrid/registry/v1/query.sgrid";
import { LatestWriter } from "../primitives";
import { IDLE_WATCH_DEFAULT_MS, RegistryEndpointSource, type SourceState, type WatchMode } from "./registry-endpoint-source";
import { registryEndpoints, registryMetadata, registryProxy } from "./registry-client";
import { ENV } from "../contract/env";

const log = getLogger("registry.resolver");

export interface RegistryResolverOptions {
  /** Registry endpoints, `host:port[,host:port...]` (SGRID_REGISTRY). Required. */
  registry: string;
  /** Supplies channels (the communicator's, so they are shared). Required. */
  channels: ChannelProvider;
  /** Directory for the on-disk endpoint cache; undefined = memory only. See the default above. */
  cacheDir?: string;
  /** Bearer token for the Query API when the registry requires one (SGRID_REGISTRY_TOKEN). Default none. */
  token?: string;
  /** Periodic FindObject, ms. Default 30000. */
  refreshIntervalMs?: number;
  /** First re-watch delay after the watch broke, ms. Default 500. */
  watchRetryMs?: number;
  /** Longest re-watch delay, ms. Default 30000. */
  maxWatchRetryMs?: number;
  /** FindObject timeout, ms. Default 3000. */
  timeoutMs?: number;
  /** When each Obj's WatchObject stream is open (see WatchMode). Default `always`; a standalone Communicator asks `while-used`. */
  watch?: WatchMode;
  /** How long a `while-used` watch stays open after the last call, ms. Default 1000. */
  idleWatchMs?: number;
}

export const RESOLVER_DEFAULTS = Object.freeze({ refreshIntervalMs: 30_000, watchRetryMs: 500, maxWatchRetryMs: 5_000, timeoutMs: 3_000, watch: "always" as WatchMode, idleWatchMs: IDLE_WATCH_DEFAULT_MS });

/** The cache dir used when none is given: `<SGRID_DATA_DIR>/cache/registry`, or undefined. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const dataDir = env[ENV.DATA_DIR];
  return dataDir ? path.join(dataDir, "cache", "registry") : undefined;
}

export class RegistryResolver {
  private readonly sources = new Map<string, RegistryEndpointSource>();
  private readonly query: QueryProxy;
  private readonly writer: LatestWriter;
  private readonly registryList: readonly Endpoint[];
  private readonly opts: Readonly<Required<Omit<RegistryResolverOptions, "cacheDir" | "token">>> & Pick<RegistryResolverOptions, "cacheDir" | "token">;
  private closed = false;
  private mode: WatchMode;

  /** Throws ConfigError when the registry address does not parse, TypeError for a bad option. */
  constructor(options: RegistryResolverOptions) {
    if (options.watch !== undefined && options.watch !== "always" && options.watch !== "while-used") throw new TypeError(`watch must be "always" or "while-used", got ${String(options.watch)}`);
    for (const k of ["refreshIntervalMs", "watchRetryMs", "maxWatchRetryMs", "timeoutMs", "idleWatchMs"] as const) {
      const v = options[k];
      if (v !== undefined && !(v > 0)) throw new TypeError(`${k} must be > 0, got ${v}`);
    }
    this.opts = Object.freeze({ ...RESOLVER_DEFAULTS, ...stripUndefined(options), registry: options.registry, channels: options.channels });
    this.mode = this.opts.watch;
    this.registryList = registryEndpoints(options.registry);
    this.query = registryProxy(QueryProxy, this.registryList, options.channels, this.opts.timeoutMs);
    this.writer = new LatestWriter((file, err) => log.warn({ file, err: (err as Error).message }, "cannot write the endpoint cache"));
  }

  /** The live endpoint source of an Obj (the same one for every call). Throws EndpointParseError for a bad name. */
  resolve(obj: string): EndpointSource {
    if (this.closed) throw new TypeError("registry resolver is closed");
    if (!isObjName(obj)) throw new EndpointParseError(`"${obj}" is not an App.Server.Obj name`);
    let src = this.sources.get(obj);
    if (!src) {
      src = new RegistryEndpointSource(obj, this.query, registryMetadata(this.opts.token), { ...this.opts, watch: this.mode }, this.opts.cacheDir, this.writer);
      this.sources.set(obj, src);
    }
    return src;
  }

  /** Keeps every Obj's watch open from now on, used or not (an Application hosts this process). */
  keepWatching(): void {
    this.mode = "always";
    for (const s of this.sources.values()) s.keepWatching();
  }

  /** Per-Obj resolution state, for `sgrid.connections`. */
  status(): Array<{ obj: string; state: SourceState; revision: number; endpoints: string[]; lastUpdate: number; lastError?: string }> {
    return [...this.sources.values()].map((s) => s.status());
  }

  /** The registry address list in use. */
  registry(): readonly Endpoint[] {
    return this.registryList;
  }

  /** Resolves when pending cache writes are on disk (tests, shutdown). */
  flush(): Promise<void> {
    return this.writer.flush();
  }

  /** Stops every watch. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.sources.values()) s.close();
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
