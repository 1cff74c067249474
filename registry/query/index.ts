/**
 * The Query part of the registry: FindObject / WatchObject served from an
 * in-memory endpoint cache that follows the change feed.
 */
import type { RegistryContext, RegistryPart } from "../server/context";
import { EndpointCache } from "./endpoint-cache";
import { QueryImpl } from "./query-servant";
import { ServiceIndex } from "./service-index";

export { EndpointCache, ENDPOINT_CACHE_DEFAULTS, ENDPOINT_TOPICS, answerRevision, emptyReply } from "./endpoint-cache";
export { QueryImpl } from "./query-servant";
export { ServiceIndex, SERVICE_INDEX_DEFAULTS } from "./service-index";

/** Obj name (short) of the Query servant. */
export const QUERY_OBJ = "QueryObj";

/** Builds the Query part: its servant, and the cache it starts and closes. */
export function queryPart(ctx: RegistryContext): RegistryPart & { cache: EndpointCache; servant: QueryImpl; services: ServiceIndex } {
  const log = ctx.log.child({ part: "query" });
  const cache = new EndpointCache({ store: ctx.store, changes: ctx.changes, log });
  const services = new ServiceIndex({ cache, log });
  const servant = new QueryImpl(cache, ctx.auth, services);
  const close = async () => { await services.close(); await cache.close(); };
  return {
    cache,
    servant,
    services,
    servants: { [QUERY_OBJ]: servant },
    start: async () => { await cache.start(); services.start(); },
    // Ends every watch (they return cleanly) so the port can close at once.
    drain: close,
    stop: close,
  };
}
