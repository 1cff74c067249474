/**
 * The gateway in front of a native-only backend: an Obj whose only adapter
 * is `sgrid://` (no gRPC port at all). The gateway learns the service's
 * methods from reflection over the native transport, forwards over it, and
 * the caller's metadata, deadline, cancel, the servant's headers, trailers
 * and error codes pass through: first with the forwarder and the gRPC front
 * in this process, then with a real registry (the service map learnt over
 * the native endpoint) and `sgrid gateway` as its own process.
 */
import { expect } from "chai";
import { Application, Communicator, SgridError, Status, type DeepPartial, type Metadata, type ServerContext } from "sgridnext";
import { Forwarder, StaticServiceResolver } from "../../gateway/forwarder";
import { GrpcFront } from "../../gateway/grpc-front";
import { EchoProxy } from "../gen/demo/echo.sgrid";
import type { EchoReply, EchoRequest } from "../gen/demo/echo";
import { EchoImpl } from "../helpers/echo-servant";
import { waitFor } from "../helpers/wait";
import { dialects, uniq } from "../registry/helpers/db";
import { startTestRegistry, type TestRegistry } from "../registry/helpers/registry";
import type { ServiceIndex } from "../../registry/query/service-index";
import { startGatewayProcess, type GatewayProcess } from "./gateway-process";

/** Echo that answers with a header and a trailer. */
class NativeEcho extends EchoImpl {
  override async say(request: EchoRequest, ctx: ServerContext): Promise<DeepPartial<EchoReply>> {
    ctx.sendHeaders({ "x-h": "from the native servant" });
    ctx.setTrailers({ "x-t-bin": Buffer.from([7, 0, 7]) });
    return super.say(request, ctx);
  }
}

async function* gen<T>(items: T[]): AsyncIterable<T> {
  for (const i of items) yield i;
}

/** Calls a user makes through the gateway at `port`, checked as that user would. */
async function checkThroughGateway(port: number, servant: NativeEcho): Promise<void> {
  const comm = new Communicator();
  try {
    const echo = comm.stringToProxy(EchoProxy, `Gateway.Front.GatewayObj@tcp -h 127.0.0.1 -p ${port}`);
    for (let i = 0; i < 3; i++) { // the first call resolves the path, the next ones take the unary fast path
      let headers: Metadata | undefined;
      let trailers: Metadata | undefined;
      const before = Date.now();
      const res = await echo.say({ text: `native ${i}` }, {
        timeoutMs: 4000,
        metadata: { "x-trace": `t${i}`, "x-blob-bin": Buffer.from([1, 2, i]) },
        onHeaders: (h) => { headers = h; },
        onTrailers: (t) => { trailers = t; },
      });
      const after = Date.now();
      expect(res.text).to.equal(`native ${i}`);
      expect(res.metadata.served_by).to.equal("native-only");
      expect(res.metadata["x-trace"]).to.equal(`t${i}`);
      expect(res.metadata).to.have.property("x-blob-bin");
      // The caller's 4 s deadline reached the servant (not the proxy's default 3 s, not none). Each hop carries it as a
      // time left (grpc-timeout, the native frame's timeout), so it lands between 4 s after the call began and 4 s
      // after it ended (a few ms of rounding either way).
      expect(servant.lastDeadline).to.be.a("number");
      expect(servant.lastDeadline!).to.be.within(before + 4000 - 5, after + 4000 + 5);
      expect(headers?.["x-h"]).to.equal("from the native servant");
      expect([...(trailers?.["x-t-bin"] as Buffer)]).to.deep.equal([7, 0, 7]);

      const err = await echo.fail({ code: "OUT_OF_STOCK", message: `none ${i}` }).then(() => undefined, (e: unknown) => e as SgridError);
      expect(err?.code).to.equal("OUT_OF_STOCK");
      expect(err?.status).to.equal(Status.FAILED_PRECONDITION);
      expect(err?.message).to.equal(`none ${i}`);

      servant.cancelled.clear();
      const dl = await echo.slow({ id: `dl${i}`, millis: 5000 }, { timeoutMs: 200 }).then(() => undefined, (e: unknown) => e as SgridError);
      expect(dl?.status).to.equal(Status.DEADLINE_EXCEEDED);
      await waitFor("the native call to be cancelled at its deadline", () => servant.cancelled.has(`dl${i}`));
    }
    const got: number[] = [];
    for await (const r of echo.repeat({ text: "r", count: 4 })) got.push(r.index);
    expect(got).to.deep.equal([0, 1, 2, 3]);
    expect(await echo.sum(gen([{ count: 2 }, { count: 5 }]))).to.include({ total: 7, count: 2 });
    const chat: string[] = [];
    for await (const r of echo.chat(gen([{ text: "a" }, { text: "b" }]))) chat.push(r.text);
    expect(chat).to.deep.equal(["a", "b"]);
  } finally {
    comm.close();
  }
}

describe("gateway: a native-only backend (sgrid:// adapter, no gRPC port)", function () {
  this.timeout(60_000);
  let servant: NativeEcho;
  let app: Application;
  let nativePort: number;

  before(async () => {
    servant = new NativeEcho("native-only");
    app = new Application({ handleSignals: false, app: "Test", server: "GwNative", agent: "", registry: "", adapters: { EchoObj: "sgrid://127.0.0.1:0" } });
    app.addServant("EchoObj", servant);
    await app.start();
    expect(app.adapters().map((a) => a.endpoint.protocol)).to.deep.equal(["sgrid"]);
    nativePort = app.adapters()[0]!.endpoint.port;
  });

  after(async () => {
    await app?.stop(500);
  });

  it("forwarder and gRPC front: every kind of call reaches it over the native transport, with metadata, deadline, headers, trailers, errors", async () => {
    const backendComm = new Communicator();
    const forwarder = new Forwarder({ communicator: backendComm, services: new StaticServiceResolver({ "demo.echo.v1.Echo": `Test.GwNative.EchoObj@sgrid -h 127.0.0.1 -p ${nativePort}` }), reportToServiceMonitor: false });
    const front = new GrpcFront({ forwarder });
    try {
      const port = await front.listen("127.0.0.1", 0);
      await checkThroughGateway(port, servant);
      // The kinds came from reflection over the native transport (the native protocol refuses a unary call sent as a stream).
      expect(Object.fromEntries((await forwarder.resolve("demo.echo.v1.Echo")).kinds)).to.include({ Say: "unary", Repeat: "server_stream", Sum: "client_stream", Chat: "bidi" });
    } finally {
      await front.shutdown(500);
      forwarder.close();
      backendComm.close();
    }
  });

  describe("through a real registry and `sgrid gateway` as its own process", () => {
    let reg: TestRegistry;
    let gateway: GatewayProcess | undefined;
    const APP = uniq("GwNat");

    before(async () => {
      reg = await startTestRegistry(dialects().find((d) => d.name === "sqlite")!);
      const store = reg.server.store;
      await store.servers.create({ application: APP, name: "GwNative", type: "node" });
      const node = uniq("node");
      await store.nodes.upsert({ name: node, address: "127.0.0.1", agentVersion: "test" });
      const inst = await store.instances.create({ application: APP, server: "GwNative", node, adapters: [{ obj: "EchoObj", host: "127.0.0.1", port: nativePort, protocol: "sgrid" }], desiredState: "active" });
      await store.instances.reportObserved(inst.id, { state: "active", pid: process.pid });
      reg.server.changes.kick();
      await waitFor("the service map to list demo.echo.v1.Echo, learnt over the native endpoint", () => {
        try { return reg.server.part<{ services: ServiceIndex }>("query")!.services.find("demo.echo.v1.Echo").objs.includes(`${APP}.GwNative.EchoObj`); } catch { return false; }
      }, 15_000);
      gateway = await startGatewayProcess(["--listen", "127.0.0.1:0", "--registry", reg.target]);
    });

    after(async () => {
      gateway?.child.kill("SIGTERM");
      await reg?.cleanup();
    });

    it("a caller that knows only the gateway and the service name reaches the native-only servant with its metadata and deadline", async () => {
      await checkThroughGateway(gateway!.port, servant);
    });
  });
});
