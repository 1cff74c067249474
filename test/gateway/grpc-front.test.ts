/**
 * The gateway's gRPC front and forwarder with real servants on port 0: a
 * generated proxy that knows only the gateway's address calls the Echo
 * service through it, all four kinds; metadata, trailers, errors, deadlines
 * and cancellation pass through; routes (exposed services, bearer auth,
 * message size) are enforced and reloaded; a client that never reads is cut
 * off with bounded work on the backend.
 */
import * as http2 from "node:http2";
import * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import { Application, Communicator, SgridError, Status, statusName, type DeepPartial, type Metadata, type ServerContext } from "sgridnext";
import { installCatchAll, GrpcFront } from "../../gateway/grpc-front";
import { StaticServiceResolver } from "../../gateway/forwarder";
import { parseRoutes } from "../../gateway/routes";
import { EchoProxy, ClockProxy } from "../gen/demo/echo.sgrid";
import { EchoRequest as EchoRequestCodec, type EchoReply, type EchoRequest, type FailRequest } from "../gen/demo/echo";
import type { Empty } from "../gen/google/protobuf/empty";
import { EchoImpl } from "../helpers/echo-servant";
import { RecordingForwarder } from "../helpers/recording-forwarder";
import { waitFor } from "../helpers/wait";

/** Echo that sends a header and a trailer on every call, and counts what its Repeat produced. */
class GatewayEcho extends EchoImpl {
  produced = 0;
  override async say(request: EchoRequest, ctx: ServerContext): Promise<DeepPartial<EchoReply>> {
    ctx.sendHeaders({ "x-h": `headers for ${ctx.method}` });
    ctx.setTrailers({ "x-t-bin": Buffer.from([0, 1, 255]) });
    return super.say(request, ctx);
  }
  override async *repeat(request: EchoRequest, ctx: ServerContext): AsyncIterable<DeepPartial<EchoReply>> {
    for (let i = 0; i < request.count; i++) {
      if (ctx.signal.aborted) return;
      this.produced++;
      yield { text: request.text, index: i };
    }
  }
  override async fail(request: FailRequest, ctx: ServerContext): Promise<DeepPartial<Empty>> {
    ctx.setTrailers({ "x-why": "refused" });
    return super.fail(request, ctx);
  }
}

async function* gen<T>(items: T[]): AsyncIterable<T> {
  for (const i of items) yield i;
}

describe("gateway gRPC front", function () {
  this.timeout(30_000);
  let app: Application;
  let servant: GatewayEcho;
  let backendComm: Communicator;
  let clientComm: Communicator;
  let forwarder: RecordingForwarder;
  let front: GrpcFront;
  let gwPort: number;
  let echo: EchoProxy;

  before(async () => {
    servant = new GatewayEcho("gw-backend");
    app = new Application({ handleSignals: false, app: "Test", server: "Gw", adapters: { EchoObj: "127.0.0.1:0" } });
    app.addServant("EchoObj", servant);
    await app.start();
    const port = app.adapters()[0]!.endpoint.port;
    backendComm = new Communicator();
    forwarder = new RecordingForwarder({ communicator: backendComm, services: new StaticServiceResolver({ "demo.echo.v1.Echo": `Test.Gw.EchoObj@tcp -h 127.0.0.1 -p ${port}` }) });
    front = new GrpcFront({ forwarder, stallTimeoutMs: 500 });
    gwPort = await front.listen("127.0.0.1", 0);
    clientComm = new Communicator();
    echo = clientComm.stringToProxy(EchoProxy, `Gateway.Front.GatewayObj@tcp -h 127.0.0.1 -p ${gwPort}`);
  });

  after(async () => {
    clientComm.close();
    await front.shutdown(500);
    forwarder.close();
    backendComm.close();
    await app.stop(500);
  });

  it("forwards unary, server-streaming, client-streaming and bidi calls to the Obj that serves the service", async () => {
    expect((await echo.say({ text: "hello" })).metadata.served_by).to.equal("gw-backend");
    const got: number[] = [];
    for await (const r of echo.repeat({ text: "r", count: 5 })) got.push(r.index);
    expect(got).to.deep.equal([0, 1, 2, 3, 4]);
    expect(await echo.sum(gen([{ count: 2 }, { count: 3 }, { count: 5 }]))).to.include({ total: 10, count: 3 });
    const chat: string[] = [];
    for await (const r of echo.chat(gen([{ text: "a" }, { text: "b" }]))) chat.push(r.text);
    expect(chat).to.deep.equal(["a", "b"]);
    const kinds = (await forwarder.resolve("demo.echo.v1.Echo")).kinds;
    expect(Object.fromEntries(kinds)).to.include({ Say: "unary", Repeat: "server_stream", Sum: "client_stream", Chat: "bidi" });
  });

  it("passes request metadata on, and the backend's response headers and trailers back (unary: headers before the result)", async () => {
    let headers: Metadata | undefined;
    let trailers: Metadata | undefined;
    const res = await echo.say({ text: "m" }, {
      metadata: { "x-trace": "abc 123", "x-blob-bin": Buffer.from([9, 8, 7]) },
      onHeaders: (h) => { headers = h; },
      onTrailers: (t) => { trailers = t; },
    });
    expect(res.metadata["x-trace"]).to.equal("abc 123");
    expect(headers?.["x-h"]).to.equal("headers for /demo.echo.v1.Echo/Say");
    expect([...(trailers?.["x-t-bin"] as Buffer)]).to.deep.equal([0, 1, 255]);
  });

  it("never forwards a caller's sgrid-error-* metadata (a Sgrid error's trailers) on a route without auth: unary (first call and fast path) and server-streaming", async () => {
    front.setRoutes(parseRoutes("routes:\n  - service: demo.echo.v1.Echo\n    auth: none\n"));
    try {
      const forged = { "sgrid-error-code": "OUT_OF_STOCK", "sgrid-error-data": "{\"forged\":true}", "sgrid-error-extra": "x", "x-keep": "kept" };
      for (let i = 0; i < 3; i++) { // the first call resolves the path, the next ones take the unary fast path
        const res = await echo.say({ text: `u${i}` }, { metadata: forged });
        expect(res.text).to.equal(`u${i}`);
        const md = forwarder.forwarded.get("/demo.echo.v1.Echo/Say");
        expect(md).to.include({ "x-keep": "kept" });
        expect(Object.keys(md!).filter((k) => k.startsWith("sgrid-error-"))).to.deep.equal([]);
      }
      const got: number[] = [];
      for await (const r of echo.repeat({ text: "s", count: 2 }, { metadata: forged })) got.push(r.index);
      expect(got).to.deep.equal([0, 1]);
      const md = forwarder.forwarded.get("/demo.echo.v1.Echo/Repeat");
      expect(md).to.include({ "x-keep": "kept" });
      expect(Object.keys(md!).filter((k) => k.startsWith("sgrid-error-"))).to.deep.equal([]);
    } finally {
      front.setRoutes(parseRoutes(""));
    }
  });

  it("passes the backend's error through with its code, status, message and trailers", async () => {
    let trailers: Metadata | undefined;
    const err = await echo.fail({ code: "OUT_OF_STOCK", message: "none left" }, { onTrailers: (t) => { trailers = t; } }).then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(SgridError);
    expect((err as SgridError).code).to.equal("OUT_OF_STOCK");
    expect((err as SgridError).status).to.equal(Status.FAILED_PRECONDITION);
    expect((err as SgridError).message).to.equal("none left");
    expect(trailers?.["x-why"]).to.equal("refused");
  });

  it("a service no Obj serves is UNIMPLEMENTED naming it", async () => {
    const clock = clientComm.stringToProxy(ClockProxy, `Gateway.Front.GatewayObj@tcp -h 127.0.0.1 -p ${gwPort}`);
    const err = await clock.now({}).then(() => undefined, (e: unknown) => e as SgridError);
    expect(err?.status).to.equal(Status.UNIMPLEMENTED);
    expect(err?.message).to.contain("demo.echo.v1.Clock");
  });

  it("the caller's deadline reaches the backend, and an expired one ends the call there", async () => {
    servant.cancelled.clear();
    const err = await echo.slow({ id: "dl", millis: 5000 }, { timeoutMs: 300 }).then(() => undefined, (e: unknown) => e as SgridError);
    expect(err?.status).to.equal(Status.DEADLINE_EXCEEDED);
    await waitFor("the backend call to be cancelled", () => servant.cancelled.has("dl"));
    await echo.say({ text: "d" }, { timeoutMs: 2000 });
    expect(servant.lastDeadline).to.be.a("number");
  });

  it("a caller's cancel cancels the backend call", async () => {
    servant.cancelled.clear();
    const ac = new AbortController();
    const p = echo.slow({ id: "cx", millis: 5000 }, { signal: ac.signal, timeoutMs: 10_000 }).then(() => undefined, (e: unknown) => e as SgridError);
    // The backend has it (the gateway's in-flight count may still hold the call before, ending at its deadline).
    await waitFor("the slow call to reach the backend through the gateway", () => servant.started.has("cx") && front.inflight() > 0);
    ac.abort();
    expect((await p)?.status).to.equal(Status.CANCELLED);
    await waitFor("the backend call to be cancelled", () => servant.cancelled.has("cx"));
  });

  it("later calls of a method (its path resolved: the gateway's unary fast path) carry metadata, headers, trailers, errors, deadline and cancel the same as the first", async () => {
    for (let i = 0; i < 3; i++) {
      let headers: Metadata | undefined;
      let trailers: Metadata | undefined;
      const res = await echo.say({ text: `again ${i}` }, {
        metadata: { "x-trace": `t${i}`, "x-blob-bin": Buffer.from([i, 255]) },
        onHeaders: (h) => { headers = h; },
        onTrailers: (t) => { trailers = t; },
      });
      expect(res.text).to.equal(`again ${i}`);
      expect(res.metadata["x-trace"]).to.equal(`t${i}`);
      expect(headers?.["x-h"]).to.equal("headers for /demo.echo.v1.Echo/Say");
      expect([...(trailers?.["x-t-bin"] as Buffer)]).to.deep.equal([0, 1, 255]);

      let failTrailers: Metadata | undefined;
      const err = await echo.fail({ code: "OUT_OF_STOCK", message: `none ${i}` }, { onTrailers: (t) => { failTrailers = t; } }).then(() => undefined, (e: unknown) => e as SgridError);
      expect(err?.code).to.equal("OUT_OF_STOCK");
      expect(err?.status).to.equal(Status.FAILED_PRECONDITION);
      expect(err?.message).to.equal(`none ${i}`);
      expect(failTrailers?.["x-why"]).to.equal("refused");

      servant.cancelled.clear();
      const dl = await echo.slow({ id: `dl${i}`, millis: 5000 }, { timeoutMs: 200 }).then(() => undefined, (e: unknown) => e as SgridError);
      expect(dl?.status).to.equal(Status.DEADLINE_EXCEEDED);
      await waitFor("the backend call to be cancelled at its deadline", () => servant.cancelled.has(`dl${i}`));

      const ac = new AbortController();
      const p = echo.slow({ id: `cx${i}`, millis: 5000 }, { signal: ac.signal, timeoutMs: 10_000 }).then(() => undefined, (e: unknown) => e as SgridError);
      await waitFor("the slow call to reach the backend through the gateway", () => servant.started.has(`cx${i}`) && front.inflight() > 0);
      ac.abort();
      expect((await p)?.status).to.equal(Status.CANCELLED);
      await waitFor("the backend call to be cancelled", () => servant.cancelled.has(`cx${i}`));
    }
    await waitFor("no call left in flight at the gateway", () => front.inflight() === 0);
  });

  it("routes: an unexposed service is UNIMPLEMENTED, a wrong or missing bearer token UNAUTHENTICATED, an oversized message RESOURCE_EXHAUSTED; a reload applies to the next call on the same connection", async () => {
    try {
      front.setRoutes(parseRoutes("routes:\n  - service: demo.other.*\n"));
      const e1 = await echo.say({ text: "x" }).then(() => undefined, (e: unknown) => e as SgridError);
      expect(e1?.status).to.equal(Status.UNIMPLEMENTED);
      expect(e1?.message).to.contain("demo.echo.v1.Echo").and.contain("not exposed");

      front.setRoutes(parseRoutes("routes:\n  - service: demo.echo.v1.Echo\n    auth: { bearer: [s3cret] }\n    maxMessageBytes: 64\n"));
      const e2 = await echo.say({ text: "x" }).then(() => undefined, (e: unknown) => e as SgridError);
      expect(e2?.status).to.equal(Status.UNAUTHENTICATED);
      const e3 = await echo.say({ text: "x" }, { metadata: { authorization: "Bearer wrong" } }).then(() => undefined, (e: unknown) => e as SgridError);
      expect(e3?.status).to.equal(Status.UNAUTHENTICATED);
      const ok = await echo.say({ text: "x" }, { metadata: { authorization: "Bearer s3cret" } });
      expect(ok.metadata).to.not.have.property("authorization");
      const e4 = await echo.say({ text: "x".repeat(200) }, { metadata: { authorization: "Bearer s3cret" } }).then(() => undefined, (e: unknown) => e as SgridError);
      expect(e4?.status).to.equal(Status.RESOURCE_EXHAUSTED);
      expect(e4?.message).to.contain("limit of 64 bytes");
      // Refusals count in the route's stats; unexposed services under one entry, whatever name the caller made up.
      expect(forwarder.stats.get("demo.echo.v1.Echo", "/demo.echo.v1.Echo/Say").errorsByCode.get("UNAUTHENTICATED")).to.be.at.least(2);
      expect(forwarder.stats.get("(not exposed)", "(any)").errorsByCode.get("UNIMPLEMENTED")).to.be.at.least(1);
      expect(forwarder.stats.entries().map((e) => e.scope)).to.not.include("demo.other.x");
    } finally {
      front.setRoutes(parseRoutes(""));
    }
    expect((await echo.say({ text: "open again" })).text).to.equal("open again");
  });

  it("limits each client to the route's rate: past it RESOURCE_EXHAUSTED with a grpc-retry-pushback-ms trailer, without reaching the servant; other routes are not limited", async () => {
    try {
      front.setRoutes(parseRoutes("routes:\n  - service: demo.echo.v1.Echo\n    rateLimit: { perSecond: 0.5, burst: 2 }\n  - service: demo.echo.v1.Clock\n"));
      const servedBefore = servant.calls;
      expect((await echo.say({ text: "1" })).text).to.equal("1");
      expect((await echo.say({ text: "2" })).text).to.equal("2");
      let trailers: Metadata | undefined;
      const err = await echo.say({ text: "3" }, { onTrailers: (t) => { trailers = t; } }).then(() => undefined, (e: unknown) => e as SgridError);
      expect(err?.status).to.equal(Status.RESOURCE_EXHAUSTED);
      expect(err?.message).to.contain("rate limit of service \"demo.echo.v1.Echo\"");
      expect(Number(trailers?.["grpc-retry-pushback-ms"])).to.be.within(1, 2000);
      expect(servant.calls - servedBefore).to.equal(2);
      const clock = clientComm.stringToProxy(ClockProxy, `Gateway.Front.GatewayObj@tcp -h 127.0.0.1 -p ${gwPort}`);
      // Clock has no rateLimit: it passes the limiter and gets as far as finding no Obj for it.
      const now = await clock.now({}).then(() => "served", (e: SgridError) => statusName(e.status));
      expect(now).to.equal("UNIMPLEMENTED");
    } finally {
      front.setRoutes(parseRoutes(""));
    }
    expect((await echo.say({ text: "unlimited again" })).text).to.equal("unlimited again");
  });

  it("records per-route calls, errors by code and latency", async () => {
    const before = forwarder.stats.get("demo.echo.v1.Echo", "/demo.echo.v1.Echo/Fail").errorsByCode.get("OUT_OF_STOCK") ?? 0;
    await echo.fail({ code: "OUT_OF_STOCK", message: "x" }).catch(() => undefined);
    const s = forwarder.stats.get("demo.echo.v1.Echo", "/demo.echo.v1.Echo/Fail");
    expect(s.errorsByCode.get("OUT_OF_STOCK")).to.equal(before + 1);
    expect(forwarder.stats.get("demo.echo.v1.Echo", "/demo.echo.v1.Echo/Say").calls).to.be.greaterThan(0);
  });

  it("a client that never reads: its call is cancelled and its connection closed, and the backend produced a bounded number of messages", async () => {
    servant.produced = 0;
    const closedBefore = front.stalledConnectionsClosed;
    const session = http2.connect(`http://127.0.0.1:${gwPort}`);
    session.on("error", () => undefined);
    const closed = new Promise<void>((r) => session.once("close", () => r()));
    const req = session.request({ ":method": "POST", ":path": "/demo.echo.v1.Echo/Repeat", "content-type": "application/grpc", te: "trailers" });
    req.on("error", () => undefined);
    // EchoRequest { text: 1 KiB, count: 1,000,000 }, framed; then the client never reads a response.
    const text = Buffer.alloc(1024, 0x61);
    const body = Buffer.concat([Buffer.from([0x0a, 0x80, 0x08]), text, Buffer.from([0x10, 0xc0, 0x84, 0x3d])]);
    const frame = Buffer.alloc(5);
    frame.writeUInt32BE(body.length, 1);
    req.end(Buffer.concat([frame, body]));
    req.pause();
    await waitFor("the gateway to close the stalled connection", () => front.stalledConnectionsClosed > closedBefore, 15_000);
    await closed;
    const produced = servant.produced;
    expect(produced).to.be.greaterThan(0).and.lessThan(5_000);
    await waitFor("the backend stream to stop", () => servant.produced === produced && front.inflight() === 0);
    // The gateway goes on serving everyone else.
    expect((await echo.say({ text: "still here" })).text).to.equal("still here");
  });

  it("a second request message on a server-streaming call fails it UNIMPLEMENTED at once (gRPC's cardinality rule), and the gateway goes on serving", async () => {
    const session = http2.connect(`http://127.0.0.1:${gwPort}`);
    session.on("error", () => undefined);
    try {
      const frame = (m: Partial<EchoRequest>) => {
        const body = Buffer.from(EchoRequestCodec.encode(EchoRequestCodec.fromPartial(m)).finish());
        const head = Buffer.alloc(5);
        head.writeUInt32BE(body.length, 1);
        return Buffer.concat([head, body]);
      };
      // Two messages and no half-close, with a far deadline: a gateway that waited for more would answer only then.
      const req = session.request({ ":method": "POST", ":path": "/demo.echo.v1.Echo/Repeat", "content-type": "application/grpc", te: "trailers", "grpc-timeout": "60S" });
      req.on("error", () => undefined);
      const status = new Promise<{ code: string; message: string }>((resolve) => {
        const take = (h: http2.IncomingHttpHeaders) => {
          if (h["grpc-status"] !== undefined) resolve({ code: String(h["grpc-status"]), message: decodeURIComponent(String(h["grpc-message"] ?? "")) });
        };
        req.on("response", take);
        req.on("trailers", take);
      });
      req.on("data", () => undefined);
      req.write(Buffer.concat([frame({ text: "one", count: 3 }), frame({ text: "two", count: 3 })]));
      const s = await status;
      expect(s.code).to.equal(String(Status.UNIMPLEMENTED));
      expect(s.message).to.equal("/demo.echo.v1.Echo/Repeat received a second request message (a server_stream method takes one)");
      req.close();
      await waitFor("nothing in flight", () => front.inflight() === 0);
    } finally {
      session.close();
    }
    expect((await echo.say({ text: "after" })).text).to.equal("after");
  });

  it("installCatchAll fails loudly when grpc-js no longer has the handler map it relies on", () => {
    const server = new grpc.Server();
    expect(() => installCatchAll(server, () => undefined)).to.not.throw();
    const changed = Object.assign(Object.create(grpc.Server.prototype) as grpc.Server, { handlers: {} });
    expect(() => installCatchAll(changed, () => undefined)).to.throw(/grpc-js internals changed/);
  });
});
