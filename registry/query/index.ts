/**
 * The Query part of the registry: FindObject / WatchObject served from an
 * in-memory endpoint cache that follows the change feed.
 */
import type { RegistryContext, RegistryPart } from "../server/context";
import { EndpointCache } from "./endpoint-cache";
import { QueryImpl } from "./query-servant";

export { EndpointCache, ENDPOINT_CACHE_DEFAULTS, ENDPOINT_TOPICS, answerRevision, emptyReply } from "./endpoint-cache";
export { QueryImpl } from "./query-servant";

/** Obj name (short) of the Query servant. */
export const QUERY_OBJ = "QueryObj";

/** Builds the Query part: its servant, and the cache it starts and closes. */
export function queryPart(ctx: RegistryContext): RegistryPart & { cache: EndpointCache; servant: QueryImpl } {
  const cache = new EndpointCache({ store: ctx.store, changes: ctx.changes, log: ctx.log.child({ part: "query" }) });
  const servant = new QueryImpl(cache, ctx.auth);
  return {
    cache,
    servant,
    servants: { [QUERY_OBJ]: servant },
    start: () => cache.start(),
    // Ends every watch (they return cleanly) so the port can close at once.
    drain: () => cache.close(),
    stop: () => cache.close(),
  };
}
