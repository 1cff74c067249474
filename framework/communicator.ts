/**
 * Makes proxies (Tars' `Communicator.stringToProxy`) and owns what they
 * share: one channel per endpoint, one proxy per (service, target, strategy).
 */
import { endpointKey, parseProxyTarget, type Endpoint } from "./endpoint";
import { NoEndpointError } from "./errors";
import type { Invoker as InvokerT } from "./proxy/invoker";
import { Invoker, type InvokerOptions } from "./proxy/invoker";
import { StaticEndpointSource, type EndpointSource } from "./proxy/endpoint-source";
import type { ProxyBase, ProxyClass } from "./proxy/proxy-base";
import { resolveClient, type ClientChannel } from "./transport";

/** Resolves an Obj name to a live endpoint source (the registry, in practice). */
export type ObjResolver = (obj: string) => EndpointSource;

export interface CommunicatorOptions {
  /** Resolver for Obj names given without endpoints. Without one, such proxies fail with NO_ENDPOINT. */
  resolver?: ObjResolver;
  /** Defaults for every proxy made here (per-proxy options override). */
  proxy?: InvokerOptions;
}

export type ProxyOptions = InvokerOptions;

export class Communicator {
  private readonly channels = new Map<string, ClientChannel>();
  private readonly proxies = new Map<string, ProxyBase>();
  private readonly sources = new Map<string, EndpointSource>();
  private readonly invokers: InvokerT[] = [];
  private resolver: ObjResolver | undefined;
  private closed = false;

  constructor(private readonly options: CommunicatorOptions = {}) {
    this.resolver = options.resolver;
  }

  /** Sets the resolver used for Obj names (the registry client installs itself here). */
  setResolver(resolver: ObjResolver): void {
    this.resolver = resolver;
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
    const key = `${cls.service.fullName}|${target.trim()}|${strategyKey}|${merged.timeoutMs ?? ""}`;
    const existing = this.proxies.get(key);
    if (existing && typeof merged.strategy !== "object") return existing as P;

    let source: EndpointSource;
    if (parsed.endpoints.length > 0) {
      source = new StaticEndpointSource(parsed.endpoints, parsed.obj ?? target.trim());
    } else {
      const obj = parsed.obj!;
      let shared = this.sources.get(obj);
      if (!shared) {
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
    for (const ch of this.channels.values()) ch.close();
    this.channels.clear();
    this.proxies.clear();
  }
}
