/**
 * Tracing through proxies and servants on both transports, with the real
 * OpenTelemetry SDK (BasicTracerProvider, in-memory exporter, the
 * AsyncLocalStorage context manager): a client span -> the front servant's
 * server span -> its proxy call's client span -> the back servant's server
 * span, one trace, each the parent of the next, the W3C traceparent on the
 * wire naming the span before it. A traceparent from any other caller is the
 * parent of the server span; without the OTel API an incoming traceparent is
 * passed on unchanged.
 */
import { context, SpanKind, SpanStatusCode, trace, type Span } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { expect } from "chai";
import { Application, Communicator, transports, type DeepPartial, type ServerContext } from "sgridnext";
import { setOtelApiForTests } from "sgridnext/internal/tracing/tracing";
import { EchoProxy } from "../gen/demo/echo.sgrid";
import type { EchoReply, EchoRequest } from "../gen/demo/echo";
import { EchoImpl } from "../helpers/echo-servant";
import { waitFor } from "../helpers/wait";

/** Calls the back servant from inside its own say(); reports the traceparent it received. */
class FrontImpl extends EchoImpl {
  back: EchoProxy | undefined;
  override async say(request: EchoRequest, ctx: ServerContext): Promise<DeepPartial<EchoReply>> {
    const reply = await this.back!.say({ text: `via front: ${request.text}` });
    return { text: reply.text, metadata: { front_saw: String(ctx.metadata.traceparent ?? ""), back_saw: reply.metadata.traceparent ?? "" } };
  }
}

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

function spanId(s: ReadableSpan | Span): string {
  return s.spanContext().spanId;
}

for (const protocol of transports.protocols()) {
  describe(`tracing over ${protocol}`, function () {
    this.timeout(30_000);
    let back: Application;
    let front: Application;
    let frontImpl: FrontImpl;
    let comm: Communicator;
    let target: string;

    before(async () => {
      setOtelApiForTests(undefined);
      trace.setGlobalTracerProvider(provider);
      context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
      const scheme = protocol === "grpc" ? "" : `${protocol}://`;
      back = new Application({ app: "Test", server: "Back", handleSignals: false, registry: "", agent: "", adapters: { EchoObj: `${scheme}127.0.0.1:0` } });
      back.addServant("EchoObj", new EchoImpl("back"));
      await back.start();
      frontImpl = new FrontImpl("front");
      front = new Application({ app: "Test", server: "Front", handleSignals: false, registry: "", agent: "", adapters: { EchoObj: `${scheme}127.0.0.1:0` } });
      front.addServant("EchoObj", frontImpl);
      await front.start();
      frontImpl.back = front.communicator.stringToProxy(EchoProxy, `${scheme}127.0.0.1:${back.adapters()[0]!.endpoint.port}`);
      target = `${scheme}127.0.0.1:${front.adapters()[0]!.endpoint.port}`;
      comm = new Communicator({ registry: "" });
    });

    beforeEach(() => exporter.reset());

    after(async () => {
      comm.close();
      await front.stop(500);
      await back.stop(500);
      trace.disable();
      context.disable();
      setOtelApiForTests(undefined);
    });

    it("a call through two servants is one trace: client -> server -> client -> server, the traceparent naming each parent", async () => {
      const tracer = trace.getTracer("test");
      const proxy = comm.stringToProxy(EchoProxy, target);
      const reply = await tracer.startActiveSpan("request", async (root) => {
        try { return await proxy.say({ text: "hi" }); } finally { root.end(); }
      });
      expect(reply.text).to.equal("via front: hi");
      await waitFor("five ended spans", () => exporter.getFinishedSpans().length === 5);
      const spans = exporter.getFinishedSpans();
      const root = spans.find((s) => s.name === "request")!;
      const byKind = (kind: SpanKind) => spans.filter((s) => s.kind === kind && s.name === "demo.echo.v1.Echo/Say");
      const clients = byKind(SpanKind.CLIENT);
      const servers = byKind(SpanKind.SERVER);
      expect(clients).to.have.length(2);
      expect(servers).to.have.length(2);
      expect(new Set(spans.map((s) => s.spanContext().traceId)).size, "one trace").to.equal(1);
      const outer = clients.find((c) => c.parentSpanContext?.spanId === spanId(root))!;
      const frontServer = servers.find((s) => s.parentSpanContext?.spanId === spanId(outer))!;
      const inner = clients.find((c) => c.parentSpanContext?.spanId === spanId(frontServer))!;
      const backServer = servers.find((s) => s.parentSpanContext?.spanId === spanId(inner))!;
      expect([outer, frontServer, inner, backServer].every(Boolean), "a chain of parents").to.equal(true);
      // What crossed the wire: each servant saw the traceparent of the client span that called it.
      const traceId = root.spanContext().traceId;
      expect(reply.metadata.front_saw).to.equal(`00-${traceId}-${spanId(outer)}-01`);
      expect(reply.metadata.back_saw).to.equal(`00-${traceId}-${spanId(inner)}-01`);
      expect(backServer.attributes).to.include({ "rpc.service": "demo.echo.v1.Echo", "rpc.method": "Say", "rpc.grpc.status_code": 0 });
      // Each client span names the protocol and the endpoint its call went to.
      const system = protocol === "sgrid" ? "sgrid" : "grpc";
      expect(backServer.attributes["rpc.system"]).to.equal(system);
      expect(outer.attributes).to.include({ "rpc.system": system, "server.address": "127.0.0.1", "server.port": front.adapters()[0]!.endpoint.port });
      expect(inner.attributes).to.include({ "rpc.system": system, "server.address": "127.0.0.1", "server.port": back.adapters()[0]!.endpoint.port });
    });

    it("an error ends the client span with ERROR and the status code; a caller's own traceparent is the server span's parent", async () => {
      const proxy = comm.stringToProxy(EchoProxy, `${protocol === "grpc" ? "" : `${protocol}://`}127.0.0.1:${back.adapters()[0]!.endpoint.port}`);
      await proxy.fail({ code: "NOPE", message: "no" }, { metadata: { traceparent: PARENT } }).then(() => undefined, () => undefined);
      await waitFor("the server span", () => exporter.getFinishedSpans().some((s) => s.kind === SpanKind.SERVER));
      const server = exporter.getFinishedSpans().find((s) => s.kind === SpanKind.SERVER)!;
      expect(server.spanContext().traceId).to.equal("0af7651916cd43dd8448eb211c80319c");
      expect(server.parentSpanContext?.spanId).to.equal("b7ad6b7169203331");
      expect(server.attributes["rpc.grpc.status_code"]).to.equal(9);
      exporter.reset();
      await proxy.fail({ code: "NOPE", message: "no" }).then(() => undefined, () => undefined);
      await waitFor("the client span", () => exporter.getFinishedSpans().some((s) => s.kind === SpanKind.CLIENT));
      const client = exporter.getFinishedSpans().find((s) => s.kind === SpanKind.CLIENT)!;
      expect(client.status.code).to.equal(SpanStatusCode.ERROR);
      expect(client.attributes["rpc.grpc.status_code"]).to.equal(9);
    });

    it("spans a server stream from the first message to the end", async () => {
      const proxy = comm.stringToProxy(EchoProxy, target);
      let n = 0;
      for await (const _ of proxy.repeat({ text: "r", count: 3 })) n++;
      expect(n).to.equal(3);
      await waitFor("client and server spans of Repeat", () => exporter.getFinishedSpans().filter((s) => s.name === "demo.echo.v1.Echo/Repeat").length === 2);
      const [a, b] = exporter.getFinishedSpans().filter((s) => s.name === "demo.echo.v1.Echo/Repeat");
      expect(new Set([a!.kind, b!.kind])).to.deep.equal(new Set([SpanKind.CLIENT, SpanKind.SERVER]));
      const server = a!.kind === SpanKind.SERVER ? a! : b!;
      const client = a!.kind === SpanKind.CLIENT ? a! : b!;
      expect(server.parentSpanContext?.spanId).to.equal(spanId(client));
    });

    it("without the OpenTelemetry API, an incoming traceparent is passed on unchanged and no span is made", async () => {
      setOtelApiForTests(null);
      try {
        const proxy = comm.stringToProxy(EchoProxy, target);
        const reply = await proxy.say({ text: "plain" }, { metadata: { traceparent: PARENT, tracestate: "vendor=1" } });
        expect(reply.metadata.front_saw).to.equal(PARENT);
        expect(reply.metadata.back_saw).to.equal(PARENT);
        expect(exporter.getFinishedSpans()).to.deep.equal([]);
        const untraced = await proxy.say({ text: "none" });
        expect(untraced.metadata.back_saw, "nothing invented").to.equal("");
      } finally {
        setOtelApiForTests(undefined);
      }
    });
  });
}
