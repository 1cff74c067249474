/**
 * How the framework reaches the registry: the registry's own endpoints come
 * from `SGRID_REGISTRY` (or an option) as `host:port[,host:port...]`, with the
 * usual scheme prefixes, or in the Tars form `Sgrid.Registry.QueryObj@tcp -h
 * host -p port:...`. The registry cannot itself be resolved by name.
 *
 * The proxies made here are built directly on an Invoker (not through a
 * Communicator) so that resolution never recurses into itself; they share the
 * communicator's channels through the ChannelProvider they are given.
 */
import { parseProxyTarget, type Endpoint } from "../endpoint";
import { ConfigError, EndpointParseError } from "../errors";
import { Invoker, type ChannelProvider } from "../proxy/invoker";
import { StaticEndpointSource } from "../proxy/endpoint-source";
import type { ProxyBase, ProxyClass } from "../proxy/proxy-base";
import type { Metadata } from "../transport/base";
import { ENV } from "../contract/env";

/** Parses the registry address list. Throws ConfigError naming the value when it does not parse. */
export function registryEndpoints(registry: string): Endpoint[] {
  let parsed;
  try {
    parsed = parseProxyTarget(registry);
  } catch (err) {
    throw new ConfigError(`registry address "${registry}" does not parse: ${(err as EndpointParseError).message}`);
  }
  if (parsed.endpoints.length === 0) {
    throw new ConfigError(`registry address "${registry}" names no endpoint (expected host:port[,host:port...])`);
  }
  return parsed.endpoints;
}

/**
 * The bearer token for the registry's Query and Config reads, from the
 * environment: SGRID_REGISTRY_TOKEN, else SGRID_QUERY_TOKEN (the name the
 * registry and the CLI use), so one name set on a host serves every part.
 */
export function registryTokenFromEnv(env: NodeJS.ProcessEnv): string | undefined {
  const t = env[ENV.REGISTRY_TOKEN] || env[ENV.QUERY_TOKEN];
  return t ? t : undefined;
}

/** Metadata for registry calls: `authorization: Bearer <token>` when a token is set. */
export function registryMetadata(token: string | undefined): Metadata {
  return Object.freeze(token ? { authorization: `Bearer ${token}` } : {}) as Metadata;
}

/** A typed proxy of one registry service over the given registry endpoints. */
export function registryProxy<P extends ProxyBase>(cls: ProxyClass<P>, endpoints: readonly Endpoint[], channels: ChannelProvider, timeoutMs: number): P {
  const source = new StaticEndpointSource(endpoints, `registry ${cls.service.fullName}`);
  // Health thresholds: a dead registry endpoint is set aside after 2 failures so that a
  // second registry (when listed) takes the traffic quickly. Registry calls are the framework's own, not
  // the servant call's that happens to be running when a proxy is first made: a watch opened then must not
  // end at that call's deadline or be cancelled with it (framework/servant/call-context.ts).
  return new cls(new Invoker(source, channels, cls.service.fullName, { timeoutMs, inheritCallContext: false, health: { consecutiveFailures: 2, retryAfterMs: 2_000, maxRetryAfterMs: 30_000 } }));
}
