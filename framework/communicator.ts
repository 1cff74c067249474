/**
 * Makes proxies (Tars' `Communicator.stringToProxy`) and owns what they
 * share: one channel per endpoint, one proxy per (service, target, strategy),
 * one endpoint source per Obj name.
 *
 * Bare Obj names are resolved through the registry when a registry address
 * is known (`options.registry`, else `SGRID_REGISTRY`): the RegistryResolver
 * is created on the first such proxy and installs itself with setResolver.
 */
import { endpointKey, parseProxyTarget, type Endpoint } from "./endpoint";
import { NoEndpointError } from "./errors";
import type { Invoker as InvokerT } from "./proxy/invoker";
import { Invoker, type InvokerOptions } from "./proxy/invoker";
import { StaticEndpointSource, type EndpointSource } from "./proxy/endpoint-source";
import type { ProxyBase, ProxyClass } from "./proxy/proxy-base";
import { defaultCacheDir, RegistryResolver, type RegistryResolverOptions } from "./discovery/resolver";
import { registryTokenFromEnv } from "./discovery/registry-client";
import { resolveClient, type ClientChannel } from "./transport";
import { ENV } from "./contract/env";

/** Resolves an Obj name to a live endpoint source (the registry, in practice). */
export type ObjResolver = (obj: string) => EndpointSource;

export interface CommunicatorOptions {
  /** Resolver for Obj names given without endpoints. Without one, such proxies fail with NO_ENDPOINT. */
  resolver?: ObjResolver;
  /** Defaults for every proxy made here (per-proxy options override). */
  proxy?: InvokerOptions;
  /** Registry endpoints for resolving Obj names (`host:port[,...]`). Default `SGRID_REGISTRY`; "" disables. */
  registry?: string;
  /** Bearer token for the registry's Query API. Default `SGRID_REGISTRY_TOKEN`, else `SGRID_QUERY_TOKEN`. */
  registryToken?: string;
  /** Directory of the on-disk endpoint cache. Default `<SGRID_DATA_DIR>/cache/registry` (none without SGRID_DATA_DIR). */
  cacheDir?: string;
  /** Timing of the registry resolver (refresh, re-watch backoff, idle watch); see RESOLVER_DEFAULTS. */
  resolverOptions?: Pick<RegistryResolverOptions, "refreshIntervalMs" | "watchRetryMs" | "maxWatchRetryMs" | "timeoutMs" | "idleWatchMs">;
  /**
   * Keep each Obj's registry watch open even while no call is in flight. Default false: a standalone client
   * watches only while it calls (and a second after), so a script exits on its own once its work is done.
   * An Application turns it on for its communicator (its servers keep the process up anyway).
   */
  keepWatching?: boolean;
  /** Environment to read the defaults above from. Default process.env. */
  env?: NodeJS.ProcessEnv;
}

export type ProxyOptions = InvokerOptions;

export class Communicator {
  private readonly channels = new Map<string, ClientChannel>();
  private readonly proxies = new Map<string, ProxyBase>();
  private readonly sources = new Map<string, EndpointSource>();
  private readonly invokers: InvokerT[] = [];
  private resolver: ObjResolver | undefined;
  private registryResolver: RegistryResolver | undefined;
  private closed = false;
  private keepWatchingNow: boolean;

  constructor(private readonly options: CommunicatorOptions = {}) {
    this.resolver = options.resolver;
    this.keepWatchingNow = options.keepWatching ?? false;
  }

  /** Keeps registry watches open whether or not calls are in flight (see CommunicatorOptions.keepWatching). */
  keepWatching(): void {
    this.keepWatchingNow = true;
    this.registryResolver?.keepWatching();
  }

  /** Sets the resolver used for Obj names (the registry client installs itself here). */
  setResolver(resolver: ObjResolver): void {
    this.resolver = resolver;
  }

  /** The registry address in use for Obj names, or undefined. */
  registryAddress(): string | undefined {
    const r = this.options.registry ?? (this.options.env ?? process.env)[ENV.REGISTRY];
    return r && r.trim() ? r.trim() : undefined;
  }

  /**
   * The registry resolver, created on first use when a registry address is
   * known and no custom resolver was set. Throws ConfigError when the
   * address does not parse.
   */
  registry(): RegistryResolver | undefined {
    if (this.registryResolver || this.resolver) return this.registryResolver;
    const address = this.registryAddress();
    if (!address) return undefined;
    const env = this.options.env ?? process.env;
    const r = new RegistryResolver({
      ...this.options.resolverOptions,
      registry: address,
      channels: (ep) => this.channel(ep),
      cacheDir: this.options.cacheDir ?? defaultCacheDir(env),
      token: this.options.registryToken ?? registryTokenFromEnv(env),
      watch: this.keepWatchingNow ? "always" : "while-used",
    });
    this.registryResolver = r;
    this.resolver = (obj) => r.resolve(obj);
    return r;
  }

  /** The shared channel of an endpoint, created on first use. */
  channel(endpoint: Endpoint): ClientChannel {
    const key = endpointKey(endpoint);
    let ch = this.channels.get(key);
    if (!ch) {
      ch = resolveClient(endpoint.protocol).createChannel(endpoint);
      this.channels.set(key, ch);
    }
    return ch;
  }

  /**
   * A typed proxy for `target`: an Obj name (`Demo.HelloServer.GreeterObj`,
   * resolved through the registry), `Obj@tcp -h host -p port:...` (Tars form)
   * or `host:port,host:port`. The same proxy is returned for the same class,
   * target and strategy. Throws EndpointParseError for a target that does not
   * parse, TypeError for a bad option.
   */
  stringToProxy<P extends ProxyBase>(cls: ProxyClass<P>, target: string, options: ProxyOptions = {}): P {
    if (this.closed) throw new TypeError("communicator is closed");
    if (typeof cls !== "function" || !cls.service) throw new TypeError("stringToProxy needs a generated <Service>Proxy class");
    const parsed = parseProxyTarget(target);
    const merged: InvokerOptions = { ...this.options.proxy, ...options };
    const strategyKey = typeof merged.strategy === "string" ? merged.strategy : merged.strategy ? "custom" : "default";
    const key = `${cls.service.fullName}|${target.trim()}|${strategyKey}|${merged.timeoutMs ?? ""}|${merged.compression ?? ""}|${merged.inheritCallContext === false ? "own" : ""}`;
    const existing = this.proxies.get(key);
    if (existing && typeof merged.strategy !== "object") return existing as P;

    let source: EndpointSource;
    if (parsed.endpoints.length > 0) {
      source = new StaticEndpointSource(parsed.endpoints, parsed.obj ?? target.trim());
    } else {
      const obj = parsed.obj!;
      let shared = this.sources.get(obj);
      if (!shared) {
        if (!this.resolver) this.registry();
        if (!this.resolver) {
          throw new NoEndpointError(`cannot resolve ${obj}: no registry configured (set SGRID_REGISTRY, or give endpoints as ${obj}@tcp -h host -p port)`);
        }
        shared = this.resolver(obj);
        this.sources.set(obj, shared);
      }
      source = shared;
    }
    const invoker = new Invoker(source, (ep) => this.channel(ep), cls.service.fullName, merged);
    this.invokers.push(invoker);
    const proxy = new cls(invoker);
    this.proxies.set(key, proxy);
    return proxy;
  }

  /** Channels and their endpoints, for `sgrid.connections`. */
  connections(): Array<{ endpoint: string; ready: boolean }> {
    return [...this.channels.entries()].map(([k, ch]) => ({ endpoint: k, ready: ch.isReady() }));
  }

  /** Closes every channel and endpoint source. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const inv of this.invokers) inv.close();
    for (const s of this.sources.values()) s.close();
    this.registryResolver?.close();
    for (const ch of this.channels.values()) ch.close();
    this.channels.clear();
    this.proxies.clear();
  }
}
