/**
 * The Query API (Sgrid.Registry.QueryObj): which endpoints serve an Obj.
 *
 * FindObject answers from the in-memory {@link EndpointCache} (no database
 * round trip per call). WatchObject sends the current answer at once, then a
 * new one after every snapshot whose answer differs (within the change feed's
 * period plus one reload: well inside 1 s), and ends cleanly when the caller
 * cancels or the registry shuts down. A watched Obj that disappears (server or
 * instances removed) is sent as an empty answer, and the watch goes on.
 *
 * Errors: a malformed name is INVALID_ARGUMENT naming it; an Obj no instance
 * declares is NOT_FOUND naming it; without the configured query token,
 * UNAUTHENTICATED.
 */
import { InvalidArgumentError, UnimplementedError, type DeepPartial, type ServerContext } from "sgridnext";
import { QueryServant } from "sgridnext/gen/sgrid/registry/v1/query.sgrid";
import type { FindObjectReply, FindObjectRequest, FindServiceReply, FindServiceRequest, ServiceMap } from "sgridnext/gen/sgrid/registry/v1/query";
import { validate } from "../store";
import type { Authenticator } from "../server/context";
import type { EndpointCache } from "./endpoint-cache";
import type { ServiceIndex } from "./service-index";

const SERVICE_NAME = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;

/** The validated full name; INVALID_ARGUMENT naming the whole name the caller sent (and the bad part). */
function objName(request: FindObjectRequest): string {
  try {
    const { application, server, obj } = validate.parseFullObjName(request.obj);
    return `${application}.${server}.${obj}`;
  } catch (err) {
    if (!(err instanceof InvalidArgumentError) || err.message.startsWith("invalid Obj name")) throw err;
    const shown = JSON.stringify(request.obj.length > 200 ? `${request.obj.slice(0, 200)}…` : request.obj);
    throw new InvalidArgumentError(`invalid Obj name ${shown}: ${err.message}`, err.data);
  }
}

export class QueryImpl extends QueryServant {
  private watches = 0;

  constructor(private readonly cache: EndpointCache, private readonly auth: Pick<Authenticator, "requireQuery">, private readonly services?: ServiceIndex) {
    super();
  }

  /** Open WatchObject streams on this process. */
  get openWatches(): number {
    return this.watches;
  }

  async findObject(request: FindObjectRequest, ctx: ServerContext): Promise<DeepPartial<FindObjectReply>> {
    this.auth.requireQuery(ctx);
    return this.cache.find(objName(request));
  }

  async *watchObject(request: FindObjectRequest, ctx: ServerContext): AsyncIterable<DeepPartial<FindObjectReply>> {
    this.auth.requireQuery(ctx);
    const obj = objName(request);
    let generation = this.cache.currentGeneration;
    const first = this.cache.find(obj);
    this.watches++;
    try {
      yield first;
      let sent = first.revision;
      while (!ctx.signal.aborted && !this.cache.isClosed) {
        await this.cache.waitForGeneration(generation, ctx.signal);
        if (ctx.signal.aborted || this.cache.isClosed) return;
        generation = this.cache.currentGeneration;
        const next = this.cache.findOrEmpty(obj);
        if (next.revision !== sent) {
          sent = next.revision;
          yield next;
        }
      }
    } finally {
      this.watches--;
    }
  }

  async findService(request: FindServiceRequest, ctx: ServerContext): Promise<DeepPartial<FindServiceReply>> {
    this.auth.requireQuery(ctx);
    if (!SERVICE_NAME.test(request.service)) {
      throw new InvalidArgumentError(`invalid service name ${JSON.stringify(request.service.slice(0, 200))}: expected a fully qualified gRPC service (package.Service)`, { service: request.service.slice(0, 200) });
    }
    return this.serviceIndex().find(request.service);
  }

  async *watchServices(_request: unknown, ctx: ServerContext): AsyncIterable<DeepPartial<ServiceMap>> {
    this.auth.requireQuery(ctx);
    const index = this.serviceIndex();
    this.watches++;
    try {
      let sent = index.revision;
      yield index.current();
      while (!ctx.signal.aborted && !index.isClosed) {
        await index.waitForChange(sent, ctx.signal);
        if (ctx.signal.aborted || index.isClosed) return;
        const next = index.current();
        if (next.revision !== sent) {
          sent = next.revision;
          yield next;
        }
      }
    } finally {
      this.watches--;
    }
  }

  private serviceIndex(): ServiceIndex {
    if (!this.services) throw new UnimplementedError("this registry keeps no service map");
    return this.services;
  }
}
