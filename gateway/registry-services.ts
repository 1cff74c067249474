/**
 * The registry's service map as the gateway's ServiceResolver: one
 * WatchServices stream (the whole map at once, then every change), cached in
 * memory; a lookup never waits for the registry once the first map arrived.
 * The stream is reopened after a failure (1 s, doubling to 10 s) and the last
 * map is kept meanwhile, so the gateway keeps forwarding while the registry
 * is away. Several Objs serving one service: the first by name is used.
 */
import { getLogger, type Communicator, type Metadata } from "sgridnext";
import { registryEndpoints, registryProxy, registryTokenFromEnv } from "sgridnext/internal/discovery/registry-client";
import { QueryProxy } from "sgridnext/gen/sgrid/registry/v1/query.sgrid";
import type { ServiceMap } from "sgridnext/gen/sgrid/registry/v1/query";
import type { ServiceResolver } from "./forwarder";

const log = getLogger("gateway.services");

export interface RegistryServiceResolverOptions {
  /** Registry endpoints (`host:port[,...]`). */
  registry: string;
  communicator: Communicator;
  /** Bearer token for the Query API. Default SGRID_REGISTRY_TOKEN / SGRID_QUERY_TOKEN. */
  token?: string;
  /** How long a lookup waits for the first map, ms. Default 5000. */
  firstMapTimeoutMs?: number;
}

export class RegistryServiceResolver implements ServiceResolver {
  private table = new Map<string, string[]>();
  private received = false;
  private firstWaiters: Array<() => void> = [];
  private readonly listeners = new Set<(services: readonly string[]) => void>();
  private readonly stop = new AbortController();
  private readonly proxy: QueryProxy;
  private readonly metadata: Metadata;
  private readonly firstMapTimeoutMs: number;
  /** Maps received (tests, diagnostics). */
  maps = 0;

  constructor(options: RegistryServiceResolverOptions) {
    this.proxy = registryProxy(QueryProxy, registryEndpoints(options.registry), (ep) => options.communicator.channel(ep), 5000);
    const token = options.token ?? registryTokenFromEnv(process.env);
    this.metadata = token ? { authorization: `Bearer ${token}` } : {};
    this.firstMapTimeoutMs = options.firstMapTimeoutMs ?? 5000;
    void this.watch();
  }

  async find(service: string): Promise<string | undefined> {
    if (!this.received) await this.firstMap();
    return this.table.get(service)?.[0];
  }

  /** The service map as last received: service -> Objs (empty before the first map). */
  snapshot(): Record<string, string[]> {
    return Object.fromEntries([...this.table].sort(([a], [b]) => a.localeCompare(b)));
  }

  onChange(listener: (services: readonly string[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    this.stop.abort();
  }

  private firstMap(): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        const i = this.firstWaiters.indexOf(done);
        if (i >= 0) this.firstWaiters.splice(i, 1);
        resolve();
      };
      const timer = setTimeout(done, this.firstMapTimeoutMs);
      timer.unref?.();
      this.firstWaiters.push(done);
    });
  }

  private apply(map: ServiceMap): void {
    this.maps++;
    const next = new Map(map.services.map((e) => [e.service, e.objs]));
    const changed: string[] = [];
    for (const [s, objs] of next) if ((this.table.get(s) ?? []).join(",") !== objs.join(",")) changed.push(s);
    for (const s of this.table.keys()) if (!next.has(s)) changed.push(s);
    this.table = next;
    if (!this.received) {
      this.received = true;
      const ws = this.firstWaiters;
      this.firstWaiters = [];
      for (const w of ws) w();
    }
    if (changed.length > 0) for (const l of this.listeners) l(changed);
  }

  private async watch(): Promise<void> {
    let backoff = 1000;
    while (!this.stop.signal.aborted) {
      try {
        for await (const map of this.proxy.watchServices({}, { metadata: this.metadata, signal: this.stop.signal })) {
          this.apply(map);
          backoff = 1000;
        }
      } catch (err) {
        if (this.stop.signal.aborted) return;
        log.warn({ err: (err as Error).message }, "gateway: service map watch failed; keeping the last map and retrying");
      }
      await new Promise<void>((r) => { const t = setTimeout(r, backoff); t.unref?.(); this.stop.signal.addEventListener("abort", () => { clearTimeout(t); r(); }, { once: true }); });
      backoff = Math.min(backoff * 2, 10_000);
    }
  }
}
