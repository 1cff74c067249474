/**
 * Binds a servant's methods to its service descriptor for the transports.
 *
 * Every method runs inside its call context (deadline propagation) and, when
 * the OpenTelemetry API is installed, inside its SERVER span (tracing/), and
 * is observed by the per-method statistics. Error mapping to the wire happens in
 * each transport at exactly one place (errorToWire), never here.
 */
import { performance } from "node:perf_hooks";
import { InvalidArgumentError, UnimplementedError } from "../errors";
import type { BoundService, Handler, MethodDescriptor, ServerContext, UnaryHandler, UnaryOutcome } from "../transport/base";
import { traceServerCall } from "../tracing/tracing";
import { callInCallContext, runWithCallContext } from "./call-context";
import type { Servant } from "./servant";

export interface DispatchObserver {
  /** Called when a call finishes; `error` is undefined on success, the cancel or deadline error when the caller went away first. Never throws. */
  onCallEnd(method: string, startedAt: number, error: unknown): void;
}

export interface BindOptions {
  /** Make a SERVER span per call (when the OpenTelemetry API is installed). Default true. */
  trace?: boolean;
}

type Runner = <T>(fn: () => T) => T;
const direct: Runner = (fn) => fn();

/** The call's span (if any) wrapped around the observer and around everything the call runs. */
function traced(ctx: ServerContext, observer: DispatchObserver | undefined, on: boolean): { observer: DispatchObserver | undefined; run: Runner } {
  const trace = on ? traceServerCall(ctx) : undefined;
  if (!trace) return { observer, run: direct };
  return { observer: tracedObserver(trace, observer), run: trace.run };
}

function tracedObserver(trace: { end(err: unknown): void }, observer: DispatchObserver | undefined): DispatchObserver {
  return { onCallEnd: (method, startedAt, error) => { trace.end(error); observer?.onCallEnd(method, startedAt, error); } };
}

/**
 * One unary or client-streaming call of the servant's method, observed when
 * it settles, its outcome reported to `out` (the transport's call): the
 * method's own promise and one then() on it, nothing chained after. Not an
 * async function: it runs for every call, inside AsyncLocalStorage once the
 * call context is on, where each promise also pays the async hooks.
 */
function callUnary(ctx: ServerContext, site: UnarySite, arg: unknown, startedAt: number, out: UnaryOutcome): void {
  const { path, observer } = site;
  let p: Promise<unknown>;
  try {
    p = Promise.resolve(site.fn.call(site.servant, arg, ctx));
  } catch (err) {
    observer?.onCallEnd(path, startedAt, ctx.endedBy ?? err);
    out.rejected(err);
    return;
  }
  p.then((res) => {
    if (res == null) {
      const err = new InvalidArgumentError(`method ${path} returned no response`);
      observer?.onCallEnd(path, startedAt, ctx.endedBy ?? err);
      out.rejected(err);
      return;
    }
    // A call the caller cancelled (or whose deadline passed) counts under that code, whatever the servant did.
    observer?.onCallEnd(path, startedAt, ctx.endedBy);
    out.resolved(res);
  }, (err: unknown) => {
    observer?.onCallEnd(path, startedAt, ctx.endedBy ?? err);
    out.rejected(err);
  });
}

/** What callUnary needs of a method, made once per method when the servant is bound (per call only when traced). */
interface UnarySite {
  readonly servant: Servant;
  readonly fn: (a: any, c: ServerContext) => Promise<unknown>;
  readonly path: string;
  readonly observer: DispatchObserver | undefined;
}

/** The outcome as a promise, for a transport that calls the handler without one (the gRPC adapter). */
function promisedOutcome(run: (out: UnaryOutcome) => void): Promise<unknown> {
  return new Promise((resolve, reject) => run({ resolved: resolve, rejected: reject }));
}

function wrapStream(method: string, ctx: ServerContext, iterable: AsyncIterable<unknown>, startedAt: number, observer?: DispatchObserver, run: Runner = direct): AsyncIterable<unknown> {
  return {
    [Symbol.asyncIterator]() {
      const it = iterable[Symbol.asyncIterator]();
      let done = false;
      const finish = (err: unknown) => { if (!done) { done = true; observer?.onCallEnd(method, startedAt, err); } };
      return {
        async next() {
          try {
            // An async generator's body runs in the context of whoever calls next(): re-enter the call's context.
            const r = await run(() => runWithCallContext(ctx, () => it.next()));
            if (r.done) finish(ctx.endedBy);
            return r;
          } catch (err) { finish(ctx.endedBy ?? err); throw err; }
        },
        async return(value?: unknown) {
          // Stopped early: the caller went away (counted under its code), or the transport stopped reading.
          finish(ctx.endedBy);
          return it.return ? it.return(value) : { done: true, value };
        },
      };
    },
  };
}

/** A method the servant does not implement: UNIMPLEMENTED in the shape of its kind, counted in the stats. */
function unimplemented(method: MethodDescriptor, observer?: DispatchObserver): Handler {
  const fail = (): UnimplementedError => {
    const err = new UnimplementedError(`method ${method.path} is not implemented`);
    observer?.onCallEnd(method.path, performance.now(), err);
    return err;
  };
  if (method.kind === "unary" || method.kind === "client_stream") return () => Promise.reject(fail());
  return () => ({ [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(fail()) }) });
}

/** Builds the transport-facing handlers of one servant. Throws TypeError when a method is missing. */
export function bindServant(servant: Servant, callObserver?: DispatchObserver, options: BindOptions = {}): BoundService {
  const tracing = options.trace ?? true;
  const descriptor = servant.$service;
  if (!descriptor || typeof descriptor.fullName !== "string") {
    throw new TypeError("not a servant: extend a generated <Service>Servant class");
  }
  const handlers = new Map<string, { method: MethodDescriptor; handler: Handler }>();
  for (const [member, method] of Object.entries(descriptor.methods)) {
    const impl = (servant as unknown as Record<string, unknown>)[member];
    let handler: Handler;
    if (typeof impl !== "function") {
      handler = unimplemented(method, callObserver);
    } else if (method.kind === "unary" || method.kind === "client_stream") {
      const fn = impl as (a: any, c: ServerContext) => Promise<unknown>;
      const site: UnarySite = { servant, fn, path: method.path, observer: callObserver };
      const into = (arg: any, ctx: ServerContext, out: UnaryOutcome): void => {
        const startedAt = performance.now();
        const trace = tracing ? traceServerCall(ctx) : undefined;
        if (trace === undefined) {
          callInCallContext(ctx, callUnary, site, arg, startedAt, out);
          return;
        }
        const traced: UnarySite = { servant, fn, path: method.path, observer: tracedObserver(trace, callObserver) };
        trace.run(() => callInCallContext(ctx, callUnary, traced, arg, startedAt, out));
      };
      const unary: UnaryHandler = (arg: any, ctx: ServerContext) => promisedOutcome((out) => into(arg, ctx, out));
      unary.into = into;
      handler = unary;
    } else {
      handler = (arg: any, ctx: ServerContext) => {
        const startedAt = performance.now();
        const { observer, run } = traced(ctx, callObserver, tracing);
        return run(() => runWithCallContext(ctx, () => {
          try {
            return wrapStream(method.path, ctx, (impl as (a: any, c: ServerContext) => AsyncIterable<unknown>).call(servant, arg, ctx), startedAt, observer, run);
          } catch (err) {
            observer?.onCallEnd(method.path, startedAt, err);
            throw err;
          }
        }));
      };
    }
    handlers.set(method.path, { method, handler });
  }
  return { descriptor, handlers };
}
