/**
 * The gateway's forwarding layer: a call for any fully qualified service goes
 * to the Obj that serves it, through the framework's proxies (balancing,
 * failover, retries of unary calls, deadlines, cancellation and metadata are
 * the proxy layer's), with the message bytes passed through undecoded.
 *
 * API (what the gRPC front, gateway/grpc-front.ts, and the HTTP front use):
 *
 *   const fwd = new Forwarder({ communicator, services });   // services: a ServiceResolver
 *   await fwd.resolve("demo.echo.v1.Echo")   -> { service, obj, kinds }   UNIMPLEMENTED naming it when no Obj serves it
 *   await fwd.methodKind("/demo.echo.v1.Echo/Say") -> "unary" | "server_stream" | "client_stream" | "bidi"
 *   await fwd.unary(path, bytes, call)              -> Buffer
 *   fwd.serverStream(path, bytes, call)             -> AsyncIterable<Buffer>
 *   await fwd.clientStream(path, requests, call)    -> Buffer        (requests: AsyncIterable<Uint8Array>)
 *   fwd.bidi(path, requests, call)                  -> AsyncIterable<Buffer>
 *   fwd.stats                                       -> StatsRegistry: per route (scope = service, method = path)
 *                                                      calls, errors by code, latency histogram; the same
 *                                                      numbers go to the process' serverStats (service monitor)
 *
 *   call: ForwardCall = { metadata, deadline?, signal?, onHeaders?, onTrailers? }
 *     metadata   request metadata to pass on (transport headers are dropped here: see forwardableMetadata)
 *     deadline   absolute epoch ms; undefined = none (a unary call then gets the proxy's default, 3 s)
 *     signal     aborting it cancels the backend call
 *     onHeaders  the backend's response headers, before the first message or the result
 *     onTrailers the backend's trailers, as the call ends (success or failure), before its result or error
 *
 * Errors are the framework's SgridError classes (the backend's own code and
 * status pass through: toGrpcStatus / errorToWire turn them back into a
 * status for the client).
 *
 * Method kinds come from the backend's server reflection (one describe per
 * service and Obj, cached); a method reflection does not describe is
 * forwarded as bidi (the gRPC wire is the same for every kind, but only unary
 * and server-streaming calls are retried on another endpoint).
 */
import { CancelledError, Communicator, InvalidArgumentError, NotFoundError, ReflectionClient, SgridError, StatsRegistry, UnimplementedError, serverStats, type DeepPartial, type Metadata, type MethodStats } from "sgridnext";
import { ProxyBase, type ProxyClass } from "sgridnext/internal/proxy/proxy-base";
import type { CallOptions } from "sgridnext/internal/proxy/call-options";
import type { MessageCodec, MethodDescriptor, MethodKind, ServiceDescriptor } from "sgridnext/internal/transport/base";

/** Service -> Obj. The registry's service map (gateway/registry-services.ts) or a fixed table. */
export interface ServiceResolver {
  /** The Obj (`App.Server.Obj`) that serves `service`, or undefined when none does. */
  find(service: string): Promise<string | undefined>;
  /** Called with the service names whose Obj changed (a new Obj, none any more). Returns an unsubscribe. */
  onChange?(listener: (services: readonly string[]) => void): () => void;
  close?(): void;
}

/** A fixed table (a routes file's `obj:` entries, tests). */
export class StaticServiceResolver implements ServiceResolver {
  private readonly table: Map<string, string>;
  constructor(table: Record<string, string> | Map<string, string>) {
    this.table = table instanceof Map ? new Map(table) : new Map(Object.entries(table));
  }
  async find(service: string): Promise<string | undefined> {
    return this.table.get(service);
  }
  /** The services in the table. */
  services(): string[] {
    return [...this.table.keys()];
  }
}

/** Tries each resolver in turn (a routes file's fixed Objs first, then the registry). */
export class ChainedServiceResolver implements ServiceResolver {
  constructor(private readonly resolvers: readonly ServiceResolver[]) {}
  async find(service: string): Promise<string | undefined> {
    for (const r of this.resolvers) {
      const obj = await r.find(service);
      if (obj !== undefined) return obj;
    }
    return undefined;
  }
  onChange(listener: (services: readonly string[]) => void): () => void {
    const offs = this.resolvers.map((r) => r.onChange?.(listener));
    return () => { for (const off of offs) off?.(); };
  }
  close(): void {
    for (const r of this.resolvers) r.close?.();
  }
}

export interface ForwardCall {
  readonly metadata: Metadata;
  /** Absolute deadline, epoch ms; undefined for none. */
  readonly deadline?: number;
  readonly signal?: AbortSignal;
  readonly onHeaders?: (headers: Metadata) => void;
  readonly onTrailers?: (trailers: Metadata) => void;
}

export interface Route {
  /** Fully qualified service name. */
  readonly service: string;
  /** The Obj that serves it. */
  readonly obj: string;
  /** Method name -> kind, from the backend's reflection (empty when it could not describe the service). */
  readonly kinds: ReadonlyMap<string, MethodKind>;
}

export interface ForwarderOptions {
  communicator: Communicator;
  services: ServiceResolver;
  /** Time allowed for one reflection describe of a service, ms (two tries). Default 1000. */
  describeTimeoutMs?: number;
  /** Record each call in the process' serverStats too (the service monitor, when the gateway runs as a Sgrid server). Default true. */
  reportToServiceMonitor?: boolean;
}

/** The bytes as they are, both ways. */
const PASSTHROUGH: MessageCodec<Uint8Array> = {
  encode: (m) => m as Uint8Array,
  decode: (b) => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength)),
};

/** `/pkg.Service/Method` -> [service, method]; INVALID_ARGUMENT for anything else. */
export function splitPath(path: string): [string, string] {
  const m = /^\/([^/]+)\/([^/]+)$/.exec(path);
  if (!m) throw new InvalidArgumentError(`${JSON.stringify(path.slice(0, 200))} is not a gRPC method path (/package.Service/Method)`, { path: path.slice(0, 200) });
  return [m[1]!, m[2]!];
}

/** Transport headers of the incoming call, not the caller's metadata: never forwarded (the outgoing call sets its own). */
const HOP_KEYS = new Set(["content-type", "te", "host", "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "user-agent", "content-length", "accept-encoding"]);

/**
 * The metadata of an incoming call that goes on to the backend, the one filter of every front and path (gRPC
 * unary fast path and streams, gRPC-Web, HTTP/JSON): everything but transport headers, `grpc-*` keys, Sgrid's
 * own error keys (`sgrid-error-*`: a Sgrid error's code and data travel in those trailers, so a caller must not
 * forge them into the backend call), and the route's bearer token (`authorization`) when `dropAuthorization`.
 */
export function forwardableMetadata(md: Metadata, dropAuthorization: boolean): Metadata {
  const out: Metadata = {};
  for (const key in md) {
    if (key.startsWith(":") || key.startsWith("grpc-") || key.startsWith("sgrid-error-") || HOP_KEYS.has(key) || (dropAuthorization && key === "authorization")) continue;
    out[key] = md[key]!;
  }
  return out;
}

/** What the backend's HTTP/2 server set on its response headers itself (the gateway's server sets its own): never forwarded. */
const OWN_RESPONSE_KEYS: ReadonlySet<string> = new Set(["date", "server"]);

/**
 * The backend's response headers that go on to the gateway's caller: the servant's own keys, without the
 * transport's (`content-type`, `date`, `grpc-*`, ...); undefined when none is left, so no headers frame of its
 * own is needed (grpc-js sends the empty headers with the answer).
 */
export function forwardableHeaders(md: Metadata): Metadata | undefined {
  let out: Metadata | undefined;
  for (const key in md) {
    if (key.startsWith(":") || key.startsWith("grpc-") || HOP_KEYS.has(key) || OWN_RESPONSE_KEYS.has(key)) continue;
    (out ??= {})[key] = md[key]!;
  }
  return out;
}

interface Target {
  readonly route: Route;
  readonly proxy: ProxyBase;
  readonly methods: Map<string, MethodDescriptor<Uint8Array, Uint8Array>>;
}

/**
 * A method path resolved once (its target settled): what a unary call needs, with no lookup, split or await on
 * its way. Valid while its target is the service's current one and the method's kind has not changed.
 */
interface PathEntry {
  readonly service: string;
  readonly name: string;
  readonly target: Promise<Target>;
  readonly t: Target;
  readonly m: MethodDescriptor<Uint8Array, Uint8Array>;
  readonly mine: MethodStats;
  readonly shared: MethodStats | undefined;
}

/** Kept per path at most (a client inventing paths cannot grow it without bound). */
const MAX_PATH_ENTRIES = 10_000;

const NOT_EXPOSED = "(any)";

export class Forwarder {
  /** Per route (scope: service, method: path) calls, errors by code and latency, as the gateway saw them. */
  readonly stats = new StatsRegistry();
  private readonly communicator: Communicator;
  private readonly services: ServiceResolver;
  private readonly describeTimeoutMs: number;
  private readonly report: boolean;
  /** service -> the target it resolved to (dropped when the resolver says the service moved). */
  private readonly targets = new Map<string, Promise<Target>>();
  /** service -> method kinds, once described. */
  private readonly kinds = new Map<string, Map<string, MethodKind>>();
  private readonly proxyClasses = new Map<string, ProxyClass<ProxyBase>>();
  /** path -> its resolution, once its target settled (see PathEntry). */
  private readonly paths = new Map<string, PathEntry>();
  private readonly unsubscribe: (() => void) | undefined;

  constructor(options: ForwarderOptions) {
    this.communicator = options.communicator;
    this.services = options.services;
    this.describeTimeoutMs = options.describeTimeoutMs ?? 1000;
    this.report = options.reportToServiceMonitor ?? true;
    this.unsubscribe = this.services.onChange?.((changed) => { for (const s of changed) this.moved(s); });
  }

  close(): void {
    this.unsubscribe?.();
  }

  /** The resolver says `service` may have moved: the target is dropped only when its Obj is another now. */
  private moved(service: string): void {
    const t = this.targets.get(service);
    if (!t) return;
    Promise.all([t, this.services.find(service)]).then(([target, obj]) => {
      if (target.route.obj !== obj && this.targets.get(service) === t) this.targets.delete(service);
    }, () => { if (this.targets.get(service) === t) this.targets.delete(service); });
  }

  /** Where calls for `service` go. UNIMPLEMENTED naming the service when no Obj serves it. */
  async resolve(service: string): Promise<Route> {
    return (await this.target(service)).route;
  }

  /** The kind of a method (`/pkg.Service/Method`), as the backend's reflection describes it; bidi when it does not. */
  async methodKind(path: string): Promise<MethodKind> {
    const [service, method] = splitPath(path);
    return (await this.target(service)).route.kinds.get(method) ?? "bidi";
  }

  /**
   * The kind of a method when it is known without waiting (its path was resolved before); undefined otherwise
   * (then methodKind() finds out). The gRPC front's unary fast path asks this.
   */
  kindNow(path: string): MethodKind | undefined {
    return this.entryNow(path)?.m.kind;
  }

  /** The path's entry when it is still good; undefined when it must be (re)made. */
  private entryNow(path: string): PathEntry | undefined {
    const e = this.paths.get(path);
    if (e === undefined) return undefined;
    if (this.targets.get(e.service) !== e.target || (e.t.route.kinds.get(e.name) ?? "bidi") !== e.m.kind) {
      this.paths.delete(path);
      return undefined;
    }
    return e;
  }

  /** Makes the path's entry once its target settles. */
  private async entry(path: string): Promise<PathEntry> {
    const now = this.entryNow(path);
    if (now !== undefined) return now;
    const [service, name] = splitPath(path);
    const target = this.target(service);
    const t = await target;
    let m = this.method(t, path, name);
    const kind = t.route.kinds.get(name) ?? "bidi";
    if (m.kind !== kind) {
      // Described since the method was first used: the native transport needs the right kind.
      m = { ...m, kind };
      t.methods.set(name, m);
    }
    const e: PathEntry = { service, name, target, t, m, mine: this.stats.get(service, path), shared: this.report ? serverStats.get(service, path) : undefined };
    if (this.targets.get(service) === target) {
      if (this.paths.size >= MAX_PATH_ENTRIES) this.paths.clear();
      this.paths.set(path, e);
    }
    return e;
  }

  private target(service: string): Promise<Target> {
    let t = this.targets.get(service);
    if (!t) {
      t = this.makeTarget(service);
      this.targets.set(service, t);
      // A failed lookup is not kept: the next call asks again (the Obj may have appeared).
      t.catch(() => { if (this.targets.get(service) === t) this.targets.delete(service); });
    }
    return t;
  }

  private async makeTarget(service: string): Promise<Target> {
    const obj = await this.services.find(service);
    if (obj === undefined) throw new UnimplementedError(`service "${service}" is not served by any Obj known to the gateway`, { service });
    // Kinds are the service's, not the Obj's: kept when the service moves (no describe on the call path again).
    let kinds = this.kinds.get(service);
    if (!kinds) {
      kinds = new Map<string, MethodKind>();
      if (await this.describe(service, obj, kinds)) this.kinds.set(service, kinds);
      else this.describeLater(service, obj, kinds);
    }
    const proxy = this.communicator.stringToProxy(this.proxyClass(service), obj);
    return { route: { service, obj, kinds }, proxy, methods: new Map() };
  }

  /**
   * Fills `kinds` from the Obj's reflection. True when that is settled (described, or the Obj says it cannot
   * describe the service: bidi for good); false when reflection could not be reached (asked again later).
   * Two tries of describeTimeoutMs each: a reflection stream is not retried by the proxy, and one endpoint
   * may be going away.
   */
  private async describe(service: string, obj: string, kinds: Map<string, MethodKind>): Promise<boolean> {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const described = await new ReflectionClient(this.communicator, obj, { timeoutMs: this.describeTimeoutMs }).describeService(service);
        for (const m of described.methods) kinds.set(m.name, m.kind);
        return true;
      } catch (err) {
        // The Obj does not describe the service (hand-written descriptor): forward as bidi.
        if (err instanceof NotFoundError) return true;
        if (!(err instanceof SgridError)) throw err;
      }
    }
    return false;
  }

  /** Describes again in the background until it settles; calls meanwhile go as bidi. */
  private describeLater(service: string, obj: string, kinds: Map<string, MethodKind>): void {
    const timer = setTimeout(() => {
      this.describe(service, obj, kinds).then((settled) => {
        if (settled) this.kinds.set(service, kinds); else this.describeLater(service, obj, kinds);
      }, () => undefined);
    }, 1000);
    timer.unref?.();
  }

  /** A proxy class per service, with no generated methods: calls go through its invoker with passthrough codecs. */
  private proxyClass(service: string): ProxyClass<ProxyBase> {
    let cls = this.proxyClasses.get(service);
    if (!cls) {
      const descriptor: ServiceDescriptor = { name: service.slice(service.lastIndexOf(".") + 1), fullName: service, methods: {} };
      cls = class GatewayProxy extends ProxyBase { static readonly service = descriptor; };
      this.proxyClasses.set(service, cls);
    }
    return cls;
  }

  private method(t: Target, path: string, name: string): MethodDescriptor<Uint8Array, Uint8Array> {
    let m = t.methods.get(name);
    if (!m) {
      m = { name, path, kind: t.route.kinds.get(name) ?? "bidi", requestCodec: PASSTHROUGH, responseCodec: PASSTHROUGH, idempotent: false };
      t.methods.set(name, m);
    }
    return m;
  }

  private async prepare(path: string): Promise<{ t: Target; m: MethodDescriptor<Uint8Array, Uint8Array> }> {
    return this.entry(path);
  }

  /** Records a unary call of a resolved path. */
  private recordUnary(e: PathEntry, started: number, err: unknown): void {
    const ms = performance.now() - started;
    e.mine.record(ms, err);
    e.shared?.record(ms, err);
  }

  /**
   * Counts a call the gateway refused before forwarding it (its route's auth
   * or rate limit) in the route's stats; `path` undefined: a service no route
   * exposes, counted under one `(not exposed)` entry so that callers making
   * up names cannot grow the stats.
   */
  refused(path: string | undefined, err: unknown): void {
    this.recorder(path ?? NOT_EXPOSED)(err);
  }

  private recorder(path: string): (err: unknown) => void {
    const [service] = path === NOT_EXPOSED ? ["(not exposed)"] : splitPath(path);
    const mine: MethodStats = this.stats.get(service, path);
    const shared: MethodStats | undefined = this.report ? serverStats.get(service, path) : undefined;
    const started = performance.now();
    let done = false;
    return (err) => {
      if (done) return;
      done = true;
      const ms = performance.now() - started;
      mine.record(ms, err);
      shared?.record(ms, err);
    };
  }

  private options(call: ForwardCall, streaming: boolean): CallOptions {
    const timeoutMs = call.deadline === undefined || !Number.isFinite(call.deadline) ? undefined : Math.max(1, call.deadline - Date.now());
    const o: CallOptions = { metadata: call.metadata, signal: call.signal, onHeaders: call.onHeaders, onTrailers: call.onTrailers };
    if (timeoutMs !== undefined) o.timeoutMs = timeoutMs;
    else if (streaming) delete o.timeoutMs;
    return o;
  }

  /**
   * One unary call. A path resolved before goes straight to the proxy's invoker: no split, lookup or await of
   * its own, one then() for the stats (the gRPC front's fast path, and the HTTP front's unary calls).
   */
  unary(path: string, request: Uint8Array, call: ForwardCall): Promise<Buffer> {
    const started = performance.now();
    const e = this.entryNow(path);
    if (e === undefined) return this.unaryResolving(path, request, call, started);
    return this.unaryOn(e, request, call, started);
  }

  private unaryOn(e: PathEntry, request: Uint8Array, call: ForwardCall, started: number): Promise<Buffer> {
    return e.t.proxy.$invoker.unary(e.m, request as DeepPartial<Uint8Array>, this.options(call, false)).then(
      (res) => { this.recordUnary(e, started, undefined); return res as Buffer; },
      (err: unknown) => { this.recordUnary(e, started, err); throw err; },
    );
  }

  /** The first call of a path (or the first after its service moved): resolves it, then calls. */
  private async unaryResolving(path: string, request: Uint8Array, call: ForwardCall, started: number): Promise<Buffer> {
    let e: PathEntry;
    try {
      e = await this.entry(path);
    } catch (err) {
      // No target (UNIMPLEMENTED, a bad path): counted under the path as before.
      this.recorder(path)(err);
      throw err;
    }
    return this.unaryOn(e, request, call, started);
  }

  serverStream(path: string, request: Uint8Array, call: ForwardCall): AsyncIterable<Buffer> {
    return this.streamed(path, (t, m) => t.proxy.$invoker.serverStream(m, request as DeepPartial<Uint8Array>, this.options(call, true)));
  }

  async clientStream(path: string, requests: AsyncIterable<Uint8Array>, call: ForwardCall): Promise<Buffer> {
    const done = this.recorder(path);
    try {
      const { t, m } = await this.prepare(path);
      const res = await t.proxy.$invoker.clientStream(m, requests as AsyncIterable<DeepPartial<Uint8Array>>, this.options(call, true));
      done(undefined);
      return res as Buffer;
    } catch (err) {
      done(err);
      throw err;
    }
  }

  bidi(path: string, requests: AsyncIterable<Uint8Array>, call: ForwardCall): AsyncIterable<Buffer> {
    return this.streamed(path, (t, m) => t.proxy.$invoker.bidi(m, requests as AsyncIterable<DeepPartial<Uint8Array>>, this.options(call, true)));
  }

  private async *streamed(path: string, open: (t: Target, m: MethodDescriptor<Uint8Array, Uint8Array>) => AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
    const done = this.recorder(path);
    let ended = false;
    try {
      const { t, m } = await this.prepare(path);
      for await (const msg of open(t, m)) yield msg as Buffer;
      ended = true;
      done(undefined);
    } catch (err) {
      ended = true;
      done(err);
      throw err;
    } finally {
      // The consumer stopped early (return()): counted as cancelled by the client.
      if (!ended) done(new CancelledError("cancelled by the client"));
    }
  }
}
