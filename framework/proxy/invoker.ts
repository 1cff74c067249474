/**
 * The engine behind every generated proxy: picks an endpoint (load
 * balancing), calls it through the shared channel for that endpoint, sets
 * failing endpoints aside (EndpointHealth) and retries where it is safe.
 *
 * Retry rule:
 * - UNAVAILABLE (the servant could not be reached, or the connection went away
 *   before it answered) is retried at once on another endpoint, for unary and
 *   server-streaming calls that have not yet received a message;
 * - INTERNAL, ABORTED and RESOURCE_EXHAUSTED are retried only for methods
 *   marked idempotent (`option idempotency_level`), and never once the
 *   deadline has passed; every other status (CANCELLED, DEADLINE_EXCEEDED,
 *   UNKNOWN, business errors) is never retried (table in ERRORS.md);
 * - client-streaming and bidi calls are never retried (their input is consumed).
 */
import { performance } from "node:perf_hooks";
import { endpointKey, type Endpoint } from "../endpoint";
import { CancelledError, DeadlineExceededError, NoEndpointError, SgridError, UnavailableError } from "../errors";
import { currentCallContext, enableCallContext } from "../servant/call-context";
import { clientStats, type MethodStats } from "../stats";
import { Status } from "../status";
import type { ClientChannel, Compression, DeepPartial, Metadata, MethodDescriptor, OutgoingCall, ServerContext, UnaryOutcome } from "../transport/base";
import { checkMetadata } from "../transport/metadata";
import { clientSpan, traceClientCall, type ClientTrace } from "../tracing/tracing";
import type { CallOptions } from "./call-options";
import { EndpointHealth, type EndpointHealthOptions } from "./endpoint-health";
import type { EndpointSource } from "./endpoint-source";
import { resolve as resolveStrategy, type LoadBalancer, type PickContext } from "./strategies";

export interface InvokerOptions {
  /** Default per-call timeout, ms. Default 3000. */
  timeoutMs?: number;
  /** Load-balancing strategy name or instance. Default `round-robin`. */
  strategy?: string | LoadBalancer;
  /** Attempts per call, the first included. Default 3 (bounded by the number of endpoints). */
  maxAttempts?: number;
  /** Failover thresholds. */
  health?: EndpointHealthOptions;
  /** Prefer native (`sgrid`) endpoints when any is usable. Default true. */
  preferNative?: boolean;
  /** Compression of request messages on gRPC endpoints (`gzip`); a call's own option wins. Default none. */
  compression?: Compression;
  /**
   * Calls made while a servant serves a call inherit that call's deadline, cancellation and trace headers.
   * Default true; false for a proxy whose calls are never made on behalf of the call being served (the
   * framework's own agent channel): it neither reads the call context nor turns it on
   * (servant/call-context.ts).
   */
  inheritCallContext?: boolean;
}

export const INVOKER_DEFAULTS = Object.freeze({ timeoutMs: 3000, maxAttempts: 3, preferNative: true });

/** Supplies the shared channel for an endpoint. */
export type ChannelProvider = (endpoint: Endpoint) => ClientChannel;

const EMPTY_METADATA: Metadata = Object.freeze({}) as Metadata;
/** The pick context of calls without a hash key (most): no object per call. */
const NO_HASH_KEY: PickContext = Object.freeze({});

/**
 * Statuses worth another endpoint for an idempotent method (ERRORS.md, "Retries"): the endpoint was
 * unhealthy or contended. Not UNKNOWN (the outcome is unknown, and a plain peer's UNKNOWN is usually a
 * bug that repeats), not CANCELLED / DEADLINE_EXCEEDED (the caller's budget is spent), and not the
 * business statuses (NOT_FOUND, INVALID_ARGUMENT, ...), which another endpoint answers the same way.
 */
const IDEMPOTENT_RETRY: ReadonlySet<Status> = new Set([Status.UNAVAILABLE, Status.INTERNAL, Status.ABORTED, Status.RESOURCE_EXHAUSTED]);

function isNotDelivered(err: unknown): boolean {
  return err instanceof SgridError && err.status === Status.UNAVAILABLE;
}

function countsAgainstEndpoint(err: unknown): boolean {
  return err instanceof SgridError && (err.status === Status.UNAVAILABLE || err.status === Status.DEADLINE_EXCEEDED);
}

export class Invoker {
  readonly health: EndpointHealth;
  readonly strategy: LoadBalancer;
  private readonly timeoutMs: number;
  private readonly maxAttempts: number;
  private readonly preferNative: boolean;
  private readonly compression: Compression | undefined;
  private readonly inherit: boolean;
  private endpoints: readonly Endpoint[] = [];
  private readonly unsubscribe: () => void;
  private readonly statsByMethod = new Map<MethodDescriptor, MethodStats>();
  private lastMethod: MethodDescriptor | undefined;
  private lastStats: MethodStats | undefined;

  constructor(
    readonly source: EndpointSource,
    private readonly channels: ChannelProvider,
    private readonly scope: string,
    options: InvokerOptions = {},
  ) {
    if (options.timeoutMs !== undefined && !(options.timeoutMs > 0)) throw new TypeError(`timeoutMs must be > 0, got ${options.timeoutMs}`);
    this.timeoutMs = options.timeoutMs ?? INVOKER_DEFAULTS.timeoutMs;
    this.maxAttempts = Math.max(1, options.maxAttempts ?? INVOKER_DEFAULTS.maxAttempts);
    this.preferNative = options.preferNative ?? INVOKER_DEFAULTS.preferNative;
    if (options.compression !== undefined && options.compression !== "gzip" && options.compression !== "identity") {
      throw new TypeError(`compression must be "gzip" or "identity", got ${JSON.stringify(options.compression)}`);
    }
    this.compression = options.compression;
    this.inherit = options.inheritCallContext ?? true;
    // This proxy may be called from inside a servant method: from now on calls carry their context across awaits.
    if (this.inherit) enableCallContext();
    this.strategy = resolveStrategy(options.strategy);
    this.health = new EndpointHealth(options.health);
    this.setEndpoints(source.current());
    this.unsubscribe = source.onChange((eps) => this.setEndpoints(eps));
  }

  private setEndpoints(eps: readonly Endpoint[]): void {
    const sorted = [...eps].sort((a, b) => (endpointKey(a) < endpointKey(b) ? -1 : 1));
    this.endpoints = sorted;
    this.strategy.update(sorted);
    this.health.retain(sorted);
  }

  /** The endpoints this proxy would call now. */
  currentEndpoints(): readonly Endpoint[] {
    return this.endpoints;
  }

  close(): void {
    this.unsubscribe();
  }

  /**
   * Waits for a first endpoint list; throws NoEndpointError when there is none. While the registry has
   * not answered (unreachable, or slow), waits for it within the call's deadline (a call without one, a
   * stream, within the proxy's timeoutMs), so a registry restart does not fail a new process's first calls.
   */
  private async firstEndpoints(call: OutgoingCall): Promise<void> {
    await this.source.ready();
    if (this.endpoints.length === 0 && this.source.untilAnswered !== undefined) {
      const wait = Number.isFinite(this.timeoutMs) ? this.timeoutMs : INVOKER_DEFAULTS.timeoutMs;
      const until = Number.isFinite(call.deadline) ? call.deadline : Date.now() + wait;
      await this.source.untilAnswered(until, call.signal);
      if (this.endpoints.length === 0 && call.signal?.aborted) throw new CancelledError(`call cancelled by the caller while waiting for the registry: ${this.source.describe()}`);
    }
    if (this.endpoints.length === 0) throw new NoEndpointError(`no active endpoint for ${this.source.describe()}`);
  }

  /** Synchronous on the hot path (endpoints known); a promise only before the first resolution. */
  private pick(hashKey: string | undefined, tried: Set<Endpoint> | undefined, call: OutgoingCall): Endpoint | Promise<Endpoint> {
    if (this.endpoints.length === 0) return this.firstEndpoints(call).then(() => this.pickNow(hashKey, tried));
    return this.pickNow(hashKey, tried);
  }

  private pickNow(hashKey: string | undefined, tried: Set<Endpoint> | undefined): Endpoint {
    let candidates = this.health.usable(this.endpoints, tried);
    if (candidates.length === 0) candidates = this.health.usable(this.endpoints);
    if (this.preferNative && candidates.length > 1) {
      const native = candidates.filter((e) => e.protocol === "sgrid");
      if (native.length > 0 && native.length < candidates.length) candidates = native;
    }
    // One candidate (a proxy to one servant, or all but one set aside): it is the answer whatever the strategy.
    if (candidates.length === 1) return candidates[0]!;
    return this.strategy.pick(candidates, hashKey === undefined ? NO_HASH_KEY : { hashKey });
  }

  /**
   * Unary calls get the default timeout; streams only an explicit one (they may legitimately run for hours).
   * Throws InvalidArgumentError for metadata gRPC would not carry (before anything is sent).
   */
  private outgoing(method: MethodDescriptor, options: CallOptions | undefined, incoming: ServerContext | undefined, streaming = false, now?: number): OutgoingCall {
    const timeout = options?.timeoutMs ?? (streaming ? undefined : this.timeoutMs);
    let deadline = timeout === undefined ? Number.POSITIVE_INFINITY : (now ?? Date.now()) + timeout;
    if (incoming?.deadline !== undefined && incoming.deadline < deadline) deadline = incoming.deadline;
    let signal = options?.signal;
    if (incoming) signal = signal ? AbortSignal.any([signal, incoming.signal]) : incoming.signal;
    const compression = options?.compression ?? this.compression;
    if (options === undefined || (options.metadata === undefined && options.onHeaders === undefined && options.onTrailers === undefined)) {
      return compression === undefined ? { deadline, metadata: EMPTY_METADATA, signal } : { deadline, metadata: EMPTY_METADATA, signal, compression };
    }
    if (options.metadata !== undefined) checkMetadata(options.metadata, `request metadata of ${method.path}`);
    return { deadline, metadata: options.metadata ?? EMPTY_METADATA, signal, onHeaders: options.onHeaders, onTrailers: options.onTrailers, compression };
  }

  /** The call being served by the caller's async flow, when this proxy inherits it. */
  private incoming(): ServerContext | undefined {
    return this.inherit ? currentCallContext() : undefined;
  }

  private canRetry(method: MethodDescriptor, err: unknown, attempt: number, call: OutgoingCall): boolean {
    if (attempt >= Math.min(this.maxAttempts, Math.max(1, this.endpoints.length) + 1)) return false;
    if (call.signal?.aborted || Date.now() >= call.deadline) return false;
    if (err instanceof CancelledError || err instanceof DeadlineExceededError) return false;
    if (isNotDelivered(err)) return true;
    return method.idempotent && err instanceof SgridError && IDEMPOTENT_RETRY.has(err.status);
  }

  /** Bookkeeping after a successful call. */
  private succeeded(ep: Endpoint, stats: MethodStats, started: number): void {
    this.health.success(ep);
    stats.record(performance.now() - started, undefined);
  }

  /** Bookkeeping after an attempt failed (only reachability failures count against the endpoint). */
  private failed(ep: Endpoint, err: unknown): void {
    if (countsAgainstEndpoint(err)) this.health.failure(ep); else this.health.success(ep);
  }

  /** Records a final failure and returns the error to throw. */
  private gaveUp(stats: MethodStats, started: number, err: unknown): unknown {
    stats.record(performance.now() - started, err);
    return withCallerStack(err);
  }

  /**
   * A unary call. Not an async function: a UnaryCall object follows it through its attempts and settles the
   * one promise the caller gets; on a channel with unaryInto (the native one) the channel reports into it, so
   * a call costs that promise and no other (an async function paid its own promise, an await's and the
   * channel's).
   */
  unary<Req, Res>(method: MethodDescriptor<Req, Res>, request: DeepPartial<Req>, options?: CallOptions): Promise<Res> {
    let call: OutgoingCall;
    let trace: ClientTrace | undefined;
    // One clock read for the deadline and for the first attempt's check of it (UnaryOutcome.clock).
    const now = Date.now();
    try {
      const incoming = this.incoming();
      call = this.outgoing(method, options, incoming, false, now);
      trace = clientSpan(method.path, call, incoming);
    } catch (err) {
      return Promise.reject(err);
    }
    const run = new UnaryCall(this, method, request, options?.hashKey, trace === undefined ? call : trace.call, trace, this.statsOf(method), this.source.use?.());
    run.clock = now;
    const p = new Promise<Res>(captureResolvers);
    run.resolveFn = nextResolve;
    run.rejectFn = nextReject;
    nextResolve = undefined;
    nextReject = undefined;
    run.next();
    return p;
  }

  /** The method's client stats (one registry entry per scope and method, cached here by descriptor). */
  private statsOf(method: MethodDescriptor): MethodStats {
    if (method === this.lastMethod) return this.lastStats!;
    let stats = this.statsByMethod.get(method);
    if (stats === undefined) {
      stats = clientStats.get(this.scope, method.path);
      this.statsByMethod.set(method, stats);
    }
    this.lastMethod = method;
    this.lastStats = stats;
    return stats;
  }

  /** For UnaryCall: the next endpoint to try. */
  pickFor(hashKey: string | undefined, tried: Set<Endpoint> | undefined, call: OutgoingCall): Endpoint | Promise<Endpoint> {
    return this.pick(hashKey, tried, call);
  }

  /** For UnaryCall: the channel of `ep`, its call begun in the endpoint's health. */
  beginOn(ep: Endpoint): ClientChannel {
    this.health.begin(ep);
    return this.channels(ep);
  }

  /** For UnaryCall: bookkeeping after a success. */
  succeededOn(ep: Endpoint, stats: MethodStats, started: number): void {
    this.succeeded(ep, stats, started);
  }

  /** For UnaryCall: bookkeeping after a failed attempt; true when the call should try again. */
  failedOn(method: MethodDescriptor, ep: Endpoint, err: unknown, attempt: number, call: OutgoingCall): boolean {
    this.failed(ep, err);
    return this.canRetry(method, err, attempt, call);
  }

  /** For UnaryCall: records the final failure. */
  gaveUpOn(stats: MethodStats, started: number, err: unknown): void {
    stats.record(performance.now() - started, err);
  }

  serverStream<Req, Res>(method: MethodDescriptor<Req, Res>, request: DeepPartial<Req>, options?: CallOptions): AsyncIterable<Res> {
    return { [Symbol.asyncIterator]: () => this.serverStreamCall(method, request, options) };
  }

  private async *serverStreamCall<Req, Res>(method: MethodDescriptor<Req, Res>, request: DeepPartial<Req>, options?: CallOptions): AsyncGenerator<Res> {
    const incoming = this.incoming();
    const trace = traceClientCall(method.path, this.outgoing(method, options, incoming, true), incoming);
    const call = trace.call;
    const stats = clientStats.get(this.scope, method.path);
    const started = performance.now();
    let tried: Set<Endpoint> | undefined;
    const release = this.source.use?.();
    try {
      for (let attempt = 1; ; attempt++) {
        const ep = await this.pick(options?.hashKey, tried, call);
        this.health.begin(ep);
        trace.to(ep);
        let received = false;
        try {
          for await (const msg of this.channels(ep).serverStream(method, request, call)) {
            received = true;
            yield msg;
          }
          this.succeeded(ep, stats, started);
          return;
        } catch (err) {
          this.failed(ep, err);
          if (!received && this.canRetry(method, err, attempt, call)) { (tried ??= new Set()).add(ep); continue; }
          throw this.gaveUp(stats, started, err);
        }
      }
    } catch (err) {
      trace.end(err);
      throw err;
    } finally {
      trace.end();
      release?.();
    }
  }

  async clientStream<Req, Res>(method: MethodDescriptor<Req, Res>, requests: AsyncIterable<DeepPartial<Req>>, options?: CallOptions): Promise<Res> {
    const input = new RequestStream(requests);
    const release = this.source.use?.();
    let trace: ClientTrace | undefined;
    try {
      const incoming = this.incoming();
      trace = traceClientCall(method.path, this.outgoing(method, options, incoming, true), incoming);
      const call = trace.call;
      const stats = clientStats.get(this.scope, method.path);
      const started = performance.now();
      const ep = await this.pick(options?.hashKey, undefined, call);
      this.health.begin(ep);
      trace.to(ep);
      try {
        const res = await this.channels(ep).clientStream(method, input, call);
        this.succeeded(ep, stats, started);
        return res;
      } catch (err) {
        this.failed(ep, err);
        throw this.gaveUp(stats, started, err);
      }
    } catch (err) {
      trace?.end(err);
      throw err;
    } finally {
      trace?.end();
      release?.();
      input.close();
    }
  }

  bidi<Req, Res>(method: MethodDescriptor<Req, Res>, requests: AsyncIterable<DeepPartial<Req>>, options?: CallOptions): AsyncIterable<Res> {
    return { [Symbol.asyncIterator]: () => this.bidiCall(method, requests, options) };
  }

  private async *bidiCall<Req, Res>(method: MethodDescriptor<Req, Res>, requests: AsyncIterable<DeepPartial<Req>>, options?: CallOptions): AsyncGenerator<Res> {
    const input = new RequestStream(requests);
    const release = this.source.use?.();
    let trace: ClientTrace | undefined;
    try {
      const incoming = this.incoming();
      trace = traceClientCall(method.path, this.outgoing(method, options, incoming, true), incoming);
      const call = trace.call;
      const stats = clientStats.get(this.scope, method.path);
      const started = performance.now();
      const ep = await this.pick(options?.hashKey, undefined, call);
      this.health.begin(ep);
      trace.to(ep);
      try {
        yield* this.channels(ep).bidi(method, input, call);
        this.succeeded(ep, stats, started);
      } catch (err) {
        this.failed(ep, err);
        throw this.gaveUp(stats, started, err);
      }
    } catch (err) {
      trace?.end(err);
      throw err;
    } finally {
      trace?.end();
      release?.();
      input.close();
    }
  }
}

const noop = (): void => undefined;

// A promise's resolve/reject, handed out by one shared executor: no closure per call.
let nextResolve: ((value: any) => void) | undefined;
let nextReject: ((err: unknown) => void) | undefined;
function captureResolvers(resolve: (value: any) => void, reject: (err: unknown) => void): void {
  nextResolve = resolve;
  nextReject = reject;
}

/**
 * One unary call of a proxy through its attempts (Invoker.unary): picks an endpoint, calls it, retries
 * where the rule allows, and settles the caller's promise, with the same bookkeeping, in the same order, as
 * an async function with a retry loop would (stats and endpoint health, then the trace's end and the
 * source's release, then the caller's promise). It is the channel's UnaryOutcome: a reply is handled
 * inside the channel's socket callback, so nothing here throws there; an error is handled a microtask
 * later, as an awaited rejection was (a retry made from inside a connection's close would otherwise
 * reach that connection again before it has left its channel).
 */
class UnaryCall implements UnaryOutcome {
  resolveFn: ((value: any) => void) | undefined;
  rejectFn: ((err: unknown) => void) | undefined;
  /** UnaryOutcome.clock: the Date.now() the call's deadline came from, until the first attempt is sent. */
  clock: number | undefined;
  private attempt = 0;
  private ep: Endpoint | undefined;
  private tried: Set<Endpoint> | undefined;
  private readonly started = performance.now();
  private settled = false;

  constructor(
    private readonly inv: Invoker,
    private readonly method: MethodDescriptor,
    private readonly request: unknown,
    private readonly hashKey: string | undefined,
    private readonly call: OutgoingCall,
    private readonly trace: ClientTrace | undefined,
    private readonly stats: MethodStats,
    private readonly release: (() => void) | undefined,
  ) {}

  /** Starts the next attempt. Never throws. */
  next(): void {
    this.attempt++;
    let ep: Endpoint | Promise<Endpoint>;
    try {
      ep = this.inv.pickFor(this.hashKey, this.tried, this.call);
    } catch (err) {
      this.end(err, false);
      return;
    }
    if (ep instanceof Promise) {
      this.clock = undefined;
      ep.then((e) => this.send(e), (err: unknown) => this.end(err, false));
    } else this.send(ep);
  }

  private send(ep: Endpoint): void {
    this.ep = ep;
    const call = this.call;
    try {
      const ch = this.inv.beginOn(ep);
      this.trace?.to(ep);
      if (ch.unaryInto !== undefined) ch.unaryInto(this.method, this.request as never, call, this);
      else ch.unary(this.method, this.request as never, call).then((res) => this.resolved(res), (err: unknown) => this.rejected(err));
    } catch (err) {
      this.rejected(err);
    }
    this.clock = undefined;
  }

  // ---- UnaryOutcome: the attempt's result ----------------------------------------------
  resolved(res: unknown): void {
    if (this.settled) return;
    try {
      this.inv.succeededOn(this.ep!, this.stats, this.started);
    } catch {
      // bookkeeping never fails the call it observes
    }
    this.end(undefined, true, res);
  }

  rejected(err: unknown): void {
    if (this.settled) return;
    queueMicrotask(() => this.attemptFailed(err));
  }

  private attemptFailed(err: unknown): void {
    let again: boolean;
    try {
      again = this.inv.failedOn(this.method, this.ep!, err, this.attempt, this.call);
    } catch (e) {
      this.end(e, false);
      return;
    }
    if (again) {
      (this.tried ??= new Set()).add(this.ep!);
      this.next();
      return;
    }
    try {
      this.inv.gaveUpOn(this.stats, this.started, err);
    } catch {
      // bookkeeping never changes the call's outcome
    }
    this.gaveUp(err instanceof Error ? err : new UnavailableError(String(err)));
  }

  /**
   * Fails the call with an error off the wire, the caller's stack appended (withCallerStack). That stack is
   * only there for an Error made in a promise job whose promise the caller's promise follows (V8's async
   * stack traces): so the caller's promise is first resolved with a promise still pending, whose job then
   * makes the stack and throws. Only a call that fails pays these promises.
   */
  private gaveUp(err: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.finish(err);
    let open: () => void = noop;
    const gate = new Promise<void>((resolve) => { open = resolve; });
    this.resolveFn!(gate.then(() => { throw withCallerStack(err); }));
    queueMicrotask(open);
  }

  /** Ends the trace and releases the source. Never throws. */
  private finish(err: unknown): void {
    try {
      this.trace?.end(err);
    } catch {
      // a tracer's failure is not the call's
    }
    try {
      this.release?.();
    } catch {
      // nor is the endpoint source's
    }
  }

  /** Ends the trace, releases the source, settles the caller's promise. Never throws. */
  private end(err: unknown, ok: boolean, res?: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.finish(ok ? undefined : err);
    if (ok) this.resolveFn!(res); else this.rejectFn!(err);
  }
}

/**
 * The caller's request stream as the channel reads it, so that however the call ends (the servant's
 * error, cancel, deadline, the caller breaking out of the responses, no endpoint at all) the caller's
 * iterator is closed: return() runs its `finally`. A stream read to its end is not touched.
 */
class RequestStream<T> implements AsyncIterable<T> {
  private it: AsyncIterator<T> | undefined;
  private finished = false;

  constructor(private readonly source: AsyncIterable<T>) {}

  [Symbol.asyncIterator](): AsyncIterator<T> {
    const it = (this.it ??= this.source[Symbol.asyncIterator]());
    return {
      next: async () => {
        try {
          const r = await it.next();
          if (r.done) this.finished = true;
          return r;
        } catch (err) {
          this.finished = true;
          throw err;
        }
      },
      return: async (value?: unknown) => {
        this.close();
        return { done: true, value: value as T };
      },
    };
  }

  /**
   * Closes the caller's iterator unless it ended by itself, even when the call ended before the channel
   * began reading it (a generator not started then never runs). Idempotent; never throws.
   */
  close(): void {
    if (this.finished) return;
    this.finished = true;
    try {
      const it = (this.it ??= this.source[Symbol.asyncIterator]());
      if (it.return === undefined) return;
      Promise.resolve(it.return()).catch(() => undefined);
    } catch {
      // the caller's iterator failed to stop; nothing more to do
    }
  }
}

/** Appends the caller's stack to an error that came off the wire, so logs show who called. */
function withCallerStack(err: unknown): unknown {
  if (err instanceof SgridError && !(err as { callerStackAdded?: boolean }).callerStackAdded) {
    const here = new Error().stack?.split("\n").slice(2).join("\n") ?? "";
    err.stack = `${err.name}: ${err.message}\n    --- remote call, caller stack: ---\n${here}`;
    (err as { callerStackAdded?: boolean }).callerStackAdded = true;
  }
  if (!(err instanceof Error)) return new UnavailableError(String(err));
  return err;
}
