/**
 * The fixture servant used across framework tests (demo.echo.v1.Echo).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { SgridError, Status, type DeepPartial, type ServerContext } from "sgridnext";
import { EchoServant, ClockServant } from "../gen/demo/echo.sgrid";
import type { EchoReply, EchoRequest, FailRequest, SlowRequest, SumReply } from "../gen/demo/echo";
import type { Empty } from "../gen/google/protobuf/empty";
import type { Timestamp } from "../gen/google/protobuf/timestamp";

export class EchoImpl extends EchoServant {
  /** ids of Slow calls that reached this servant. */
  readonly started = new Set<string>();
  /** ids of Slow calls whose ctx.signal fired. */
  readonly cancelled = new Set<string>();
  /** Server-stream / bidi calls whose generator was closed before the end. */
  streamsClosedEarly = 0;
  calls = 0;
  lastDeadline: number | undefined;

  constructor(readonly name = "echo") { super(); }

  async say(request: EchoRequest, ctx: ServerContext): Promise<DeepPartial<EchoReply>> {
    this.calls++;
    this.lastDeadline = ctx.deadline;
    return { text: request.text, envelope: request.envelope, metadata: { ...ctx.metadata, served_by: this.name }, peer: ctx.peer };
  }

  async *repeat(request: EchoRequest, ctx: ServerContext): AsyncIterable<DeepPartial<EchoReply>> {
    let i = 0;
    try {
      for (; i < request.count; i++) {
        if (ctx.signal.aborted) return;
        yield { text: request.text, index: i };
      }
    } finally {
      if (i < request.count) this.streamsClosedEarly++;
    }
  }

  async sum(requests: AsyncIterable<EchoRequest>, _ctx?: ServerContext): Promise<DeepPartial<SumReply>> {
    let total = 0;
    let count = 0;
    for await (const r of requests) { total += r.count; count++; }
    return { total, count };
  }

  async *chat(requests: AsyncIterable<EchoRequest>, ctx: ServerContext): AsyncIterable<DeepPartial<EchoReply>> {
    let i = 0;
    let done = false;
    try {
      for await (const r of requests) yield { text: r.text, index: i++ };
      done = true;
    } finally {
      if (!done || ctx.signal.aborted) this.streamsClosedEarly++;
    }
  }

  async fail(request: FailRequest, _ctx?: ServerContext): Promise<DeepPartial<Empty>> {
    if (request.unexpected) throw new Error(`secret internal detail: ${request.message}`);
    throw new SgridError(request.code, request.message, { status: Status.FAILED_PRECONDITION, data: { asked: request.code } });
  }

  async slow(request: SlowRequest, ctx: ServerContext): Promise<DeepPartial<EchoReply>> {
    this.started.add(request.id);
    try {
      await sleep(request.millis, undefined, { signal: ctx.signal });
    } catch {
      this.cancelled.add(request.id);
      throw new SgridError("CANCELLED", "cancelled", { status: Status.CANCELLED });
    }
    return { text: `slept ${request.millis}`, metadata: { served_by: this.name } };
  }

  async lookup(request: EchoRequest): Promise<DeepPartial<EchoReply>> {
    return { text: request.text, metadata: { served_by: this.name } };
  }
}

export class ClockImpl extends ClockServant {
  async now(): Promise<DeepPartial<Timestamp>> {
    const ms = Date.parse("2026-01-02T03:04:05.678Z");
    return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
  }
}
